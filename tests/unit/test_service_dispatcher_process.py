"""serve's dispatcher process supervisor: restarts a dispatcher that dies, stops it on request."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from service.webhooks.process import DispatcherProcess


def test_a_dead_dispatcher_is_restarted_and_stop_ends_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    supervisor = DispatcherProcess("redis://127.0.0.1:1/0", tmp_path / "hooks.yaml")
    # stands in for `goto-classifier dispatch`: the first run dies at once, the second keeps running
    script = (
        "import os, sys, time\n"
        f"p = {str(runs)!r}\n"
        "n = len(os.listdir(p)) if os.path.isdir(p) else 0\n"
        "os.makedirs(p, exist_ok=True); open(os.path.join(p, str(n)), 'w').close()\n"
        "sys.exit(3) if n == 0 else time.sleep(60)\n"
    )
    supervisor.command = [sys.executable, "-c", script]
    supervisor.start()
    try:
        deadline = time.monotonic() + 20
        while supervisor.starts < 2:
            assert time.monotonic() < deadline, "not restarted"
            time.sleep(0.05)
        proc = supervisor.proc
        assert proc is not None
        time.sleep(0.2)
        assert proc.poll() is None  # the second run is alive
        # deliveries yield the CPU to classification (niceness +10, capped at 19)
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == expected
    finally:
        supervisor.stop()
    assert proc.poll() is not None  # stopped, and not restarted afterwards
    time.sleep(1.2)
    assert supervisor.starts == 2 and sorted(os.listdir(runs)) == ["0", "1"]
