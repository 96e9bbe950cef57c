"""Webhooks wired into the service: events planned into the classification commit, delivered by the
dispatcher the service runs, to real HTTP receivers; and under commit races, the outbox holds exactly
the events of the updates that happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from service.classifier import Classifier
from service.inference import InferenceExecutor
from service.keys import object_keys
from service.notifications import WebhookNotifier
from service.schemas import DetectionRequest
from service.store import RedisStateStore
from service.webhooks import (
    EVENT_CLASS_CHANGED,
    EVENT_THRESHOLD_CROSSED,
    EVENT_UPDATED,
    ClassificationUpdate,
    NotifyState,
    Subscription,
    outbox_key,
    plan_events,
    verify_signature,
)
from tests.integration.conftest import ThreadServer, make_settings
from tests.integration.webhook_fixtures import SECRET, Receiver

pytestmark = pytest.mark.slow

OTHER_SECRET = "every-update-secret-0123456789"
# Thresholds fitted to the tiny test model, whose probabilities stay within ~0.35-0.6.
THRESHOLDS = {"thresholds": {"*": 0.53}, "rearm_thresholds": {"*": 0.45}}
FAST = {"timeout_s": 3.0, "backoff_base_s": 0.05, "backoff_max_s": 0.2}

VS_SITE = {"ra": 352.0, "dec": -7.0, "host_sep_arcsec": 0.5}  # context the tiny model calls VS
AGN_SITE = {"ra": 209.0, "dec": -49.0, "host_sep_arcsec": 150.0}  # ... and AGN


def changing_light_curve(object_id: str) -> list[dict[str, Any]]:
    """Detections in arrival order. Two late arrivals with earlier times and other positions move the
    context source (the earliest detection with a position), so the predicted class flips twice."""
    rng = random.Random(3)

    def det(name: str, mjd: float, **extra: Any) -> dict[str, Any]:
        return {"object_id": object_id, "detection_id": name, "mjd": mjd,
                "mag": round(17 + rng.uniform(-2, 2), 3), "mag_err": 0.05, **extra}

    dets = [det(f"a{i}", 58610.0 + 7 * i, **VS_SITE) for i in range(6)]
    dets.append(det("early", 58600.0, **AGN_SITE))
    dets += [det(f"a{i}", 58610.0 + 7 * i) for i in range(6, 9)]
    dets.append(det("earlier", 58590.0, **VS_SITE))
    return dets


def subscriptions_file(path: Path, marshall_url: str, every_url: str) -> Path:
    path.write_text(json.dumps({"subscriptions": [
        {"id": "marshall", "url": marshall_url, "secret": SECRET,
         "events": [EVENT_CLASS_CHANGED, EVENT_THRESHOLD_CROSSED], **THRESHOLDS, **FAST},
        {"id": "every", "url": every_url, "secret": OTHER_SECRET, "events": [EVENT_UPDATED], **FAST},
    ]}))
    return path


def expected_events(
    responses: list[dict[str, Any]], subs: list[Subscription]
) -> tuple[list[Any], NotifyState]:
    """Events (and the final notify state) that these classification updates must cause, planned
    independently of the service from what it answered or stored."""
    events, notify, previous = [], NotifyState(), None
    for r in responses:
        update = ClassificationUpdate(
            object_id=r["object_id"], detection_id=r["detection_id"], n_detections=r["n_detections"],
            mjd=r["mjd"], probabilities=r["probabilities"], predicted_class=r["predicted_class"],
            previous_predicted_class=previous, model_version=r["model_version"],
            time=datetime.fromisoformat(r["updated_at"]), sequence=r["revision"])
        planned, notify = plan_events(notify, update, subs)
        events += planned
        previous = r["predicted_class"]
    return events, notify


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def receivers(n: int) -> Iterator[list[Receiver]]:
    started = [Receiver().start() for _ in range(n)]
    try:
        yield started
    finally:
        for r in started:
            r.stop()


def last_generated_ids(url: str, sids: list[str]) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return [client.xinfo_stream(outbox_key(s))["last-generated-id"] for s in sids]
    finally:
        client.close()


def test_service_delivers_signed_events_once_in_order_and_replays_emit_nothing(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str, tmp_path: Path
) -> None:
    from service.app import create_app
    from service.webhooks import load_subscriptions

    dets = changing_light_curve("GOTO_hook+1")
    with receivers(2) as (marshall, every):
        path = subscriptions_file(tmp_path / "hooks.json", marshall.url, every.url)
        settings = make_settings(tiny_model_dir, clean_redis, webhooks=path)
        with ThreadServer(create_app(settings, model=loaded_model)) as srv, \
                httpx.Client(base_url=srv.url) as client:
            responses = []
            for d in dets:
                r = client.post("/classify", json=d)
                assert r.status_code == 200, r.text
                responses.append({**r.json(), "mjd": d["mjd"]})
            assert [r["status"] for r in responses] == ["classified"] * len(dets)
            assert {r["mode"] for r in responses} == {"incremental", "recompute"}

            expected, _ = expected_events(responses, load_subscriptions(path))
            types = Counter(e.type for e in expected)
            # the curve was built to flip class twice and cross thresholds (hysteresis re-arms VS)
            assert types[EVENT_CLASS_CHANGED] == 2 and types[EVENT_THRESHOLD_CROSSED] >= 3
            assert types[EVENT_UPDATED] == len(dets)
            by_sub = {sid: [e for e in expected if e.subscription_id == sid] for sid in ("marshall", "every")}
            for rec, sid in ((marshall, "marshall"), (every, "every")):
                wait_for(lambda rec=rec, sid=sid: len(rec.answered(200)) >= len(by_sub[sid]), 20,
                         f"{sid} deliveries")

            # Replays change nothing and add nothing to the outbox.
            before = last_generated_ids(clean_redis, ["marshall", "every"])
            for d in (dets[0], dets[6], dets[-1]):
                again = client.post("/classify", json=d)
                assert again.status_code == 200 and again.json()["status"] == "duplicate"
            assert last_generated_ids(clean_redis, ["marshall", "every"]) == before
            time.sleep(0.3)  # anything wrongly emitted would have been delivered by now

        for rec, sid, secret in ((marshall, "marshall", SECRET), (every, "every", OTHER_SECRET)):
            got = rec.requests
            want = by_sub[sid]
            # each event exactly once, byte-identical to the independently planned one, in sequence order
            assert [r.event_id for r in got] == [e.id for e in want]
            assert [r.body for r in got] == [e.body for e in want]
            for r in got:
                verify_signature(secret, r.headers, r.body)
                assert r.headers["x-goto-delivery-attempt"] == "1"
            sequences = [json.loads(r.body)["sequence"] for r in got]
            assert sequences == sorted(sequences)
    # one classification.updated per classified detection, carrying what the client was answered
    updated = [json.loads(r.body) for r in every.requests]
    assert [(u["detection_id"], u["n_detections"], u["sequence"]) for u in updated] == [
        (r["detection_id"], r["n_detections"], r["revision"]) for r in responses
    ]
    assert [u["probabilities"] for u in updated] == [r["probabilities"] for r in responses]


async def _race(
    url: str, loaded_model: Any, subs: list[Subscription], dets: list[DetectionRequest]
) -> tuple[list[dict[str, Any]], int]:
    executor = InferenceExecutor(loaded_model.engine)
    executor.start()
    clients = [aioredis.Redis.from_url(url) for _ in range(2)]
    try:
        workers = []
        for c in clients:
            notifier = WebhookNotifier(subs)
            store = RedisStateStore(c, loaded_model.metadata.sequence.n_steps, loaded_model.version,
                                    commit_extension=notifier.commit_lua)
            workers.append(Classifier(store, loaded_model, executor, max_commit_attempts=200,
                                      extension=notifier))
        results = await asyncio.gather(*(workers[i % 2].classify(d) for i, d in enumerate(dets)))
        return list(results), sum(w.stats["conflicts"] for w in workers)
    finally:
        executor.stop()
        for c in clients:
            await c.aclose()


def test_racing_writers_emit_exactly_the_events_of_committed_updates(
    clean_redis: str, loaded_model: Any
) -> None:
    """Two workers, shuffled arrivals (out of order, beyond the model's input, lost races): the outbox
    holds, per object and in commit order, exactly the events planned from the stored history."""
    subs = [Subscription(id="all", url="http://127.0.0.1:9/hook", secret=SECRET,
                         events=[EVENT_UPDATED, EVENT_CLASS_CHANGED, EVENT_THRESHOLD_CROSSED], **THRESHOLDS)]
    rng = random.Random(8)
    objects = {f"RACE{k}": sorted(58600 + rng.uniform(0, 100) for _ in range(34)) for k in range(3)}
    dets = [
        DetectionRequest(object_id=oid, detection_id=f"d{i:03d}", mjd=t, mag=17 + rng.uniform(-2, 2),
                         mag_err=0.05, **(VS_SITE if (i + k) % 3 else AGN_SITE))
        for k, (oid, mjds) in enumerate(objects.items()) for i, t in enumerate(mjds)
    ]
    rng.shuffle(dets)
    results, conflicts = asyncio.run(_race(clean_redis, loaded_model, subs, dets))
    assert conflicts > 0  # the races were real
    assert Counter(r["status"] for r in results)["stored"] > 0  # and some landed beyond the input

    sync = redis.Redis.from_url(clean_redis)
    entries = [fields for _, fields in sync.xrange(outbox_key("all"))]
    bodies_by_object: dict[str, list[bytes]] = {}
    for fields in entries:
        bodies_by_object.setdefault(fields[b"object_id"].decode(), []).append(fields[b"body"])
    total_changes = 0
    for oid in objects:
        rows = [json.loads(r) for r in sync.lrange(object_keys(oid).history, 0, -1)]
        assert [r["revision"] for r in rows] == list(range(1, len(rows) + 1))
        expected, notify = expected_events(
            [{**r, "object_id": oid, "updated_at": r["time"]} for r in rows], subs
        )
        assert bodies_by_object[oid] == [e.body for e in expected]
        total_changes += sum(e.type != EVENT_UPDATED for e in expected)
        # the stored notify state is the one the history implies
        assert sync.hget(object_keys(oid).state, "notify").decode() == notify.to_json()
    assert total_changes > 0
    ids = [f[b"id"] for f in entries]
    assert len(ids) == len(set(ids))
    sync.close()
