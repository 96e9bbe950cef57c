"""Merging of concurrent classification requests: many ``classify_many`` calls become one.

Why. A call's detections are processed in waves, and a wave costs a fixed amount on top of its
detections: one pipelined Redis call, one hand-off to the inference thread and back, one pass of the
engine's ~60 numpy operations, one forwarded message per owner worker. On this project's 2-core
machine that was ~1.5 ms of CPU per wave, against ~0.08 ms per detection, so a wave of 10 detections
cost twice as much per detection as a wave of 200. :class:`RequestMerger` therefore classifies the
detections of concurrent requests together:

* requests that reach it in the same event-loop iteration go into one call, scheduled with
  ``call_soon``, so no delay is added;
* with ``max_in_flight`` set, at most that many merged calls run at once, and requests arriving while
  they run wait for one to finish and then go together into the next. A lone request never waits; under
  load, calls grow with the load (as the inference thread's batches do).

Each request still gets the outcome it would have had alone. ``classify_many`` refuses a call that
would create an object from a detection without position before it writes anything
(:class:`~service.classifier.MissingPosition`, naming the detection); the merger then fails that
detection's request only and classifies the others again. Any other error (Redis down) fails every
request of the merged call, as it would have failed each of them alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from service.classifier import MissingPosition
from service.schemas import DetectionRequest

__all__ = ["RequestMerger"]

ClassifyMany = Callable[[Sequence[DetectionRequest]], Awaitable[list[dict[str, Any]]]]
_Request = tuple[Sequence[DetectionRequest], "asyncio.Future[list[dict[str, Any]]]"]


class RequestMerger:
    """Merges concurrent :meth:`classify_many` calls of one event loop (see module docstring)."""

    def __init__(self, classify_many: ClassifyMany, max_in_flight: int | None = None) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._classify_many = classify_many
        self._max_in_flight = max_in_flight
        self._pending: list[_Request] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()  # merged calls in flight (kept from the GC)
        #: Merged calls made, detections they carried, the largest (for tests and monitoring).
        self.stats = {"calls": 0, "detections": 0, "largest": 0}

    async def classify(self, det: DetectionRequest) -> dict[str, Any]:
        return (await self.classify_many((det,)))[0]

    async def classify_many(self, dets: Sequence[DetectionRequest]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        self._pending.append((dets, future))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        full = self._max_in_flight is not None and len(self._tasks) >= self._max_in_flight
        if self._pending and not self._scheduled and not full:
            self._scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        requests, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run(requests))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._schedule(task.get_loop())

    async def _run(self, requests: list[_Request]) -> None:
        while requests:
            dets = [d for request, _ in requests for d in request]
            self.stats["calls"] += 1
            self.stats["detections"] += len(dets)
            self.stats["largest"] = max(self.stats["largest"], len(dets))
            try:
                results = await self._classify_many(dets)
            except MissingPosition as exc:
                if exc.index is None or len(requests) == 1:
                    _fail(requests, exc)
                    return
                # refused before any write: that request fails, the others are classified again
                at, start = _owner(requests, exc.index)
                _fail([requests.pop(at)], MissingPosition(exc.index - start))
                continue
            except asyncio.CancelledError:  # shutting down: nobody will answer these requests
                for _, future in requests:
                    future.cancel()
                raise
            except Exception as exc:  # every waiting request hears of it (Redis down: 503 for each)
                _fail(requests, exc)
                return
            start = 0
            for request, future in requests:
                end = start + len(request)
                if not future.done():
                    future.set_result(results[start:end])
                start = end
            return


def _owner(requests: list[_Request], index: int) -> tuple[int, int]:
    """Which request holds detection ``index`` of the merged call, and where that request starts."""
    start = 0
    for at, (request, _) in enumerate(requests):
        if index < start + len(request):
            return at, start
        start += len(request)
    raise IndexError(index)


def _fail(requests: Sequence[_Request], exc: BaseException) -> None:
    for _, future in requests:
        if not future.done():
            future.set_exception(exc)
