"""Micro-batching of single-detection requests: concurrent ``/classify`` calls become one wave.

Why. A batch of detections costs one pipelined Redis write per wave, one inference submission and (with
several workers) one forwarded message per owner, while each single request paid all of those alone:
in the concurrency-32 benchmark a single detection cost ~8x the service CPU of a batched one. The
coalescer collects the single detections whose requests reach it in the same event-loop iteration and
classifies them with one :meth:`classify_many` call. It adds no delay: the merged call is scheduled with
``call_soon``, so it runs as soon as the requests already parsed in this iteration have reached it.

Each request still gets the outcome it would have had alone. :meth:`classify_many` refuses a batch that
would create an object from a detection without position before it writes anything
(:class:`~service.classifier.MissingPosition`, naming the detection); the coalescer then fails that
request only and classifies the others again. Any other error (Redis down) fails every request of the
merged call, as it would have failed each of them alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from service.classifier import MissingPosition
from service.schemas import DetectionRequest

__all__ = ["SingleCoalescer"]

ClassifyMany = Callable[[Sequence[DetectionRequest]], Awaitable[list[dict[str, Any]]]]


class SingleCoalescer:
    """Merges concurrent :meth:`classify` calls of one event loop into :meth:`classify_many` calls."""

    def __init__(self, classify_many: ClassifyMany) -> None:
        self._classify_many = classify_many
        self._pending: list[tuple[DetectionRequest, asyncio.Future[dict[str, Any]]]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # merged calls in flight (kept from the GC)
        #: Merged calls made and detections they carried (for tests and monitoring).
        self.stats = {"calls": 0, "detections": 0, "largest": 0}

    async def classify(self, det: DetectionRequest) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((det, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[DetectionRequest, asyncio.Future[dict[str, Any]]]]) -> None:
        while batch:
            self.stats["calls"] += 1
            self.stats["detections"] += len(batch)
            self.stats["largest"] = max(self.stats["largest"], len(batch))
            try:
                results = await self._classify_many([det for det, _ in batch])
            except MissingPosition as exc:
                if exc.index is None or len(batch) == 1:
                    _fail(batch, exc)
                    return
                # refused before any write: that request fails, the others are classified again
                _fail([batch[exc.index]], MissingPosition(0))
                del batch[exc.index]
                continue
            except asyncio.CancelledError:  # shutting down: nobody will answer these requests
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # every waiting request hears of it (Redis down: 503 for each)
                _fail(batch, exc)
                return
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            return


def _fail(batch: Sequence[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
