"""Dispatcher crashes and restarts: pending events are taken over, live dispatchers keep theirs.

The crashing dispatcher is a real ``goto-classifier dispatch`` process killed with SIGKILL while its
requests are in flight.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from service.webhooks import Dispatcher, Subscription, outbox_key, plan_events, publish
from service.webhooks.outbox import CONSUMER_GROUP
from tests.integration.webhook_fixtures import (
    SECRET,
    Receiver,
    RecordingMetrics,
    Reply,
    connect,
    dispatcher_options,
    receiver,
    running,
    subscription,
    update,
    wait_until,
    webhook_redis,
    webhook_redis_server,
)

__all__ = ["receiver", "webhook_redis", "webhook_redis_server"]  # fixtures used by name

REPO_ROOT = Path(__file__).resolve().parents[2]


def _hooks_file(tmp_path: Path, sub: Subscription) -> Path:
    path = tmp_path / "hooks.json"
    entry = sub.model_dump(include={"id", "url", "events", "timeout_s", "backoff_base_s", "backoff_max_s",
                                    "max_attempts"})
    path.write_text(json.dumps({"subscriptions": [{**entry, "secret": SECRET}]}))
    return path


def _start_cli_dispatcher(redis_url: str, hooks: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lightcurve.cli", "dispatch", "--redis-url", redis_url,
         "--webhooks", str(hooks), "--log-level", "warning"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def _publish_updates(redis_url: str, sub: Subscription, objects: list[str]) -> list:
    redis = connect(redis_url)
    events = []
    for object_id in objects:
        planned, _ = plan_events(None, update(object_id, 1, 0.1, None), [sub])
        await publish(redis, planned)
        events += planned
    await redis.aclose()
    return events


def test_events_of_a_killed_dispatcher_are_delivered_by_the_next(
        webhook_redis: str, receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = lambda rec, n: Reply(200, delay_s=60)  # hold every request: all stay in flight
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])
    events = asyncio.run(_publish_updates(webhook_redis, sub, ["a", "b", "c", "d"]))

    proc = _start_cli_dispatcher(webhook_redis, _hooks_file(tmp_path, sub))
    try:
        deadline = time.monotonic() + 30
        while len(receiver.requests) < 4:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the CLI dispatcher never sent the events"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL mid-flight: no acknowledgement, no cleanup
        proc.wait(timeout=10)
    receiver.script = lambda rec, n: Reply(200)

    async def takeover() -> None:
        redis = connect(webhook_redis)
        pending = await redis.xpending(outbox_key(sub.sid), CONSUMER_GROUP)
        assert pending["pending"] == 4  # the dead dispatcher's entries are still pending
        options = dispatcher_options(claim_idle_s=0.5, prune_idle_s=0.5)
        dispatcher = Dispatcher(redis, [sub], metrics=RecordingMetrics(), **options)
        async with running(dispatcher):
            await wait_until(lambda: len(receiver.delivered_ids()) == 4, 15, "taken-over deliveries")
            await wait_until(lambda: _pending(redis, sub), 5, "nothing pending")

            async def only_live_consumer() -> bool:
                consumers = await redis.xinfo_consumers(outbox_key(sub.sid), CONSUMER_GROUP)
                return [c["name"].decode() for c in consumers] == [dispatcher.consumer]

            # The dead dispatcher's consumer, now with nothing pending, is pruned from the group.
            await wait_until(only_live_consumer, 5, "the dead consumer to be pruned")
        assert await redis.xlen(outbox_key(sub.sid)) == 0
        await redis.aclose()

    asyncio.run(takeover())
    assert sorted(receiver.delivered_ids()) == sorted(e.id for e in events)
    # Each event reached the receiver twice (held by the killed dispatcher, then delivered), always with
    # its own id and identical body: the only kind of duplicate a receiver has to deduplicate.
    assert Counter(r.event_id for r in receiver.requests) == Counter({e.id: 2 for e in events})
    for event in events:
        assert {r.body for r in receiver.requests if r.event_id == event.id} == {event.body}


async def _pending(redis, sub: Subscription) -> bool:
    return (await redis.xpending(outbox_key(sub.sid), CONSUMER_GROUP))["pending"] == 0


def test_cli_dispatcher_stops_gracefully_on_sigterm(webhook_redis: str, receiver: Receiver,
                                                   tmp_path: Path) -> None:
    receiver.script = lambda rec, n: Reply(200, delay_s=0.5)
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])
    (event,) = asyncio.run(_publish_updates(webhook_redis, sub, ["obj"]))
    proc = _start_cli_dispatcher(webhook_redis, _hooks_file(tmp_path, sub))
    try:
        deadline = time.monotonic() + 30
        while not receiver.requests:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # while the request is in flight
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert receiver.delivered_ids() == [event.id]

    async def check() -> None:
        redis = connect(webhook_redis)
        assert await _pending(redis, sub)  # acknowledged before exiting
        await redis.aclose()

    asyncio.run(check())


def test_live_dispatchers_do_not_take_each_others_events(webhook_redis: str, receiver: Receiver) -> None:
    receiver.script = lambda rec, n: Reply(200, delay_s=1.2)  # much longer than claim_idle_s
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        options = dispatcher_options(claim_idle_s=0.3)
        async with running(Dispatcher(redis, [sub], metrics=RecordingMetrics(), **options)), \
                running(Dispatcher(redis, [sub], metrics=RecordingMetrics(), **options)):
            (event,) = await _publish_updates(webhook_redis, sub, ["obj"])
            await wait_until(lambda: receiver.delivered_ids() == [event.id], 10, "the delivery")
            await asyncio.sleep(0.4)
        # The holder refreshed its claim, so the other never re-sent the event while it was in flight.
        assert [r.event_id for r in receiver.requests] == [event.id]
        await redis.aclose()

    asyncio.run(scenario())


def test_dispatcher_recreates_its_group_after_the_stream_is_deleted(webhook_redis: str,
                                                                   receiver: Receiver) -> None:
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        async with running(Dispatcher(redis, [sub], metrics=RecordingMetrics(), **dispatcher_options())):
            await wait_until(lambda: redis.exists(outbox_key(sub.sid)), 5, "the group")
            await redis.flushdb()  # an operator wipes Redis under a running dispatcher
            (event,) = await _publish_updates(webhook_redis, sub, ["obj"])
            await wait_until(lambda: receiver.delivered_ids() == [event.id], 10, "delivery after the wipe")
        await redis.aclose()

    asyncio.run(scenario())
