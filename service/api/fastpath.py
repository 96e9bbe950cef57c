"""The classify routes' common case, served without FastAPI's routing layers.

Why. On this project's 2-core machine FastAPI's per-request machinery (exception and exit-stack
middlewares, routing, dependency solving, request objects) cost ~130 us of CPU per request before any
work was done: as much as classifying a detection in a batch. ``POST /classify`` and
``POST /classify/batch`` carry the service's load, so this pure ASGI middleware, inside the request-id /
metrics / access-log and body-size middlewares, answers them itself when the request is in order: a
JSON body that validates, an accepted API key (when keys are configured), a batch within the limit.
It calls the same use-case functions as the FastAPI routes (``service.api.classify``) and renders the
same JSON.

Everything else goes to FastAPI unchanged, with the body already read given back to it: invalid
bodies (so 422s name the field exactly as before), missing or wrong keys (401), over-long batches.
Failures while classifying (Redis down, a new object without position) are answered by the app's own
exception handlers, so every status, header and body is the one FastAPI would have produced; the
OpenAPI schema still documents the FastAPI routes.
"""

from __future__ import annotations

import inspect
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import classify
from service.api.deps import key_accepted
from service.schemas import BatchRequest, DetectionRequest

__all__ = ["ClassifyFastPath"]

_SINGLE = TypeAdapter(DetectionRequest)
_BATCH = TypeAdapter(BatchRequest)
_PATHS = frozenset({"/classify", "/classify/batch"})
_JSON_HEADER = (b"content-type", b"application/json")
_ROUTES = {route.path: route for route in classify.router.routes}  # type: ignore[attr-defined]


class ClassifyFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: Requests answered here (the others went to FastAPI); for tests and debugging.
        self.served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in _PATHS:
            await self.app(scope, receive, send)
            return
        app = scope["app"]  # the FastAPI application (set by Starlette before its middlewares run)
        headers = dict(scope["headers"])
        keys: tuple[bytes, ...] = app.state.api_keys  # the content type was checked outside (JSONContentType)
        if keys and not key_accepted(headers.get(b"authorization", b"").decode("latin-1"), keys):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        single = scope["path"] == "/classify"
        try:
            parsed: Any = (_SINGLE if single else _BATCH).validate_json(body)
        except ValueError:  # invalid: FastAPI validates it again and answers the 422 it always gave
            parsed = None
        if parsed is None or (not single and len(parsed.detections) > app.state.max_batch_size):
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = _ROUTES[scope["path"]]  # what routing would have set (the metrics' route label)
        router = app.state.services.router
        try:
            if single:
                result: Any = await classify.classify_one(router, parsed)
            else:
                result = await classify.classify_batch_within_limit(router, parsed.detections)
        except Exception as exc:
            handler = _handler_for(app, exc)
            if handler is None:
                raise
            response = handler(Request(scope, _replay(body, receive)), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)
            return
        self.served += 1
        out = orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON_HEADER, (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing to classify
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` again, then whatever the connection says next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _handler_for(app: Any, exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler
    return None
