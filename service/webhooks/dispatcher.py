"""The webhook dispatcher: delivers outbox events to their endpoints, at least once.

One asyncio loop per subscription reads its outbox stream through the consumer group
:data:`~service.webhooks.outbox.CONSUMER_GROUP` (several dispatchers, in the service or in
``goto-classifier dispatch`` processes, share the work) and delivers each event with a signed POST.

Design (see docs/webhooks.md for the operator's view):

* An entry stays in the group's pending list (PEL) while it is being delivered. After the attempt one
  Lua step settles it: delivered -> XACK + XDEL; retryable failure -> XACK + XDEL + ZADD to the
  subscription's retry set with the attempt count and a not-before time; permanent failure, too many
  attempts or too old -> XACK + XDEL + XADD to the dead-letter stream. So retries and their counts live
  in Redis and survive restarts, and the stream only ever holds work still to do.
* Due retries are moved back into the stream (Lua: XADD + ZREM) by whichever dispatcher gets there
  first; the read loop sleeps no longer than the next due time.
* A live dispatcher refreshes the idle time of the entries it holds (XCLAIM ... JUSTID) every
  ``claim_idle_s / 3``; entries of a dispatcher that died stop being refreshed and are taken over with
  XAUTOCLAIM once idle for ``claim_idle_s``. A crash between a delivery and its acknowledgement
  therefore re-sends the event (same event id): at-least-once, never lost.
* Ordering: within one dispatcher, an object's events are delivered one after another in stream order
  (commit order); different objects go in parallel (``max_in_flight`` per subscription). A retried
  event goes to the back of the line, and a takeover may interleave, so receivers order an object's
  events by the payload's ``sequence`` and deduplicate by ``id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from service.webhooks.config import Subscription
from service.webhooks.deadletters import DeadField
from service.webhooks.metrics import DeliveryMetrics, PrometheusMetrics
from service.webhooks.outbox import (
    CONSUMER_GROUP,
    EntryField,
    dead_letter_key,
    decode_fields,
    outbox_key,
    retry_key,
)
from service.webhooks.retry import (
    DeadReason,
    FailureReason,
    Outcome,
    classify_exception,
    classify_response,
    decide,
)
from service.webhooks.signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

__all__ = ["ATTEMPT_HEADER", "Dispatcher"]

log = logging.getLogger("service.webhooks")

ATTEMPT_HEADER = "X-Goto-Delivery-Attempt"
USER_AGENT = "goto-classifier-webhooks/1"

_ACK_LUA = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""
# Reschedule only if this dispatcher still held the entry (XACK says 1): when another dispatcher took
# the entry over and settled it first, adding a second retry would deliver it twice more.
_RETRY_LUA = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
_DEAD_LUA = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], '*', unpack(fields))
return 1
"""
# Moves due retries back into the stream; returns {moved, score of the next retry or -1}.
_PROMOTE_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local fields = cjson.decode(member)
  local args = {}
  for name, value in pairs(fields) do
    args[#args + 1] = name
    args[#args + 1] = value
  end
  redis.call('XADD', KEYS[2], '*', unpack(args))
  redis.call('ZREM', KEYS[1], member)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then return {#due, '-1'} end
return {#due, nxt[2]}
"""


# Deletes consumers with no pending entries that have been idle for ARGV[2] ms. The check and the
# delete are one atomic step: deleting a consumer drops its pending entries, so a consumer that
# received an entry in between must not be deleted (that entry would never be delivered).
_PRUNE_CONSUMERS_LUA = """
local removed = 0
for _, flat in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #flat, 2 do info[flat[i]] = flat[i + 1] end
  if info['name'] ~= ARGV[3] and tonumber(info['pending']) == 0
      and tonumber(info['idle']) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_entries(response: Any) -> list[tuple[str, dict[str, str] | None]]:
    """Entries of an XREADGROUP reply in RESP2 (list) or RESP3 (dict) shape."""
    if not response:
        return []
    groups = response.items() if isinstance(response, dict) else response
    out: list[tuple[str, dict[str, str] | None]] = []
    for _stream, entries in groups:
        if entries and isinstance(entries[0], list):  # RESP3 wraps the entry list once more
            entries = entries[0]
        out += [(_s(i), decode_fields(f) if f is not None else None) for i, f in entries]
    return out


class _SubscriptionState:
    """Book-keeping of one subscription's loop inside one dispatcher."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.stream = outbox_key(sub.sid)
        self.retry = retry_key(sub.sid)
        self.dead = dead_letter_key(sub.sid)
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.tails: dict[str, asyncio.Task[None]] = {}  # object id -> its last queued delivery
        self.next_retry_at: float | None = None
        self.claim_cursor = "0-0"


class Dispatcher:
    """Delivers webhook events from the Redis outbox; start with ``await run()``, end with ``await stop()``.

    Parameters
    ----------
    redis
        A ``redis.asyncio`` client (any ``decode_responses``). Its socket timeout must exceed ``block_s``.
    subscriptions
        The configured subscriptions; one delivery loop each.
    transport
        Optional ``httpx.AsyncBaseTransport`` (tests: ``httpx.MockTransport``); ignored if ``client`` given.
    client
        Optional ``httpx.AsyncClient`` to send with (not closed by the dispatcher).
    consumer
        Consumer name in the group (default: host-pid-random, unique per process start).
    max_in_flight
        Entries one subscription holds at once (deliveries to different objects run concurrently).
    block_s
        Longest wait of one XREADGROUP; also bounds how long ``stop()`` waits for the read loop.
    claim_idle_s
        Idle time after which another dispatcher's pending entries are taken over (XAUTOCLAIM).
    prune_idle_s
        Consumers of the group with nothing pending and idle this long are deleted (each process start
        adds a consumer name; without pruning the group's consumer list only grows).
    stop_timeout_s
        How long ``stop()`` lets in-flight deliveries finish; unfinished ones stay pending and are
        taken over later (so nothing is lost, at worst sent twice).
    """

    def __init__(self, redis: Any, subscriptions: Sequence[Subscription],
                 transport: httpx.AsyncBaseTransport | None = None, *,
                 client: httpx.AsyncClient | None = None, consumer: str | None = None,
                 max_in_flight: int = 16, block_s: float = 1.0,
                 claim_idle_s: float = 30.0, prune_idle_s: float | None = None, lag_every_s: float = 5.0,
                 stop_timeout_s: float = 10.0,
                 redis_error_pause_s: float = 1.0, metrics: DeliveryMetrics | None = None,
                 clock: Callable[[], float] = time.time, rng: Callable[[], float] = random.random) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight: must be >= 1")
        if claim_idle_s <= 0 or block_s <= 0:
            raise ValueError("claim_idle_s and block_s: must be > 0")
        self.redis = redis
        self.subscriptions = list(subscriptions)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.max_in_flight = max_in_flight
        self.block_s = block_s
        self.claim_idle_s = claim_idle_s
        self.prune_idle_s = max(600.0, 10 * claim_idle_s) if prune_idle_s is None else prune_idle_s
        self.lag_every_s = lag_every_s
        self.stop_timeout_s = stop_timeout_s
        self.redis_error_pause_s = redis_error_pause_s
        self.metrics: DeliveryMetrics = metrics if metrics is not None else PrometheusMetrics()
        self.clock = clock
        self.rng = rng
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        self._ack = redis.register_script(_ACK_LUA)
        self._retry = redis.register_script(_RETRY_LUA)
        self._dead = redis.register_script(_DEAD_LUA)
        self._promote = redis.register_script(_PROMOTE_LUA)
        self._prune = redis.register_script(_PRUNE_CONSUMERS_LUA)
        self._states = [_SubscriptionState(s) for s in self.subscriptions]
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._finished: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Deliver until :meth:`stop` is called (or the task is cancelled)."""
        if self._finished is not None:
            raise RuntimeError("a Dispatcher runs once; create a new one")
        self._stop_event = asyncio.Event()
        self._finished = asyncio.Event()
        if self._stopping:
            self._stop_event.set()
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, follow_redirects=False,
                                             headers={"User-Agent": USER_AGENT})
        loops = [asyncio.create_task(self._serve(state), name=f"webhooks:{state.sub.sid}")
                 for state in self._states]
        try:
            await asyncio.gather(*loops)
            await self._drain()
        finally:
            for task in loops:
                task.cancel()
            for task in self._all_in_flight():
                task.cancel()
            await asyncio.gather(*loops, *self._all_in_flight(), return_exceptions=True)
            if self._owns_client and self._client is not None:
                await self._client.aclose()
            self._finished.set()

    async def stop(self) -> None:
        """Stop reading, let in-flight deliveries finish (up to ``stop_timeout_s``), return when done."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        if self._finished is not None:
            await self._finished.wait()

    def _all_in_flight(self) -> list[asyncio.Task[None]]:
        return [t for state in self._states for t in state.in_flight.values()]

    async def _drain(self) -> None:
        pending = self._all_in_flight()
        if pending:
            await asyncio.wait(pending, timeout=self.stop_timeout_s)

    # ------------------------------------------------------------------ per-subscription loop

    async def _serve(self, state: _SubscriptionState) -> None:
        assert self._stop_event is not None
        next_claim = next_heartbeat = next_lag = 0.0
        group_ready = False
        while not self._stop_event.is_set():
            try:
                if not group_ready:
                    await self._ensure_group(state)
                    group_ready = True
                now = time.monotonic()
                await self._promote_due(state)
                if now >= next_heartbeat:
                    await self._heartbeat(state)
                    next_heartbeat = now + self.claim_idle_s / 3
                if now >= next_claim:
                    await self._reclaim(state)
                    await self._prune(keys=[state.stream],
                                      args=[CONSUMER_GROUP, int(self.prune_idle_s * 1000), self.consumer])
                    next_claim = now + self.claim_idle_s / 3
                if now >= next_lag:
                    await self._report_outbox(state)
                    next_lag = now + self.lag_every_s
                free = self.max_in_flight - len(state.in_flight)
                if free <= 0:
                    await asyncio.wait(list(state.in_flight.values()), timeout=self.block_s,
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                for entry_id, fields in await self._read(state, free):
                    self._spawn(state, entry_id, fields)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if "NOGROUP" in str(exc):
                    group_ready = False  # the stream was deleted (FLUSHDB, DEL): recreate and go on
                log.warning("webhooks %s: %s: %s; retrying in %.1f s", state.sub.sid,
                            type(exc).__name__, exc, self.redis_error_pause_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), self.redis_error_pause_s)

    async def _ensure_group(self, state: _SubscriptionState) -> None:
        try:
            # From id 0, so events committed before any dispatcher ever ran are delivered too.
            await self.redis.xgroup_create(state.stream, CONSUMER_GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _promote_due(self, state: _SubscriptionState) -> None:
        _moved, next_score = await self._promote(keys=[state.retry, state.stream],
                                                args=[repr(self.clock()), self.max_in_flight * 4])
        score = float(_s(next_score))
        state.next_retry_at = None if score < 0 else score

    async def _read(self, state: _SubscriptionState, count: int) -> list[tuple[str, dict[str, str] | None]]:
        assert self._stop_event is not None
        wait_s = self.block_s
        if state.next_retry_at is not None:
            wait_s = min(wait_s, max(0.0, state.next_retry_at - self.clock()))
        block_ms = max(1, int(wait_s * 1000))
        read = asyncio.ensure_future(self.redis.xreadgroup(
            CONSUMER_GROUP, self.consumer, {state.stream: ">"}, count=count, block=block_ms))
        stop = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait([read, stop], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            read.cancel()
            raise
        finally:
            stop.cancel()
        if not read.done():
            # Stopping: entries the server hands this read stay pending and are taken over later.
            read.cancel()
            return []
        return _stream_entries(read.result())

    async def _heartbeat(self, state: _SubscriptionState) -> None:
        """Reset the idle time of entries this dispatcher holds, so no live dispatcher loses them."""
        if state.in_flight:
            await self.redis.xclaim(state.stream, CONSUMER_GROUP, self.consumer, 0,
                                    list(state.in_flight), justid=True)

    async def _reclaim(self, state: _SubscriptionState) -> None:
        """Take over entries left pending by dispatchers that stopped refreshing them (crashed)."""
        free = self.max_in_flight - len(state.in_flight)
        if free <= 0:
            return
        reply = await self.redis.xautoclaim(state.stream, CONSUMER_GROUP, self.consumer,
                                            int(self.claim_idle_s * 1000), state.claim_cursor, count=free)
        state.claim_cursor = _s(reply[0])
        for entry_id, fields in reply[1]:
            if entry_id is None or fields is None:
                continue
            eid = _s(entry_id)
            if eid in state.in_flight:
                continue
            log.info("webhooks %s: took over pending entry %s", state.sub.sid, eid)
            self._spawn(state, eid, decode_fields(fields))
        # Redis < 7 reports pending entries whose stream entry was deleted as (None, None); nothing to
        # deliver, but they must be acknowledged or they stay pending forever.
        if any(e is None for e, _ in reply[1]):
            pending = await self.redis.xpending_range(state.stream, CONSUMER_GROUP, min="-", max="+",
                                                      count=100, consumername=self.consumer)
            existing = {_s(e) for e, _ in await self._existing(state, [_s(p["message_id"]) for p in pending])}
            gone = [_s(p["message_id"]) for p in pending
                    if _s(p["message_id"]) not in existing and _s(p["message_id"]) not in state.in_flight]
            if gone:
                await self.redis.xack(state.stream, CONSUMER_GROUP, *gone)

    async def _existing(self, state: _SubscriptionState, ids: list[str]) -> list[tuple[Any, Any]]:
        found = []
        for eid in ids:
            found += await self.redis.xrange(state.stream, eid, eid)
        return found

    async def _report_outbox(self, state: _SubscriptionState) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(state.stream)
            pipe.zcard(state.retry)
            pipe.xrange(state.stream, count=1)
            ready, retrying, head = await pipe.execute()
        lag = 0.0
        if head:
            created = decode_fields(head[0][1]).get(EntryField.CREATED)
            lag = max(0.0, self.clock() - float(created)) if created else 0.0
        self.metrics.outbox(state.sub.sid, lag, int(ready), int(retrying))

    # ------------------------------------------------------------------ delivery

    def _spawn(self, state: _SubscriptionState, entry_id: str, fields: dict[str, str] | None) -> None:
        if fields is None:
            return
        object_id = fields.get(EntryField.OBJECT_ID, "")
        previous = state.tails.get(object_id)
        task = asyncio.create_task(self._deliver_after(previous, state, entry_id, fields))
        state.tails[object_id] = task
        state.in_flight[entry_id] = task

        def _done(t: asyncio.Task[None]) -> None:
            state.in_flight.pop(entry_id, None)
            if state.tails.get(object_id) is t:
                del state.tails[object_id]

        task.add_done_callback(_done)

    async def _deliver_after(self, previous: asyncio.Task[None] | None, state: _SubscriptionState,
                             entry_id: str, fields: dict[str, str]) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # keep an object's events in order; ignore how it ended
        try:
            await self._deliver(state, entry_id, fields)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Redis failed while settling: the entry stays pending and is retried after a takeover.
            log.exception("webhooks %s: could not settle entry %s", state.sub.sid, entry_id)

    async def _deliver(self, state: _SubscriptionState, entry_id: str, fields: dict[str, str]) -> None:
        sub = state.sub
        attempts = int(fields.get(EntryField.ATTEMPT, "0") or 0)
        created = float(fields.get(EntryField.CREATED, "0") or 0)
        if self.clock() - created > sub.max_age_s:
            await self._dead_letter(state, entry_id, fields, attempts, DeadReason.MAX_AGE, None)
            return
        outcome = await self._attempt(sub, fields, attempts + 1)
        attempts += 1
        if outcome.delivered:
            self.metrics.success(sub.sid)
            await self._ack(keys=[state.stream], args=[CONSUMER_GROUP, entry_id])
            return
        self.metrics.failure(sub.sid, outcome.reason)
        decision = decide(outcome, attempts, created, self.clock(), max_attempts=sub.max_attempts,
                          max_age_s=sub.max_age_s, backoff_base_s=sub.backoff_base_s,
                          backoff_max_s=sub.backoff_max_s, rng=self.rng)
        if decision.action == "dead":
            await self._dead_letter(state, entry_id, fields, attempts, decision.reason, outcome)
            return
        log.info("webhooks %s: event %s attempt %d failed (%s); retry in %.2f s", sub.sid,
                 fields.get(EntryField.EVENT_ID), attempts, outcome.error or outcome.reason, decision.delay_s)
        member = dict(fields)
        member.update({EntryField.ATTEMPT: str(attempts), EntryField.LAST_ERROR: outcome.error,
                       EntryField.LAST_STATUS: "" if outcome.status is None else str(outcome.status)})
        not_before = self.clock() + decision.delay_s
        member_json = json.dumps(member, sort_keys=True)
        await self._retry(keys=[state.stream, state.retry],
                          args=[CONSUMER_GROUP, entry_id, repr(not_before), member_json])
        if state.next_retry_at is None or not_before < state.next_retry_at:
            state.next_retry_at = not_before

    async def _attempt(self, sub: Subscription, fields: dict[str, str], attempt_no: int) -> Outcome:
        assert self._client is not None
        body = fields.get(EntryField.BODY, "").encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(sub.secret_value(), body, int(self.clock())),
            EVENT_ID_HEADER: fields.get(EntryField.EVENT_ID, ""),
            EVENT_TYPE_HEADER: fields.get(EntryField.TYPE, ""),
            ATTEMPT_HEADER: str(attempt_no),
        }
        started = time.perf_counter()
        try:
            # httpx timeouts bound each phase; the outer timeout bounds the whole attempt.
            async with asyncio.timeout(sub.timeout_s):
                request = self._client.build_request("POST", sub.url, content=body, headers=headers,
                                                     timeout=sub.timeout_s)
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the body is never needed; do not read a large one
            outcome = classify_response(response.status_code, response.headers, self.clock())
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            outcome = Outcome(False, True, FailureReason.TIMEOUT,
                              error=f"no response within {sub.timeout_s:g} s")
        except Exception as exc:
            outcome = classify_exception(exc)
        self.metrics.attempt(sub.sid, time.perf_counter() - started)
        return outcome

    async def _dead_letter(self, state: _SubscriptionState, entry_id: str, fields: dict[str, str],
                           attempts: int, reason: str, outcome: Outcome | None) -> None:
        record = dict(fields)
        record[EntryField.ATTEMPT] = str(attempts)
        if outcome is not None:
            record[EntryField.LAST_ERROR] = outcome.error
            record[EntryField.LAST_STATUS] = "" if outcome.status is None else str(outcome.status)
        record[DeadField.REASON] = reason
        record[DeadField.DEAD_AT] = repr(self.clock())
        flat = [x for pair in record.items() for x in pair]
        settled = await self._dead(keys=[state.stream, state.dead], args=[CONSUMER_GROUP, entry_id, *flat])
        if int(settled):
            self.metrics.dead_letter(state.sub.sid, reason)
            log.warning("webhooks %s: event %s dead-lettered (%s) after %d attempts", state.sub.sid,
                        fields.get(EntryField.EVENT_ID), reason, attempts)
