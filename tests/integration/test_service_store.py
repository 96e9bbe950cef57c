"""The Redis state store and the classifier against a real Redis, without HTTP.

Two :class:`Classifier` instances stand for two workers (each with its own cache and locks) sharing one
Redis, so commit races really happen and the compare-and-set path is exercised.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from lightcurve.preprocessing import sequence_input
from service.classifier import Classifier
from service.codec import encode_detection
from service.inference import InferenceExecutor
from service.keys import object_keys
from service.schemas import DetectionRequest
from service.store import CommitRequest, RedisStateStore

pytestmark = pytest.mark.slow


def detection(oid: str, i: int, mjd: float, pos: bool = True) -> DetectionRequest:
    extra = {"ra": 200.0, "dec": -5.0} if pos else {}
    return DetectionRequest(
        object_id=oid,
        detection_id=f"d{i:03d}",
        mjd=mjd,
        mag=18.0 + (i % 7) * 0.2,
        mag_err=0.05 + (i % 3) * 0.02,
        **extra,
    )


async def _race(
    redis_url: str, loaded_model: Any, dets: list[DetectionRequest]
) -> tuple[list[dict[str, Any]], int]:
    executor = InferenceExecutor(loaded_model.engine)
    executor.start()
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        workers = [
            Classifier(
                RedisStateStore(c, loaded_model.metadata.sequence.n_steps, loaded_model.version),
                loaded_model,
                executor,
                max_commit_attempts=200,
            )
            for c in clients
        ]
        results = await asyncio.gather(*(workers[i % 2].classify(d) for i, d in enumerate(dets)))
        return list(results), sum(w.stats["conflicts"] for w in workers)
    finally:
        executor.stop()
        for c in clients:
            await c.aclose()


def test_two_writers_lose_nothing_and_match_recompute(clean_redis: str, loaded_model: Any) -> None:
    rng = random.Random(5)
    objects = {f"OBJ{k}": sorted(58600 + rng.uniform(0, 100) for _ in range(36)) for k in range(3)}
    dets = [detection(oid, i, t) for oid, mjds in objects.items() for i, t in enumerate(mjds)]
    rng.shuffle(dets)
    results, conflicts = asyncio.run(_race(clean_redis, loaded_model, dets))
    assert conflicts > 0  # the race was real
    assert all(r["status"] in ("classified", "stored") for r in results)
    sync = redis.Redis.from_url(clean_redis)
    for oid, mjds in objects.items():
        keys = object_keys(oid)
        assert sync.zcard(keys.order) == 36 and sync.hlen(keys.dets) == 36
        state = sync.hgetall(keys.state)
        x = sequence_input(
            mjds,
            [18.0 + (i % 7) * 0.2 for i in range(36)],
            [0.05 + (i % 3) * 0.02 for i in range(36)],
            loaded_model.metadata.sequence,
        )
        expected = loaded_model.engine.run(x.values[None], np.array([x.n_valid]))[0]
        np.testing.assert_allclose(np.frombuffer(state[b"rnn"], np.float32), expected, atol=1e-5)
        assert state[b"ids"].decode().split("\n") == [f"d{i:03d}" for i in range(30)]
        # exactly one history row per detection that entered the model's input
        assert sync.llen(keys.history) == sum(
            1 for r in results if r["object_id"] == oid and r["status"] == "classified"
        )
    sync.close()


def test_commit_conflict_undoes_the_insert(clean_redis: str, loaded_model: Any) -> None:
    async def scenario() -> tuple[Any, Any]:
        client = aioredis.Redis.from_url(clean_redis)
        store = RedisStateStore(client, 30, loaded_model.version)
        keys = object_keys("OBJ_cas")
        executor = InferenceExecutor(loaded_model.engine)
        executor.start()
        classifier = Classifier(store, loaded_model, executor)
        await classifier.classify(detection("OBJ_cas", 0, 58600.0))
        payload = encode_detection(58601.0, 18.0, 0.1, "L", None, None, None, 0.0)
        wrong = CommitRequest(keys, "d999", 58601.0, payload, "classify", "nope\nd999", 2, False, b'{"x":1')
        reply = await store.commit(wrong)
        prepared = await store.prepare(keys, "d000", 58600.0)
        executor.stop()
        await client.aclose()
        return reply, prepared

    reply, prepared = asyncio.run(scenario())
    assert reply.kind == "conflict" and [d.detection_id for d in reply.light_curve] == ["d000"]
    sync = redis.Redis.from_url(clean_redis)
    keys = object_keys("OBJ_cas")
    assert sync.zrange(keys.order, 0, -1) == [b"d000"] and sync.hkeys(keys.dets) == [b"d000"]
    assert sync.llen(keys.history) == 1
    assert prepared.kind == "duplicate"
    sync.close()


def test_prepare_decides_step_recompute_beyond(clean_redis: str, loaded_model: Any) -> None:
    async def scenario() -> list[str]:
        client = aioredis.Redis.from_url(clean_redis)
        store = RedisStateStore(client, 30, loaded_model.version)
        executor = InferenceExecutor(loaded_model.engine)
        executor.start()
        classifier = Classifier(store, loaded_model, executor, cache_size=0)
        keys = object_keys("OBJ_p")
        kinds = [(await store.prepare(keys, "d000", 58600.0)).kind]
        for i in range(30):
            await classifier.classify(detection("OBJ_p", i, 58600.0 + i, pos=i == 0))
        kinds.append((await store.prepare(keys, "d100", 58700.0)).kind)  # after the 30th: beyond
        kinds.append((await store.prepare(keys, "d101", 58610.5)).kind)  # among the first 30: recompute
        kinds.append((await store.prepare(keys, "d005", 58605.0)).kind)  # replay
        # equal mjd to the 30th detection "d029": the detection id bytes break the tie
        kinds.append((await store.prepare(keys, "d029a", 58629.0)).kind)  # after d029: beyond
        kinds.append((await store.prepare(keys, "d028z", 58629.0)).kind)  # before d029: recompute
        stats = dict(classifier.stats)
        executor.stop()
        await client.aclose()
        kinds.append(str(stats["incremental"]))
        return kinds

    assert asyncio.run(scenario()) == ["new", "beyond", "recompute", "duplicate", "beyond", "recompute", "30"]


class _RecordingExtension:
    """A commit extension like the webhook outbox: one stream entry per commit, plus a notify state."""

    lua = (
        "redis.call('XADD', KEYS[key_at], '*', 'object', ARGV[extra_at], 'revision', revision, 'n', n, "
        "'planned_n', ARGV[extra_at + 1])"
    )

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.previous: list[str] = []

    def plan(
        self, object_id: str, previous: Any, new: Any, n_detections: int
    ) -> tuple[list[Any], list[str], str]:
        self.previous.append(previous.notify if previous is not None else "<new>")
        return [object_id, n_detections], [self.stream], f"seen-{new.n_used}"


def test_commit_extension_writes_in_the_same_step(clean_redis: str, loaded_model: Any) -> None:
    stream = "goto:{o:OBJ_ext}:events"  # same hash tag as the object: a single-slot script

    async def scenario() -> _RecordingExtension:
        client = aioredis.Redis.from_url(clean_redis)
        ext = _RecordingExtension(stream)
        store = RedisStateStore(client, 30, loaded_model.version, commit_extension=ext.lua)
        executor = InferenceExecutor(loaded_model.engine)
        executor.start()
        classifier = Classifier(store, loaded_model, executor, extension=ext)
        for i in range(3):
            await classifier.classify(detection("OBJ_ext", i, 58600.0 + i))
        await classifier.classify(detection("OBJ_ext", 1, 58601.0))  # replay: no commit, no event
        executor.stop()
        await client.aclose()
        return ext

    ext = asyncio.run(scenario())
    sync = redis.Redis.from_url(clean_redis)
    entries = sync.xrange(stream)
    assert [e[1][b"revision"] for e in entries] == [b"1", b"2", b"3"]
    # the count given to plan() is the one the commit saw
    assert [e[1][b"planned_n"] for e in entries] == [e[1][b"n"] for e in entries] == [b"1", b"2", b"3"]
    assert ext.previous == ["<new>", "seen-1", "seen-2"]
    assert sync.hget(object_keys("OBJ_ext").state, "notify") == b"seen-3"
    sync.close()


def test_new_model_version_recomputes_stored_objects(
    clean_redis: str, loaded_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from service.inference import load_model
    from tests.integration.conftest import build_tiny_artifact

    other = load_model(build_tiny_artifact(tmp_path_factory.mktemp("v2") / "m", seed=8, version="tiny-v2"))

    async def scenario() -> list[dict[str, Any]]:
        client = aioredis.Redis.from_url(clean_redis)
        out = []
        for model, dets in ((loaded_model, [0, 1, 2]), (other, [3, 1])):
            executor = InferenceExecutor(model.engine)
            executor.start()
            classifier = Classifier(RedisStateStore(client, 30, model.version), model, executor)
            for i in dets:
                out.append(await classifier.classify(detection("OBJ_v", i, 58600.0 + i)))
            executor.stop()
        await client.aclose()
        return out

    results = asyncio.run(scenario())
    assert [r["model_version"] for r in results] == [loaded_model.version] * 3 + ["tiny-v2"] * 2
    # The new model never steps from the old model's RNN state: it recomputes, and a replay under the
    # new model refreshes the classification without storing anything.
    assert results[3]["mode"] == "recompute" and results[3]["n_detections"] == 4
    assert results[4]["status"] == "duplicate" and results[4]["n_detections"] == 4
    mjds = [58600.0 + i for i in range(4)]
    x = sequence_input(
        mjds,
        [18.0 + (i % 7) * 0.2 for i in range(4)],
        [0.05 + (i % 3) * 0.02 for i in range(4)],
        other.metadata.sequence,
    )
    state = other.engine.run(x.values[None], np.array([x.n_valid]))
    sync = redis.Redis.from_url(clean_redis)
    stored = np.frombuffer(sync.hget(object_keys("OBJ_v").state, "rnn"), np.float32)
    sync.close()
    np.testing.assert_allclose(stored, state[0], atol=1e-5)


def _expected_state(loaded_model: Any, mjds: list[float], idx: list[int]) -> np.ndarray:
    x = sequence_input(
        mjds,
        [18.0 + (i % 7) * 0.2 for i in idx],
        [0.05 + (i % 3) * 0.02 for i in idx],
        loaded_model.metadata.sequence,
    )
    return loaded_model.engine.run(x.values[None], np.array([x.n_valid]))[0]


def test_a_worker_without_the_state_guesses_new_then_asks_redis(clean_redis: str, loaded_model: Any) -> None:
    """A cache miss is committed as a new object; for a known object that commit is refused, the
    detection is planned from Redis (prepare) and the result equals the recompute. Misses that keep
    being known objects turn the guess off (straight to prepare)."""

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, int], dict[str, int], float]:
        client = aioredis.Redis.from_url(clean_redis)
        executor = InferenceExecutor(loaded_model.engine)
        executor.start()
        try:

            def worker() -> Classifier:
                return Classifier(RedisStateStore(client, 30, loaded_model.version), loaded_model, executor)

            first, restarted = worker(), worker()  # restarted: an empty cache, as after a restart
            for k in range(40):
                for i in range(3):
                    await first.classify(detection(f"OBJ_g{k}", i, 58600.0 + i))
            results = [await restarted.classify(detection(f"OBJ_g{k}", 3, 58603.0)) for k in range(40)]
            return results, dict(first.stats), dict(restarted.stats), restarted._new_on_miss
        finally:
            executor.stop()
            await client.aclose()

    results, first, restarted, new_on_miss = asyncio.run(scenario())
    assert first["prepares"] == 0 and first["conflicts"] == 0  # new objects: one round trip each
    assert all(r["status"] == "classified" and r["n_detections"] == 4 for r in results)
    assert all(r["mode"] == "incremental" for r in results)  # planned from the stored state: one step
    # the first misses were guessed new and refused; then the guess turned off: prepare only
    assert 0 < restarted["conflicts"] < 40 and restarted["prepares"] == 40
    assert new_on_miss < 0.5
    sync = redis.Redis.from_url(clean_redis)
    state = sync.hget(object_keys("OBJ_g7").state, "rnn")
    sync.close()
    expected = _expected_state(loaded_model, [58600.0 + i for i in range(4)], list(range(4)))
    np.testing.assert_allclose(np.frombuffer(state, np.float32), expected, atol=1e-5)


def _step_request(keys: Any, did: str, mjd: float, ids: list[str], revision: int) -> CommitRequest:
    payload = encode_detection(mjd, 18.0, 0.1, "L", None, None, None, 0.0)
    return CommitRequest(keys, did, mjd, payload, "step", "\n".join(ids), len(ids), False, b'{"x":1',
                         b"\x00" * 8, b"{}", expected_revision=revision)


def test_step_commits_check_the_revision_and_the_place_of_the_detection(
    clean_redis: str, loaded_model: Any
) -> None:
    """One script call for several objects: each object's step commit succeeds or conflicts on its own."""

    async def scenario() -> list[Any]:
        client = aioredis.Redis.from_url(clean_redis)
        executor = InferenceExecutor(loaded_model.engine)
        executor.start()
        classifier = Classifier(RedisStateStore(client, 30, loaded_model.version), loaded_model, executor)
        for oid in ("OBJ_s1", "OBJ_s2", "OBJ_s3"):
            for i in range(2):
                await classifier.classify(detection(oid, i, 58600.0 + i))  # revision 2, ids d000 d001
        executor.stop()
        store = RedisStateStore(client, 30, loaded_model.version)
        replies = await store.commit_many([
            _step_request(object_keys("OBJ_s1"), "d002", 58602.0, ["d000", "d001", "d002"], 2),  # ok
            _step_request(object_keys("OBJ_s2"), "d002", 58602.0, ["d000", "d001", "d002"], 1),  # stale
            _step_request(object_keys("OBJ_s3"), "d00x", 58600.5, ["d000", "d001", "d00x"], 2),  # not last
        ])
        await store.aclose()
        await client.aclose()
        return replies

    replies = asyncio.run(scenario())
    assert [r.kind for r in replies] == ["ok", "conflict", "conflict"]
    assert replies[0].revision == 3 and replies[0].n_detections == 3
    assert [d.detection_id for d in replies[1].light_curve] == ["d000", "d001"]  # the insert was undone
    sync = redis.Redis.from_url(clean_redis)
    assert sync.zcard(object_keys("OBJ_s2").order) == 2 and sync.zcard(object_keys("OBJ_s3").order) == 2
    assert sync.hget(object_keys("OBJ_s1").state, "ids") == b"d000\nd001\nd002"
    sync.close()


@pytest.mark.parametrize("objects_per_call", [1, 128])
def test_one_object_per_script_call_gives_the_same_state(
    clean_redis: str, loaded_model: Any, objects_per_call: int
) -> None:
    """``objects_per_call=1`` (each call within one cluster slot) and many objects per call agree."""
    rng = random.Random(11)
    objects = {f"OBJ_c{k}": sorted(58600 + rng.uniform(0, 50) for _ in range(5)) for k in range(6)}

    async def scenario() -> list[dict[str, Any]]:
        client = aioredis.Redis.from_url(clean_redis)
        await client.config_resetstat()
        executor = InferenceExecutor(loaded_model.engine)
        executor.start()
        store = RedisStateStore(client, 30, loaded_model.version, objects_per_call=objects_per_call)
        classifier = Classifier(store, loaded_model, executor)
        out = []
        for i in range(5):  # one batch per round: every object's i-th detection
            out += await classifier.classify_many([detection(o, i, m[i]) for o, m in objects.items()])
        executor.stop()
        await store.aclose()
        await client.aclose()
        return out

    results = asyncio.run(scenario())
    assert [r["status"] for r in results] == ["classified"] * 30
    sync = redis.Redis.from_url(clean_redis)
    # 5 waves of 6 objects: one commit call per object, or one per wave (new objects need no prepare)
    # (the fixture flushed the scripts: each call of the first wave is refused once with NOSCRIPT,
    # then sent again after the script is loaded)
    noscript = sync.info("errorstats").get("errorstat_NOSCRIPT", {}).get("count", 0)
    calls = sync.info("commandstats")["cmdstat_evalsha"]["calls"] - noscript
    assert calls == (30 if objects_per_call == 1 else 5)
    for oid, mjds in objects.items():
        state = np.frombuffer(sync.hget(object_keys(oid).state, "rnn"), np.float32)
        np.testing.assert_allclose(state, _expected_state(loaded_model, mjds, list(range(5))), atol=1e-5)
    sync.close()
