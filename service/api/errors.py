"""Mapping of domain failures to HTTP: 422 naming the field, 503 with Retry-After, 413 for big bodies,
415 for bodies that are not UTF-8 JSON."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import JSONBytes
from service.classifier import CommitContention, MissingPosition
from service.ingest import count_outcome
from service.logs import REQUEST_CONTEXT
from service.store import StoreUnavailable

__all__ = ["BodySizeLimit", "JSONContentType", "install_error_handlers", "is_utf8_json"]

log = logging.getLogger(__name__)


_CLASSIFY_PATHS = frozenset({"/classify", "/classify/batch"})


def _count_detections(request: Request, outcome: str, body: Any = None) -> None:
    """Count a refused /classify or /classify/batch request's detections under ``outcome``."""
    if request.url.path not in _CLASSIFY_PATHS:
        return
    context = REQUEST_CONTEXT.get() or {}
    n = context.get("n_detections")
    if n is None:  # refused before the route ran: count what the body holds
        n = 1
        if request.url.path == "/classify/batch" and isinstance(body, dict):
            dets = body.get("detections")
            n = len(dets) if isinstance(dets, list) and dets else 1
    count_outcome(outcome, n)


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    retry = {"Retry-After": str(retry_after_s)}

    async def store_unavailable(request: Request, exc: Exception) -> JSONBytes:
        log.warning("Redis unavailable: %s", exc)
        _count_detections(request, "unavailable")
        return JSONBytes(
            {"detail": "state store (Redis) unavailable; nothing was stored"}, 503, headers=retry
        )

    async def contention(request: Request, exc: Exception) -> JSONBytes:
        _count_detections(request, "unavailable")
        return JSONBytes({"detail": str(exc)}, 503, headers=retry)

    async def missing_position(request: Request, exc: Exception) -> JSONBytes:
        assert isinstance(exc, MissingPosition)
        _count_detections(request, "rejected")
        prefix: list[object] = (
            ["body"]
            if exc.index is None or request.url.path == "/classify"
            else ["body", "detections", exc.index]
        )
        detail = [
            {
                "loc": [*prefix, field],
                "msg": "required for the first detection of a new object",
                "type": "missing",
            }
            for field in ("ra", "dec")
        ]
        return JSONBytes({"detail": detail}, 422)

    async def invalid_request(request: Request, exc: Exception) -> JSONBytes:
        assert isinstance(exc, RequestValidationError)
        _count_detections(request, "rejected", exc.body)
        return JSONBytes({"detail": [_error_entry(e) for e in exc.errors()]}, 422)

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StoreUnavailable, store_unavailable)
    app.add_exception_handler(CommitContention, contention)
    app.add_exception_handler(MissingPosition, missing_position)


def _error_entry(err: Any) -> dict[str, Any]:
    """A validation error as JSON: loc, msg, type and the offending input when it is a plain scalar.

    Failing to render the very error that rejects a value would turn a 422 into a 500, so what JSON
    cannot carry is echoed as text or not at all: NaN and infinities as ``"nan"``, integers beyond 64
    bits not echoed, and a string holding a lone UTF-16
    surrogate (``"\\ud800"``, which Python's JSON parser accepts and no UTF-8 encoder writes), in a value
    or in a key of the ``loc``, with the surrogate escaped.
    """
    loc = [_printable(p) if isinstance(p, str) else p for p in err.get("loc", ())]
    out = {"loc": loc, "msg": _printable(str(err.get("msg", ""))), "type": err.get("type", "")}
    value = err.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        out["input"] = str(value)
    elif isinstance(value, str) and len(value) <= 200:
        out["input"] = _printable(value)
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        pass  # orjson writes 64-bit integers only (Python's parser reads any): not echoed
    elif isinstance(value, (int, float, bool)):
        out["input"] = value
    return out


def _printable(text: str) -> str:
    """``text``, with any lone surrogate written as a backslash escape (``\\ud800``) that UTF-8 can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class JSONContentType:
    """Pure ASGI middleware: 415 unless a request with a body declares UTF-8 JSON.

    Only ``application/json`` with no charset or ``charset=utf-8`` is read as JSON (RFC 8259 JSON is
    UTF-8). FastAPI itself would parse ``application/*+json``, a missing type, and any charset, and
    Python's JSON parser guesses UTF-16 from the bytes, so without this check a body was read as JSON
    whatever it said it was. It runs before the classify fast path, so both answer alike.
    """

    def __init__(self, app: ASGIApp, paths: frozenset[str] = _CLASSIFY_PATHS) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            value = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
            if not is_utf8_json(value):
                await _send_json(send, 415, UNSUPPORTED_MEDIA_TYPE)
                return
        await self.app(scope, receive, send)


UNSUPPORTED_MEDIA_TYPE = b'{"detail":"Content-Type must be application/json (charset utf-8, if given)"}'


def is_utf8_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` value is ``application/json``, optionally with ``charset=utf-8``.

    Examples
    --------
    >>> is_utf8_json('application/json; charset="UTF-8"'), is_utf8_json("application/jsonx")
    (True, False)
    """
    media, *params = (part.strip() for part in content_type.split(";"))
    if media.lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Pure ASGI middleware: 413 for bodies over ``max_bytes`` (by Content-Length, or counted if chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
                # A declared length is enforced by the server's HTTP parser: no wrapping needed.
                await self.app(scope, receive, send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(413, f"request body too large (limit {self.max_bytes} bytes)")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        await _send_json(send, 413, b'{"detail":"request body too large (limit %d bytes)"}' % self.max_bytes)


class _BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader re-raises it as a 413 instead of a 400."""
