"""One ``goto-classifier dispatch`` child process next to the uvicorn workers of ``serve``.

Why a process and not a task in each worker: a delivery costs the sending event loop ~1-2 ms of CPU
(httpx, signing, settling in Redis), and deliveries come in bursts (``max_in_flight`` answers of a slow
receiver arrive together), so a dispatcher sharing a worker's event loop stalls that worker's requests
for tens of milliseconds now and then; with every-update subscriptions and a fast receiver it would eat
most of the worker. In its own process it competes only for CPU, which the OS shares out finely
(``BENCHMARKS.md``, webhook isolation). One process per ``serve`` also means one place that delivers.

The child runs at a lower CPU priority (``nice`` +10): deliveries tolerate delay (the outbox holds
them and ``goto_webhook_outbox_lag_seconds`` shows it), classification requests do not, so when the
CPU is short the OS serves the workers first.

The child inherits the environment (``GOTO_*``, ``PROMETHEUS_MULTIPROC_DIR``: its delivery metrics
appear in the workers' ``/metrics``) and stderr. The Redis URL reaches it as ``GOTO_REDIS_URL`` in that
environment, never on its command line: a password in the URL would be readable by every local user
in ``ps`` (``/proc/<pid>/cmdline``), while ``/proc/<pid>/environ`` is readable only by the owner.
If it dies it is restarted after a pause (1 s, doubling up to 30 s); nothing is lost meanwhile, events
wait in the Redis outbox. Each time it is reaped its multiprocess metric files are marked dead, so
its outbox gauges (``livemax``) stop counting and ``/metrics`` shows only the live dispatcher's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["DispatcherProcess"]

log = logging.getLogger("service.webhooks")


class DispatcherProcess:
    """Runs and supervises ``python -m lightcurve.cli dispatch`` until :meth:`stop`."""

    def __init__(
        self,
        redis_url: str,
        webhooks: Path,
        log_level: str = "info",
        stop_timeout_s: float = 20.0,
        niceness: int = 10,
    ) -> None:
        level = "error" if log_level == "critical" else log_level
        self.command = [sys.executable, "-m", "lightcurve.cli", "dispatch", "--webhooks", str(webhooks),
                        "--log-level", level]
        self.env = {**os.environ, "GOTO_REDIS_URL": redis_url}
        self.stop_timeout_s = stop_timeout_s
        self.niceness = niceness
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="dispatcher-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # its own session: a terminal's Ctrl-C stops serve, and serve stops the dispatcher (in order)
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL,
                                         start_new_session=True)
            with contextlib.suppress(OSError):  # set from here: preexec_fn is unsafe with threads
                mine = os.getpriority(os.PRIO_PROCESS, 0)
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, mine + self.niceness)
            self.starts += 1
            log.info("webhook dispatcher process %d started", self.proc.pid)

    def _supervise(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None:
                return
            code = proc.wait()
            _forget_metrics_of(proc.pid)
            if self._stopping.is_set():
                return
            log.error("webhook dispatcher process %d exited with %s; restarting in %.0f s",
                      proc.pid, code, pause)
            if self._stopping.wait(pause):
                return
            pause = min(30.0, pause * 2)
            self._spawn()

    def stop(self) -> None:
        """SIGTERM (the dispatcher finishes in-flight deliveries, up to 10 s), then SIGKILL if needed."""
        self._stopping.set()
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("webhook dispatcher process %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if proc is not None:
            _forget_metrics_of(proc.pid)


def _forget_metrics_of(pid: int) -> None:
    """Remove a dead process's live-gauge files (prometheus-client multiprocess mode): otherwise its
    last outbox lag and backlog stay in every scrape for ever (a permanent false alert)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
