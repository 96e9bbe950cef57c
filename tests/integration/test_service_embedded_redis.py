"""``goto-classifier serve`` owns its embedded Redis: SIGTERM stops the server, with nothing orphaned."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.integration.conftest import free_port


def _processes_using(socket_path: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(socket_path in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def test_sigterm_stops_the_embedded_redis(tiny_model_dir: Path, tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOTO_")}
    env.update(GOTO_MODEL_DIR=str(tiny_model_dir), GOTO_DATA_DIR=str(tmp_path / "data"),
               TF_CPP_MIN_LOG_LEVEL="2")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lightcurve.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        match = re.search(r"embedded Redis at unix://(\S+)", log.read_text())
        assert match, log.read_text()
        socket_path = match.group(1)
        assert _processes_using(socket_path), "the embedded redis-server should be running"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert _processes_using(socket_path) == []
        assert (tmp_path / "data" / "redis.db").is_file()  # saved on the way down
    finally:
        if proc.poll() is None:
            proc.kill()
