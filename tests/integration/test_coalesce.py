"""Concurrent single detections are classified together, each request keeping its own outcome.

Real Redis; the object router of one worker (``service.affinity.ObjectRouter``) with its coalescer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from service.affinity import ObjectRouter
from service.classifier import Classifier, MissingPosition
from service.inference import InferenceExecutor
from service.keys import object_keys
from service.schemas import DetectionRequest
from service.store import RedisStateStore, StoreUnavailable

pytestmark = pytest.mark.slow


def _det(oid: str, i: int, pos: bool = True) -> DetectionRequest:
    where = {"ra": 150.0 + len(oid), "dec": 2.0} if pos else {}
    return DetectionRequest(
        object_id=oid, detection_id=f"d{i}", mjd=58600.0 + 1.5 * i, mag=18.0 + 0.1 * (i % 5),
        mag_err=0.05, **where,
    )


async def _with_router(redis_url: str, loaded_model: Any, body: Any) -> Any:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    executor = InferenceExecutor(loaded_model.engine)
    executor.start()
    try:
        store = RedisStateStore(client, loaded_model.metadata.sequence.n_steps, loaded_model.version)
        return await body(ObjectRouter(Classifier(store, loaded_model, executor)))
    finally:
        executor.stop()
        await client.aclose()


def test_concurrent_singles_share_calls_and_match_one_at_a_time(clean_redis: str, loaded_model: Any) -> None:
    # 8 objects x 4 detections, all posted at once (so one object can appear several times in a call)
    dets = [_det(f"GOTO_c{k}", i) for i in range(4) for k in range(8)]

    async def together(router: ObjectRouter) -> Any:
        results = await asyncio.gather(*(router.classify(d) for d in dets))
        return results, dict(router.singles.stats)

    async def one_by_one(router: ObjectRouter) -> Any:
        return [await router.classify(d.model_copy(update={"object_id": d.object_id + "_seq"})) for d in dets]

    results, stats = asyncio.run(_with_router(clean_redis, loaded_model, together))
    sequential = asyncio.run(_with_router(clean_redis, loaded_model, one_by_one))
    assert stats["detections"] == len(dets) and stats["calls"] < len(dets) / 4
    for det, result in zip(dets, results, strict=True):  # every request got its own detection's result
        assert (result["object_id"], result["detection_id"], result["status"]) == (
            det.object_id, det.detection_id, "classified"
        )
    sync = redis.Redis.from_url(clean_redis)
    for k in range(8):
        oid = f"GOTO_c{k}"
        assert sync.zcard(object_keys(oid).order) == 4
        together_last = [r for r in results if r["object_id"] == oid][-1]["probabilities"]
        alone_last = [r for r in sequential if r["object_id"] == oid + "_seq"][-1]["probabilities"]
        np.testing.assert_allclose(list(together_last.values()), list(alone_last.values()), atol=1e-6)
    sync.close()


def test_a_new_object_without_position_fails_alone(clean_redis: str, loaded_model: Any) -> None:
    dets = [_det(f"GOTO_p{k}", 0) for k in range(5)]
    dets.insert(2, _det("GOTO_nopos", 0, pos=False))

    async def together(router: ObjectRouter) -> Any:
        return await asyncio.gather(*(router.classify(d) for d in dets), return_exceptions=True)

    outcomes = asyncio.run(_with_router(clean_redis, loaded_model, together))
    assert isinstance(outcomes[2], MissingPosition) and outcomes[2].index == 0
    assert [o["status"] for i, o in enumerate(outcomes) if i != 2] == ["classified"] * 5
    sync = redis.Redis.from_url(clean_redis)
    assert not sync.exists(object_keys("GOTO_nopos").order)
    assert all(sync.zcard(object_keys(f"GOTO_p{k}").order) == 1 for k in range(5))
    sync.close()


def test_redis_down_fails_every_waiting_request(loaded_model: Any) -> None:
    from tests.integration.conftest import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    async def together(router: ObjectRouter) -> Any:
        return await asyncio.gather(*(router.classify(_det(f"GOTO_r{k}", 0)) for k in range(6)),
                                    return_exceptions=True)

    outcomes = asyncio.run(_with_router(dead, loaded_model, together))
    assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes


def test_concurrent_batches_share_calls_and_a_refused_batch_fails_alone(
    clean_redis: str, loaded_model: Any
) -> None:
    """The worker's merger puts concurrent batches into one classifier call; a batch that would create
    an object without position is refused whole, before anything is written, and only that batch."""
    batches = [[_det(f"GOTO_b{j}_{k}", 0) for k in range(4)] for j in range(3)]
    bad = [_det("GOTO_bad_ok", 0), _det("GOTO_bad_nopos", 0, pos=False)]

    async def together(router: ObjectRouter) -> Any:
        calls = [router.classify_many(b) for b in (batches[0], bad, batches[1], batches[2])]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        return outcomes, dict(router.local.stats)

    outcomes, stats = asyncio.run(_with_router(clean_redis, loaded_model, together))
    assert isinstance(outcomes[1], MissingPosition) and outcomes[1].index == 1  # named within its batch
    for batch, results in zip(batches, [outcomes[0], outcomes[2], outcomes[3]], strict=True):
        assert [r["object_id"] for r in results] == [d.object_id for d in batch]
        assert all(r["status"] == "classified" for r in results)
    assert stats["calls"] < 4  # merged: fewer classifier calls than requests
    sync = redis.Redis.from_url(clean_redis)
    assert not sync.exists(object_keys("GOTO_bad_ok").order)  # nothing of the refused batch stored
    assert all(sync.zcard(object_keys(d.object_id).order) == 1 for b in batches for d in b)
    sync.close()
