"""``goto-classifier consume``: the stream front-end. Detections come from a Redis stream, not HTTP.

A producer (the survey pipeline) adds one entry per detection to the ingest stream
(``GOTO_INGEST_STREAM``, default ``goto:ingest``), field ``detection`` holding the same JSON as the
body of ``POST /classify``. Consumers read it through one consumer group, so several of them (on any
machines) share the entries; each classifies what it read through the same use case as the HTTP
routes (:mod:`service.ingest`, on a :class:`~service.runtime.Runtime`) and then, in one pipeline,
adds one entry per result to the results stream (field ``result``: the JSON ``POST /classify``
answers; ``ingest_id``: the entry it answers) and acknowledges the entries it read.

Delivery is at-least-once. An entry is acknowledged only after its detection is committed and its
result written, so a consumer that dies (or loses Redis) between the commit and the acknowledgement
leaves the entry pending; it is read again, by the same consumer when it restarts under the same name
or by another one once it has been idle ``GOTO_CLAIM_MIN_IDLE_MS`` (``XAUTOCLAIM``), and its
detection, already stored, comes back ``status: duplicate`` (detections are idempotent by detection
id). The results stream then holds the detection twice, the replay marked ``duplicate``.

An entry that cannot be classified (no ``detection`` field, not JSON, a field out of range, a new
object's first detection without ``ra``/``dec``) goes to the dead-letter stream
(``GOTO_DEAD_LETTER_STREAM``) with the error (fields ``ingest_id``, ``detection``, ``error``: a JSON
list of ``{loc, msg, type}`` naming the field, as a 422 does) and is acknowledged; nothing of it is
stored. Redis unavailable or a commit race lost too often leaves the entries pending and the consumer
tries them again after ``GOTO_RETRY_AFTER_S``.

The three streams need not share a Redis Cluster slot: the results, dead letters and acknowledgement
go in one pipeline, not one transaction (the acknowledgement last, so a failure leaves entries
pending, never lost). Acknowledged entries are not deleted from the ingest stream; producers bound it
with ``XADD ... MAXLEN``. The results stream is trimmed to about ``GOTO_RESULTS_MAXLEN`` entries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from service import ingest
from service.classifier import CommitContention, MissingPosition
from service.runtime import Runtime, blocking_client
from service.schemas import DetectionRequest
from service.settings import Settings
from service.store import StoreUnavailable

__all__ = ["DETECTION_FIELD", "RESULT_FIELD", "StreamConsumer", "consume_command"]

log = logging.getLogger("service.consume")

#: Failures that leave a read's entries pending, to be tried again after a pause (nothing is wrong
#: with the entries).
_TRANSIENT = (StoreUnavailable, CommitContention, OSError, aioredis.ConnectionError, aioredis.TimeoutError)

#: Field names of the entries (ingest: ``detection``; results: ``result`` and ``ingest_id``; dead
#: letters: ``ingest_id``, ``detection``, ``error``).
DETECTION_FIELD = "detection"
RESULT_FIELD = "result"
INGEST_ID_FIELD = "ingest_id"
ERROR_FIELD = "error"

_MISSING_POSITION = [
    {"loc": [name], "msg": "required for the first detection of a new object", "type": "missing"}
    for name in ("ra", "dec")
]
_NO_DETECTION = [{"loc": [DETECTION_FIELD], "msg": "entry has no 'detection' field", "type": "missing"}]


@dataclass
class _Batch:
    """The entries of one read: those to classify, and those already refused (dead letters)."""

    #: Every entry id read (acknowledged together at the end).
    ids: list[str] = field(default_factory=list)
    #: (entry id, the entry's ``detection`` as sent, the detection)
    valid: list[tuple[str, bytes, DetectionRequest]] = field(default_factory=list)
    dead: list[tuple[str, bytes, list[dict[str, Any]]]] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(entries: Sequence[tuple[Any, Any]]) -> _Batch:
    batch = _Batch()
    for entry_id, fields in entries:
        if entry_id is None:  # Redis < 7 reports a claimed entry deleted from the stream so
            continue
        eid = _text(entry_id)
        batch.ids.append(eid)
        if fields is None:  # pending, but deleted from the stream: nothing to classify, acknowledged
            continue
        raw = fields.get(DETECTION_FIELD.encode())
        if raw is None:
            entry = orjson.dumps({_text(k): _text(v) for k, v in fields.items()})
            batch.dead.append((eid, entry, _NO_DETECTION))
            continue
        try:
            batch.valid.append((eid, raw, ingest.parse_detection(raw)))
        except ingest.InvalidDetection as exc:
            batch.dead.append((eid, raw, exc.errors))
    return batch


class StreamConsumer:
    """One consumer of the ingest stream's group (see the module docstring)."""

    def __init__(self, runtime: Runtime, client: aioredis.Redis, name: str | None = None) -> None:
        settings: Settings = runtime.settings
        self.runtime = runtime
        #: Blocking reads need a socket timeout longer than the block (``runtime.client``'s is short).
        self.redis = client
        self.settings = settings
        self.name = name or settings.consumer_name or f"{socket.gethostname()}-{os.getpid()}"
        self.stream, self.group = settings.ingest_stream, settings.consumer_group
        #: Counts for tests and logs: entries classified, dead-lettered, taken over from other consumers.
        self.stats = {"classified": 0, "dead": 0, "claimed": 0, "batches": 0}
        self._stop = asyncio.Event()
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Classify entries until :meth:`stop`; own pending entries first (a restart under this name)."""
        await self._ensure_group()
        own_pending = True
        while not self._stop.is_set():
            try:
                entries = await self._claim()
                if not entries:
                    entries = await self._read("0" if own_pending else ">")
                    if own_pending and not entries:
                        own_pending = False
                        continue
                if entries:
                    try:
                        await self.handle(entries)
                    except _TRANSIENT:
                        raise
                    except Exception:
                        log.exception("consume: a batch of %d entries failed; trying them one by one",
                                      len(entries))
                        await self._isolate(entries)
            except _TRANSIENT as exc:
                # the entries stay pending: read them again (id 0) after a pause
                log.warning("consume: %s: %s; retrying in %d s", type(exc).__name__, exc,
                            self.settings.retry_after_s)
                own_pending = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(self.settings.retry_after_s, 0.1))
            except aioredis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_group()  # the stream was deleted (FLUSHDB, DEL): start again

    async def _ensure_group(self) -> None:
        try:
            # from id 0: entries added before any consumer ran are classified too
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, start: str) -> list[tuple[Any, Any]]:
        block = None if start == "0" else self.settings.consume_block_ms
        read = asyncio.ensure_future(self.redis.xreadgroup(
            self.group, self.name, {self.stream: start}, count=self.settings.consume_batch, block=block))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([read, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not read.done():
            read.cancel()  # stopping: whatever this read was handed stays pending for the others
            return []
        reply = read.result()
        return list(reply[0][1]) if reply else []

    async def _isolate(self, entries: Sequence[tuple[Any, Any]]) -> None:
        """Each entry alone; one that still fails is a dead letter (else it would fail forever)."""
        for entry in entries:
            try:
                await self.handle([entry])
            except _TRANSIENT:
                raise
            except Exception as exc:
                eid = _text(entry[0])
                raw = (entry[1] or {}).get(DETECTION_FIELD.encode(), b"")
                error = [{"loc": [], "msg": f"{type(exc).__name__}: {exc}", "type": "internal_error"}]
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(self.settings.dead_letter_stream,
                              {INGEST_ID_FIELD: eid, DETECTION_FIELD: raw, ERROR_FIELD: orjson.dumps(error)})
                    pipe.xack(self.stream, self.group, eid)
                    await pipe.execute()
                self.stats["dead"] += 1

    async def _claim(self) -> list[tuple[Any, Any]]:
        """Entries other consumers read and left idle for ``claim_min_idle_ms`` (they died).

        Asked at most every quarter of that idle time while none are found (a round trip each)."""
        now = time.monotonic()
        if self._claim_cursor == "0-0" and now < self._next_claim:
            return []
        self._next_claim = now + self.settings.claim_min_idle_ms / 4000
        reply = await self.redis.xautoclaim(self.stream, self.group, self.name,
                                            self.settings.claim_min_idle_ms, self._claim_cursor,
                                            count=self.settings.consume_batch)
        self._claim_cursor = _text(reply[0])
        entries = [(e, f) for e, f in reply[1] if e is not None]
        if entries:
            self.stats["claimed"] += len(entries)
            log.info("consume: took over %d pending entries of another consumer", len(entries))
        return entries

    async def handle(self, entries: Sequence[tuple[Any, Any]]) -> None:
        """Classify one read's entries, then write results and dead letters and acknowledge them all."""
        batch = _parse(entries)
        results = await self._classify(batch)
        settings = self.settings
        async with self.redis.pipeline(transaction=False) as pipe:
            maxlen = settings.results_maxlen or None
            for eid, result in results:
                pipe.xadd(settings.results_stream,
                          {RESULT_FIELD: orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY),
                           INGEST_ID_FIELD: eid},
                          maxlen=maxlen, approximate=True)
            for eid, raw, errors in batch.dead:
                pipe.xadd(settings.dead_letter_stream,
                          {INGEST_ID_FIELD: eid, DETECTION_FIELD: raw, ERROR_FIELD: orjson.dumps(errors)})
            if batch.ids:
                pipe.xack(self.stream, self.group, *batch.ids)  # last: a failure above leaves them pending
            await pipe.execute()
        if batch.dead:
            ingest.count_outcome("rejected", len(batch.dead))
            log.info("consume: %d entries to %s", len(batch.dead), settings.dead_letter_stream)
        self.stats["classified"] += len(results)
        self.stats["dead"] += len(batch.dead)
        self.stats["batches"] += 1

    async def _classify(self, batch: _Batch) -> list[tuple[str, dict[str, Any]]]:
        valid = batch.valid
        while valid:
            try:
                results = await ingest.classify_batch(self.runtime.classifier, [d for _, _, d in valid])
            except MissingPosition as exc:
                # refused before anything was stored: that entry is a dead letter, the others go again
                at = exc.index if exc.index is not None and len(valid) > 1 else 0
                eid, raw, _ = valid.pop(at)
                batch.dead.append((eid, raw, _MISSING_POSITION))
                continue
            except (StoreUnavailable, CommitContention):
                ingest.count_outcome("unavailable", len(valid))
                raise
            return [(eid, result) for (eid, _, _), result in zip(valid, results, strict=True)]
        return []


async def run_consumer(settings: Settings, stop: asyncio.Event | None = None) -> StreamConsumer:
    """Start a runtime and a consumer, run until ``stop`` is set (or SIGTERM/SIGINT), close both."""
    runtime = await Runtime.start(settings)
    client = blocking_client(runtime.redis_url, settings, settings.consume_block_ms / 1000)
    consumer = StreamConsumer(runtime, client)
    loop = asyncio.get_running_loop()
    # signal handlers can only be installed from the main thread (tests run consumers in threads)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, consumer.stop)
    watcher = None
    if stop is not None:
        async def _watch() -> None:
            await stop.wait()
            consumer.stop()

        watcher = asyncio.create_task(_watch())
    log.info("consumer %s reads %s (group %s) and writes %s", consumer.name, settings.ingest_stream,
             settings.consumer_group, settings.results_stream)
    try:
        await consumer.run()
    finally:
        if watcher is not None:
            watcher.cancel()
        await client.aclose()
        await runtime.aclose()
        log.info("consumer %s stopped: %s", consumer.name, consumer.stats)
    return consumer


def consume_command(args: argparse.Namespace) -> int:
    """Handler of ``goto-classifier consume``: flags override the ``GOTO_*`` settings they name."""
    from service.commands import WORKER_ENV

    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    from service.logs import configure_logging
    from service.settings import load_settings

    overrides = {
        key: value
        for key, value in (("ingest_stream", args.stream), ("results_stream", args.results_stream),
                           ("dead_letter_stream", args.dead_letter_stream), ("consumer_group", args.group),
                           ("consumer_name", args.consumer), ("consume_batch", args.batch))
        if value is not None
    }
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run_consumer(settings))
    return 0
