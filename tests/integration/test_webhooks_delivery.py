"""End-to-end webhook delivery: real Redis outbox, real dispatcher, real HTTP receiver (uvicorn)."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import itertools
import json
import time
from collections import Counter, defaultdict
from contextlib import redirect_stdout
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from lightcurve.cli import main as cli_main
from service.webhooks import (
    EVENT_THRESHOLD_CROSSED,
    EVENT_TYPES,
    Dispatcher,
    list_dead_letters,
    outbox_key,
    plan_events,
    publish,
    verify_signature,
)
from service.webhooks.outbox import CONSUMER_GROUP, retry_key
from tests.integration.webhook_fixtures import (
    SECRET,
    Receiver,
    RecordingMetrics,
    Reply,
    commit_update,
    connect,
    dispatcher_options,
    receiver,
    running,
    serve_app,
    subscription,
    update,
    wait_until,
    webhook_redis,
    webhook_redis_server,
)

__all__ = ["receiver", "webhook_redis", "webhook_redis_server"]  # fixtures used by name

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _planned(redis, subs, object_id: str, count: int, sn: float = 0.1) -> list:
    """Publish ``count`` updates of one object (``classification.updated`` subscriptions get each)."""
    events = []
    for n in range(1, count + 1):
        planned, _ = plan_events(None, update(object_id, n, sn, "VS" if n > 1 else None), subs)
        await publish(redis, planned)
        events += planned
    return events


async def _outbox_empty(redis, sid: str) -> bool:
    pending = await redis.xpending(outbox_key(sid), CONSUMER_GROUP)
    return await redis.xlen(outbox_key(sid)) == 0 and pending["pending"] == 0 \
        and await redis.zcard(retry_key(sid)) == 0


def test_each_state_change_is_delivered_once_signed_and_in_object_order(
        webhook_redis: str, receiver: Receiver) -> None:
    receiver.start()
    every = subscription(receiver.url, id="all-events", events=list(EVENT_TYPES))
    default = subscription(receiver.url, id="marshall")  # class_changed + threshold_crossed
    series = {  # SN probability per detection; previous class follows the committed state
        "GOTO_IRAS18547+1254": [0.1, 0.72, 0.69, 0.71, 0.3, 0.8],
        "ZTF21abcdefg": [0.9, 0.95],
        "obj-3": [0.2],
    }

    async def scenario() -> None:
        redis = connect(webhook_redis)
        expected = []
        for object_id, values in series.items():
            previous = None
            for n, sn in enumerate(values, start=1):
                up = update(object_id, n, sn, previous)
                committed, events = await commit_update(redis, [every, default], up)
                assert committed
                expected += events
                previous = up.predicted_class
        metrics = RecordingMetrics()
        async with running(Dispatcher(redis, [every, default], metrics=metrics, **dispatcher_options())):
            await wait_until(lambda: len(receiver.delivered_ids()) >= len(expected), 10, "all deliveries")
            await asyncio.sleep(0.3)  # nothing more may arrive
        assert Counter(receiver.delivered_ids()) == Counter(e.id for e in expected)  # each exactly once
        assert len(receiver.requests) == len(expected)
        for sid in ("all-events", "marshall"):
            assert await _outbox_empty(redis, sid)
        assert metrics.successes == metrics.attempts == len(expected) and not metrics.failures
        await redis.aclose()

        # 9 updates -> 9 classification.updated. Hysteresis: GOTO's SN fires at 0.72 and, after falling
        # to 0.3, at 0.8 -- not at 0.71; ZTF21's fires once. (VS stays below 0.7 throughout.)
        by_type = Counter((json.loads(r.body)["subscription_id"], json.loads(r.body)["type"])
                          for r in receiver.requests)
        assert by_type[("all-events", "classification.updated")] == 9
        assert by_type[("marshall", EVENT_THRESHOLD_CROSSED)] == 3
        goto_sn = [json.loads(r.body) for r in receiver.requests]
        goto_sn = [b for b in goto_sn if b["object_id"] == "GOTO_IRAS18547+1254"
                   and b["type"] == EVENT_THRESHOLD_CROSSED and b["subscription_id"] == "marshall"]
        assert [b["n_detections"] for b in goto_sn] == [2, 6]

        sequences = defaultdict(list)
        for r in receiver.requests:
            body = json.loads(r.body)
            # Signed as documented; header and body carry the same event id.
            assert verify_signature(SECRET, r.headers, r.body, tolerance_s=60) > 0
            assert r.headers["x-goto-event-id"] == body["id"]
            assert r.headers["x-goto-event-type"] == body["type"]
            assert r.headers["content-type"] == "application/json"
            sequences[(body["subscription_id"], body["object_id"])].append(body["sequence"])
        # Without retries, one dispatcher delivers an object's events in commit order.
        assert all(seq == sorted(seq) for seq in sequences.values())

    asyncio.run(scenario())


def test_an_update_that_did_not_commit_emits_no_event(webhook_redis: str) -> None:
    sub = subscription("http://127.0.0.1:9/unused", events=list(EVENT_TYPES))

    async def scenario() -> None:
        redis = connect(webhook_redis)
        committed, _ = await commit_update(redis, [sub], update("obj", 1, 0.9, None), expected_revision=5)
        assert not committed  # lost the optimistic-concurrency check: nothing written at all
        assert await redis.xlen(outbox_key(sub.sid)) == 0
        assert await redis.exists("goto:{o:obj}:state") == 0
        committed, events = await commit_update(redis, [sub], update("obj", 1, 0.9, None))
        assert committed and await redis.xlen(outbox_key(sub.sid)) == len(events) == 2
        await redis.aclose()

    asyncio.run(scenario())


def test_receiver_down_then_up_receives_every_event(webhook_redis: str, receiver: Receiver) -> None:
    sub = subscription(receiver.url, events=["classification.updated"], backoff_base_s=0.1,
                       backoff_max_s=0.3)

    async def scenario() -> None:
        redis = connect(webhook_redis)
        expected = []
        for i in range(12):
            expected += await _planned(redis, [sub], f"obj{i}", 2)
        metrics = RecordingMetrics()
        async with running(Dispatcher(redis, [sub], metrics=metrics, **dispatcher_options())):
            # Down: every event fails at least once with a refused connection, and nothing is dropped.
            await wait_until(lambda: len(metrics.failures) >= 2 * len(expected), 10, "failed attempts")
            assert set(metrics.failures) == {"connect"} and not metrics.dead
            receiver.start()
            await wait_until(lambda: set(receiver.delivered_ids()) == {e.id for e in expected}, 10,
                             "every event after the receiver came up")
            await wait_until(lambda: _outbox_empty(redis, sub.sid), 5, "an empty outbox")
        assert await redis.xlen(f"goto:{{wh:{sub.sid}}}:dead") == 0
        # Duplicates could only be retries of the same event ids; here each arrived once.
        assert Counter(receiver.delivered_ids()) == Counter(e.id for e in expected)
        assert all(int(r.headers["x-goto-delivery-attempt"]) >= 2 for r in receiver.requests)
        await redis.aclose()

    asyncio.run(scenario())


def test_5xx_is_retried_with_the_same_id_and_body(webhook_redis: str, receiver: Receiver) -> None:
    calls: Counter[str] = Counter()

    def flaky(record, n):
        calls[record.event_id] += 1
        return Reply(500 if calls[record.event_id] <= 2 else 200)

    receiver.script = flaky
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        expected = await _planned(redis, [sub], "obj", 3)
        async with running(Dispatcher(redis, [sub], metrics=RecordingMetrics(), **dispatcher_options())):
            await wait_until(lambda: len(receiver.delivered_ids()) == 3, 10, "deliveries after 500s")
        await redis.aclose()
        for event in expected:
            tries = [r for r in receiver.requests if r.event_id == event.id]
            assert [r.status for r in tries] == [500, 500, 200]
            assert [r.headers["x-goto-delivery-attempt"] for r in tries] == ["1", "2", "3"]
            assert {r.body for r in tries} == {event.body}

    asyncio.run(scenario())


def test_429_retry_after_is_honoured(webhook_redis: str, receiver: Receiver) -> None:
    receiver.script = lambda rec, n: Reply(429, {"Retry-After": "1"}) if n == 1 else Reply(200)
    receiver.start()
    # Backoff alone would retry within 10 ms; only Retry-After can explain a 1 s gap.
    sub = subscription(receiver.url, events=["classification.updated"], backoff_base_s=0.01,
                       backoff_max_s=0.01)

    async def scenario() -> None:
        redis = connect(webhook_redis)
        (event,) = await _planned(redis, [sub], "obj", 1)
        metrics = RecordingMetrics()
        async with running(Dispatcher(redis, [sub], metrics=metrics, **dispatcher_options())):
            await wait_until(lambda: receiver.delivered_ids() == [event.id], 10, "delivery after 429")
        await redis.aclose()
        first, second = receiver.requests
        assert (first.status, second.status) == (429, 200)
        assert second.at - first.at >= 0.95
        assert metrics.failures == ["http_429"]

    asyncio.run(scenario())


def test_400_is_dead_lettered_without_retries_then_replayed_from_the_cli(
        webhook_redis: str, receiver: Receiver) -> None:
    receiver.script = lambda rec, n: Reply(400) if b'"object_id":"bad"' in rec.body else Reply(200)
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        good = await _planned(redis, [sub], "good", 2)
        (bad,) = await _planned(redis, [sub], "bad", 1)
        metrics = RecordingMetrics()
        async with running(Dispatcher(redis, [sub], metrics=metrics, **dispatcher_options())):
            await wait_until(lambda: len(receiver.delivered_ids()) == 2 and metrics.dead, 10, "2 ok + 1 dead")
            await asyncio.sleep(0.5)  # room for a retry storm, which must not happen
            assert [r.status for r in receiver.requests if r.event_id == bad.id] == [400]
            assert metrics.dead == ["rejected"] and metrics.failures == ["http_4xx"]
            (letter,) = await list_dead_letters(redis, sub.sid)
            assert (letter.event_id, letter.reason, letter.last_status, letter.attempts) \
                == (bad.id, "rejected", "400", 1)

            out = io.StringIO()
            with redirect_stdout(out):
                code = await asyncio.to_thread(cli_main, ["webhooks", "dead-letters", "--redis-url",
                                                          webhook_redis, "--json"])
            assert code == 0
            listed = [json.loads(line) for line in out.getvalue().splitlines()]
            assert [(d["event_id"], d["reason"]) for d in listed] == [(bad.id, "rejected")]
            table = io.StringIO()
            with redirect_stdout(table):
                await asyncio.to_thread(cli_main, ["webhooks", "dead-letters", "--redis-url", webhook_redis])
            assert bad.id in table.getvalue() and "rejected" in table.getvalue()

            receiver.script = lambda rec, n: Reply(200)  # the receiver is fixed
            with redirect_stdout(io.StringIO()):
                code = await asyncio.to_thread(cli_main, ["webhooks", "replay-dead-letters", "--redis-url",
                                                          webhook_redis, "--id", bad.id])
            assert code == 0
            await wait_until(lambda: bad.id in receiver.delivered_ids(), 10, "replayed delivery")
            assert await list_dead_letters(redis, sub.sid) == []
        replayed = [r for r in receiver.requests if r.event_id == bad.id]
        assert replayed[-1].body == bad.body and replayed[-1].headers["x-goto-delivery-attempt"] == "1"
        assert sorted(receiver.delivered_ids()) == sorted([e.id for e in good] + [bad.id])
        await redis.aclose()

    asyncio.run(scenario())


def test_events_older_than_max_age_are_dead_lettered(webhook_redis: str, receiver: Receiver) -> None:
    sub = subscription(receiver.url, events=["classification.updated"], max_age_s=0.4)  # receiver down

    async def scenario() -> None:
        redis = connect(webhook_redis)
        events = await _planned(redis, [sub], "obj", 2)
        metrics = RecordingMetrics()
        async with running(Dispatcher(redis, [sub], metrics=metrics, **dispatcher_options())):
            await wait_until(lambda: len(metrics.dead) == 2, 10, "dead letters")
        letters = await list_dead_letters(redis, sub.sid)
        assert sorted(d.event_id for d in letters) == sorted(e.id for e in events)
        assert {d.reason for d in letters} == {"max_age"}
        assert all(d.attempts >= 1 and d.last_error for d in letters)
        assert await _outbox_empty(redis, sub.sid)
        await redis.aclose()

    asyncio.run(scenario())


def test_slow_object_does_not_hold_up_others(webhook_redis: str, receiver: Receiver) -> None:
    receiver.script = lambda rec, n: Reply(200, delay_s=0.6 if b'"object_id":"slow"' in rec.body else 0.0)
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        slow = await _planned(redis, [sub], "slow", 3)
        fast = []
        for i in range(6):
            fast += await _planned(redis, [sub], f"fast{i}", 1)
        async with running(Dispatcher(redis, [sub], metrics=RecordingMetrics(), **dispatcher_options())):
            await wait_until(lambda: len(receiver.delivered_ids()) == 9, 10, "all deliveries")
        await redis.aclose()
        slow_requests = [r for r in receiver.requests if r.event_id in {e.id for e in slow}]
        fast_requests = [r for r in receiver.requests if r.event_id in {e.id for e in fast}]
        # The other objects were not queued behind the slow object's 0.6 s answers.
        assert max(r.at for r in fast_requests) < slow_requests[0].at + 0.5
        # One object's events go one at a time, in commit order.
        assert [json.loads(r.body)["sequence"] for r in slow_requests] == [1, 2, 3]
        assert all(b.at - a.at >= 0.55 for a, b in itertools.pairwise(slow_requests))

    asyncio.run(scenario())


def test_stop_lets_in_flight_delivery_finish(webhook_redis: str, receiver: Receiver) -> None:
    receiver.script = lambda rec, n: Reply(200, delay_s=0.5)
    receiver.start()
    sub = subscription(receiver.url, events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        (event,) = await _planned(redis, [sub], "obj", 1)
        dispatcher = Dispatcher(redis, [sub], metrics=RecordingMetrics(), **dispatcher_options())
        task = asyncio.create_task(dispatcher.run())
        await wait_until(lambda: len(receiver.requests) == 1, 5, "request in flight")
        await dispatcher.stop()
        await task
        assert receiver.delivered_ids() == [event.id]
        assert await _outbox_empty(redis, sub.sid)  # acknowledged before stop() returned
        await redis.aclose()

    asyncio.run(scenario())


def test_prometheus_metrics_count_deliveries(webhook_redis: str, receiver: Receiver) -> None:
    receiver.script = lambda rec, n: Reply(400) if b'"object_id":"bad"' in rec.body else Reply(200)
    receiver.start()
    sid = f"metrics-{time.monotonic_ns()}"  # labels unique to this test in the global registry
    sub = subscription(receiver.url, id=sid, events=["classification.updated"])

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"subscription": sid, **labels}) or 0.0

    async def scenario() -> None:
        redis = connect(webhook_redis)
        await _planned(redis, [sub], "good", 2)
        await _planned(redis, [sub], "bad", 1)
        async with running(Dispatcher(redis, [sub], **dispatcher_options())):  # default: Prometheus
            await wait_until(lambda: value("goto_webhook_dead_letters_total", reason="rejected") == 1
                             and value("goto_webhook_delivery_successes_total") == 2, 10, "metrics")
            await wait_until(lambda: value("goto_webhook_outbox_backlog", state="ready") == 0, 5, "backlog")
        await redis.aclose()
        assert value("goto_webhook_delivery_attempts_total") == 3
        assert value("goto_webhook_delivery_failures_total", reason="http_4xx") == 1
        assert value("goto_webhook_delivery_duration_seconds_count") == 3
        assert value("goto_webhook_outbox_lag_seconds") == 0.0

    asyncio.run(scenario())


def test_outbox_lag_reports_the_oldest_waiting_event(webhook_redis: str, receiver: Receiver) -> None:
    sub = subscription(receiver.url, events=["classification.updated"])  # receiver down

    async def scenario() -> None:
        redis = connect(webhook_redis)
        await _planned(redis, [sub], "obj", 1)
        metrics = RecordingMetrics()
        await asyncio.sleep(0.3)
        async with running(Dispatcher(redis, [sub], metrics=metrics, **dispatcher_options())):
            await wait_until(lambda: len(metrics.outbox_reports) > 0, 5, "an outbox report")
        lag, ready, retrying = metrics.outbox_reports[0]
        assert lag >= 0.3 and ready + retrying == 1
        await redis.aclose()

    asyncio.run(scenario())


def test_example_receiver_accepts_signed_events_once(webhook_redis: str) -> None:
    spec = importlib.util.spec_from_file_location("marshall_receiver", EXAMPLES / "marshall_receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app(SECRET)

    with serve_app(app) as base:
        good = subscription(f"{base}/goto/webhook", events=list(EVENT_TYPES))
        wrong = subscription(f"{base}/goto/webhook", id="wrong-secret", secret="not-the-secret",
                             events=["classification.updated"])

        async def scenario() -> None:
            redis = connect(webhook_redis)
            events, _ = plan_events(None, update("GOTO_X", 1, 0.9, None), [good, wrong])
            await publish(redis, events)
            await publish(redis, [e for e in events if e.subscription_id == good.sid])  # a duplicate
            events2, _ = plan_events(None, update("GOTO_X", 2, 0.2, "SN"), [good])
            await publish(redis, events2)
            metrics = RecordingMetrics()
            async with running(Dispatcher(redis, [good, wrong], metrics=metrics, **dispatcher_options())):
                await wait_until(lambda: metrics.successes == 6 and metrics.dead == ["rejected"], 10,
                                 "deliveries")
            (letter,) = await list_dead_letters(redis, "wrong-secret")
            assert letter.last_status == "401"
            await redis.aclose()
            processed = [e["id"] for e in app.state.processed]
            good_ids = [e.id for e in events + events2 if e.subscription_id == good.sid]
            assert sorted(processed) == sorted(good_ids)  # the duplicate was dropped
            assert app.state.latest["GOTO_X"]["sequence"] == 2

        asyncio.run(scenario())


def test_transport_seam_sends_signed_requests_without_a_network(webhook_redis: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sub = subscription("https://marshall.invalid/hook", events=["classification.updated"])

    async def scenario() -> None:
        redis = connect(webhook_redis)
        (event,) = await _planned(redis, [sub], "obj", 1)
        dispatcher = Dispatcher(redis, [sub], httpx.MockTransport(handler), metrics=RecordingMetrics(),
                                **dispatcher_options())
        async with running(dispatcher):
            await wait_until(lambda: len(seen) == 1, 5, "the request")
            await wait_until(lambda: _outbox_empty(redis, sub.sid), 5, "acknowledgement")
        await redis.aclose()
        (request,) = seen
        assert request.method == "POST" and str(request.url) == sub.url
        assert request.content == event.body
        verify_signature(SECRET, request.headers, request.content, tolerance_s=60)

    asyncio.run(scenario())
