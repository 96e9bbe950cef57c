"""Object affinity between the workers of one ``serve``: each object is classified by one worker.

Why. A worker caches the last committed state of the objects it classified, so that a detection
arriving in time order costs one RNN step and one Redis call. The workers share one listening socket,
so without affinity a detection lands on a random worker: with two workers, in the batch benchmark,
43 % of detections first had to read their object's state from Redis (a ``prepare`` call) and 19 %
were computed from a state the other worker had already replaced, lost the commit race and were
recomputed. Routing every object to one worker turns nearly all of them into cache hits.

How. ``serve`` gives its workers a private directory and their number (``GOTO_PEER_DIR``,
``GOTO_PEER_WORKERS``). Each worker claims a slot ``i`` (an exclusive ``flock`` on ``slot-i.lock``;
the OS releases it when the process dies, and the worker uvicorn starts in its place claims it again)
and listens on the Unix socket ``slot-i.sock``. The owner of an object is ``crc32(object_id) mod N``.
A worker classifies the detections of the objects it owns and forwards the others to their owners,
one message per owner and request (a length-prefixed orjson list), then returns all results in
request order.

Correctness never depends on affinity: every commit is a compare-and-set on the object's stored
input, so a detection classified by a worker that does not own the object is still right, only
slower. Whenever an owner cannot be reached, times out or fails, the forwarding worker classifies
those detections itself; a failure both share (Redis down) then surfaces exactly as without affinity.
If an owner failed half-way through a batch, detections it had already committed come back as
``duplicate`` (the same as a client retrying after a failed request).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter

from service import metrics
from service.classifier import Classifier, MissingPosition
from service.coalesce import ClassifyMany, RequestMerger
from service.schemas import DetectionRequest

__all__ = ["ObjectRouter", "PeerServer", "claim_slot", "owner_slot"]

log = logging.getLogger("service.affinity")

_HEADER = struct.Struct(">I")
#: Detections travel between workers as JSON written and validated by pydantic-core (both in Rust:
#: ~4 us a detection; rebuilding them with ``model_construct`` took ~11 us).
_DETECTIONS = TypeAdapter(list[DetectionRequest])


def owner_slot(object_id: str, workers: int) -> int:
    """The worker slot that classifies ``object_id`` (stable across processes, unlike ``hash``)."""
    return zlib.crc32(object_id.encode()) % workers


def claim_slot(directory: Path, workers: int) -> tuple[int, int] | None:
    """Claim the first free slot: ``(slot, lock fd)`` (keep the fd open while serving), or ``None``."""
    for slot in range(workers):
        fd = os.open(directory / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    return None


def socket_path(directory: Path, slot: int) -> Path:
    return directory / f"slot-{slot}.sock"


def _encode(dets: Sequence[DetectionRequest]) -> bytes:
    return _DETECTIONS.dump_json(list(dets), exclude_none=True)


def _decode(body: bytes) -> list[DetectionRequest]:
    return _DETECTIONS.validate_json(body)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return await reader.readexactly(size)


def _frame(body: bytes) -> bytes:
    return _HEADER.pack(len(body)) + body


class PeerServer:
    """Answers the detections other workers forward to this one (the owner of their objects)."""

    def __init__(self, classify_many: ClassifyMany, path: Path) -> None:
        self.classify_many = classify_many
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a dead worker whose slot this one now holds
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    body = await _read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                try:
                    reply: dict[str, Any] = {"results": await self.classify_many(_decode(body))}
                except MissingPosition as exc:  # the request's fault, not this worker's: the sender says so
                    reply = {"missing_position": exc.index}
                except Exception as exc:  # the sender classifies these itself (and meets the same error)
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                writer.write(_frame(orjson.dumps(reply)))
                await writer.drain()
        finally:
            writer.close()


class _PeerClient:
    """Connections to one peer, reused across requests (one request in flight per connection; at most
    ``MAX_IDLE`` kept open between bursts)."""

    MAX_IDLE = 64

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def call(self, body: bytes) -> dict[str, Any]:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_unix_connection(str(self.path))
        try:
            writer.write(_frame(body))
            async with asyncio.timeout(self.timeout_s):  # (wait_for would run the read in a new task)
                reply = await _read_frame(reader)
        except BaseException:
            writer.close()
            raise
        if len(self._idle) < self.MAX_IDLE:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return orjson.loads(reply)  # type: ignore[no-any-return]

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class ObjectRouter:
    """What the routes call: classifies here what this worker owns, forwards the rest to its owner.

    Without peers (one worker, or an app not started by ``serve``) it is the classifier itself. What
    this worker classifies, for its own requests and for the other workers', goes through one
    :class:`~service.coalesce.RequestMerger` (``local``), so that concurrent requests share waves.
    """

    #: Merged classifier calls running at once in a worker: two, so that one wave's Python work
    #: overlaps the other's Redis call and inference.
    MAX_LOCAL_CALLS = 2

    def __init__(
        self,
        classifier: Classifier,
        peer_dir: Path | None = None,
        workers: int = 1,
        slot: int | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.classifier = classifier
        self.local = RequestMerger(classifier.classify_many, self.MAX_LOCAL_CALLS)
        self.workers = workers if peer_dir is not None else 1
        self.slot = slot
        self._peers: dict[int, _PeerClient] = {}
        if peer_dir is not None:
            self._peers = {
                s: _PeerClient(socket_path(peer_dir, s), timeout_s) for s in range(workers) if s != slot
            }
        self._forwarded = {o: metrics.FORWARDED.labels(o) for o in ("owner", "fallback")}
        #: Detections forwarded and classified by their owner, and forwarded but classified here.
        self.stats = {"owner": 0, "fallback": 0}
        #: Single detections arriving together are classified (and forwarded) together.
        self.singles = RequestMerger(self.classify_many)

    async def classify(self, det: DetectionRequest) -> dict[str, Any]:
        return await self.singles.classify(det)

    async def classify_many(self, dets: Sequence[DetectionRequest]) -> list[dict[str, Any]]:
        """Same semantics as :meth:`Classifier.classify_many` (results in request order)."""
        groups: dict[int | None, list[int]] = {}
        for i, d in enumerate(dets):
            owner = owner_slot(d.object_id, self.workers) if self._peers else None
            groups.setdefault(None if owner == self.slot else owner, []).append(i)
        if list(groups) == [None]:
            return await self.local.classify_many(dets)
        if len(dets) > 1:
            # A batch that would create an object from a detection without position is refused as a
            # whole, before any worker writes anything.
            await self.classifier.check_new_objects(dets)
        parts = await asyncio.gather(
            *(self._part(owner, dets, indices) for owner, indices in groups.items())
        )
        results: list[dict[str, Any]] = [None] * len(dets)  # type: ignore[list-item]
        for indices, part in zip(groups.values(), parts, strict=True):
            for i, result in zip(indices, part, strict=True):
                results[i] = result
        return results

    async def _part(
        self, owner: int | None, dets: Sequence[DetectionRequest], indices: list[int]
    ) -> list[dict[str, Any]]:
        sub = [dets[i] for i in indices]
        if owner is not None:
            try:
                reply = await self._peers[owner].call(_encode(sub))
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            if "results" in reply:
                self._count("owner", len(sub))
                return reply["results"]  # type: ignore[no-any-return]
            if "missing_position" in reply:
                self._count("owner", len(sub))
                index = reply["missing_position"]
                raise MissingPosition(None if index is None else indices[index])
            log.debug("worker slot %d did not classify %d detection(s) (%s); classifying here",
                      owner, len(sub), reply["error"])
            self._count("fallback", len(sub))
        try:
            return await self.local.classify_many(sub)
        except MissingPosition as exc:  # name the detection by its index in the whole request
            raise MissingPosition(None if exc.index is None else indices[exc.index]) from None

    def _count(self, outcome: str, n: int) -> None:
        self.stats[outcome] += n
        self._forwarded[outcome].inc(n)

    def close(self) -> None:
        for peer in self._peers.values():
            peer.close()


class Affinity:
    """One worker's part: its slot (lock held while serving), its peer server and its router."""

    def __init__(self, router: ObjectRouter, server: PeerServer | None = None, lock_fd: int | None = None):
        self.router = router
        self._server = server
        self._lock_fd = lock_fd

    @classmethod
    async def start(
        cls, classifier: Classifier, peer_dir: Path | None, workers: int, timeout_s: float
    ) -> Affinity:
        if peer_dir is None or workers < 2:
            return cls(ObjectRouter(classifier))
        claimed = claim_slot(peer_dir, workers)
        if claimed is None:  # more workers than slots (a replacement starting early): forward only
            log.warning("no free worker slot in %s; this worker forwards every detection", peer_dir)
            return cls(ObjectRouter(classifier, peer_dir, workers, None, timeout_s))
        slot, fd = claimed
        router = ObjectRouter(classifier, peer_dir, workers, slot, timeout_s)
        server = PeerServer(router.local.classify_many, socket_path(peer_dir, slot))
        await server.start()
        log.info("worker slot %d of %d: classifies its objects, forwards the others", slot, workers)
        return cls(router, server, fd)

    async def stop(self) -> None:
        self.router.close()
        if self._server is not None:
            await self._server.stop()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
