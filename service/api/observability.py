"""Per-request observability as one pure ASGI middleware: request id, HTTP metrics, the access log.

* **Request id**: the client's ``X-Request-ID`` if it is a plain token (1-128 of ``[A-Za-z0-9._:-]``;
  anything else could forge log lines), else a fresh one; echoed in the response's ``X-Request-ID`` and
  put on every log record made while the request is handled (``service.logs.REQUEST_CONTEXT``).
* **Metrics**: ``goto_http_requests_total`` and ``goto_http_request_duration_seconds`` by method and
  route *template* (``/objects/{object_id}``, never the raw path, so labels stay few); paths no route
  matches are labelled ``unmatched``.
* **Access log** (``GOTO_ACCESS_LOG``): one line per request with method, path (no query string),
  route, status, duration and the object id when the request names one. Health and metrics scrapes are
  logged at debug level so probes do not flood the log.

A pure ASGI middleware rather than ``BaseHTTPMiddleware``: it adds no task and no body copying, a few
microseconds per request.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import ACCESS_LOGGER, REQUEST_CONTEXT
from service.metrics import HTTP_DURATION, HTTP_REQUESTS

__all__ = ["REQUEST_ID_HEADER", "RequestObservability"]

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger(ACCESS_LOGGER)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _HEADER_KEY:
            if _VALID_ID.fullmatch(value):
                return value.decode()
            break
    # Not uuid4(): os.urandom releases the GIL, and winning it back from the inference thread cost
    # ~300 us of CPU per request under load. Ids need to be unique, not unguessable.
    return f"{random.getrandbits(128):032x}"


class RequestObservability:
    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        # labelled children cached: labels() takes a lock and builds a tuple on every call
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        context: dict[str, Any] = {"request_id": request_id}
        token = REQUEST_CONTEXT.set(context)
        id_header = (_HEADER_KEY, request_id.encode())
        status = 500  # if the app raises before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._record(method, template, status, elapsed)
            if self.access_log:
                object_id = scope.get("path_params", {}).get("object_id")
                if object_id is not None and "object_id" not in context:
                    context["object_id"] = object_id
                access_log.log(
                    logging.DEBUG if template in _QUIET_ROUTES else logging.INFO,
                    "%s %s %d %.2f ms",
                    method,
                    scope["path"],
                    status,
                    elapsed * 1000,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
            REQUEST_CONTEXT.reset(token)

    def _record(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(method, route, str(status))
            self._counters[(method, route, status)] = counter
        counter.inc()
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._histograms[(method, route)] = HTTP_DURATION.labels(method, route)
        histogram.observe(seconds)
