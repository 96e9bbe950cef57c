"""Logging set-up: plain text or one JSON object per line, with the current request's id on every record.

``GOTO_LOG_JSON=true`` gives lines such as::

    {"time":"2024-06-10T06:13:20.123Z","level":"info","logger":"service.access",
     "message":"POST /classify 200 1.42 ms","request_id":"5f0c...","method":"POST",
     "route":"/classify","path":"/classify","status":200,"duration_ms":1.42,"object_id":"GOTO_IRAS18547+1254"}

Every record logged while a request is handled (by any logger) carries that request's ``request_id``
(and ``object_id`` once known), through a logging filter reading :data:`REQUEST_CONTEXT`.

Nothing here ever logs headers, query strings, request bodies or settings values: API keys travel in the
``Authorization`` header and webhook secrets live in ``SecretStr`` fields, so neither can reach a log.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import IO, Any

import orjson

__all__ = ["ACCESS_LOGGER", "LOG_FIELDS", "REQUEST_CONTEXT", "JsonFormatter", "configure_logging", "note"]

#: Per-request fields (``request_id``, ``object_id``, ...) set by the HTTP middleware and the routes.
REQUEST_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "goto_request", default=None
)
#: Structured fields a record may carry (as ``extra=``), in the order they are written.
LOG_FIELDS = ("request_id", "method", "route", "path", "status", "duration_ms", "object_id", "n_detections")
#: The logger of the one-line-per-request log (``GOTO_ACCESS_LOG``).
ACCESS_LOGGER = "service.access"


def note(**fields: Any) -> None:
    """Attach fields (e.g. ``object_id``) to the current request's log records; no-op outside a request."""
    ctx = REQUEST_CONTEXT.get()
    if ctx is not None:
        ctx.update(fields)


class RequestContextFilter(logging.Filter):
    """Copies the current request's fields onto each record (unless the record set them itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = REQUEST_CONTEXT.get()
        if ctx:
            for name, value in ctx.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in LOG_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message`` plus ``[request_id=... object_id=...]`` when there is a request."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            return line
        extra = f"request_id={request_id}"
        object_id = getattr(record, "object_id", None)
        if object_id is not None:
            extra += f" object_id={object_id}"
        return f"{line} [{extra}]"


def configure_logging(level: str = "info", json_lines: bool = False, stream: IO[str] | None = None) -> None:
    """Route every logger (uvicorn's included: ``serve`` passes no log config) through one handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every webhook delivery at info ("HTTP Request: POST ..."); the dispatcher logs what
    # matters about deliveries itself (failures, retries, dead letters), so only debug shows httpx's.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
