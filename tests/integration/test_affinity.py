"""Object affinity between workers (``service.affinity``): each object is classified by its owner,
and when the owner is gone the receiving worker classifies it itself, with the same results."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.affinity import claim_slot, owner_slot
from tests.integration.conftest import ThreadServer, make_settings, offline_probabilities

CLASSES = ("VS", "SN", "AGN")


def test_owner_slot_is_the_same_in_every_process_and_spreads_objects() -> None:
    import subprocess
    import sys

    ids = [f"GOTO_{i}" for i in range(20)]
    # Workers are separate processes: Python's str hash is salted per process, the owner must not be.
    code = f"from service.affinity import owner_slot; print([owner_slot(i, 7) for i in {ids!r}])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str([owner_slot(i, 7) for i in ids])
    assert len({owner_slot(i, 7) for i in ids}) > 1
    counts = np.bincount([owner_slot(f"GOTO_{i}", 3) for i in range(3000)], minlength=3)
    assert counts.min() > 800  # about a third each


def test_slots_are_exclusive_and_freed_with_their_holder(tmp_path: Path) -> None:
    first, second = claim_slot(tmp_path, 2), claim_slot(tmp_path, 2)
    assert first is not None and second is not None
    assert {first[0], second[0]} == {0, 1}
    assert claim_slot(tmp_path, 2) is None  # both held
    os.close(first[1])  # the holder died: its replacement gets the same slot
    again = claim_slot(tmp_path, 2)
    assert again is not None and again[0] == first[0]
    for fd in (second[1], again[1]):
        os.close(fd)


def _curves(n_objects: int, per_object: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    curves = {}
    for i in range(n_objects):
        oid = f"GOTO_aff_{seed}_{i:02d}"
        ra, dec = rng.uniform(0, 360), rng.uniform(-60, 60)
        mjds = sorted(58600 + rng.uniform(0, 100) for _ in range(per_object))
        curves[oid] = [
            {"object_id": oid, "detection_id": f"d{k}", "mjd": t, "mag": rng.uniform(16, 20),
             "mag_err": rng.uniform(0.02, 0.2), "ra": ra, "dec": dec}
            for k, t in enumerate(mjds)
        ]
    return curves


@pytest.fixture
def peer_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="goto-peers-") as d:  # short: Unix socket paths are limited
        yield Path(d)


def _worker(
    model_dir: Path, redis_url: str, loaded_model: Any, peer_dir: Path, **overrides: Any
) -> ThreadServer:
    from service.app import create_app

    settings = make_settings(model_dir, redis_url, peer_dir=peer_dir, peer_workers=2, **overrides)
    return ThreadServer(create_app(settings, model=loaded_model))


def _services(srv: ThreadServer) -> Any:
    return srv.server.config.app.state.services  # type: ignore[attr-defined]


def test_batch_is_classified_by_each_objects_owner_then_here_when_the_owner_is_gone(
    tiny_model_dir: Path, loaded_model: Any, keras_model: Any, clean_redis: str, peer_dir: Path
) -> None:
    curves = _curves(12, 6, seed=1)
    first = [d for k in range(3) for c in curves.values() for d in c[k : k + 1]]  # 3 rounds, time order
    rest = [d for k in range(3, 6) for c in curves.values() for d in c[k : k + 1]]
    with _worker(tiny_model_dir, clean_redis, loaded_model, peer_dir) as a:
        svc_a = _services(a)
        with _worker(tiny_model_dir, clean_redis, loaded_model, peer_dir) as b:
            svc_b = _services(b)
            assert {svc_a.router.slot, svc_b.router.slot} == {0, 1}
            r = httpx.post(f"{a.url}/classify/batch", json={"detections": first}, timeout=30)
            assert r.status_code == 200, r.text
            owned_by_b = [d for d in first if owner_slot(d["object_id"], 2) == svc_b.router.slot]
            assert 0 < len(owned_by_b) < len(first)
            assert svc_a.router.stats == {"owner": len(owned_by_b), "fallback": 0}
            # every detection was classified once, by its object's owner, as one incremental step
            assert svc_b.classifier.stats["incremental"] == len(owned_by_b)
            assert svc_a.classifier.stats["incremental"] == len(first) - len(owned_by_b)
            assert [x["detection_id"] for x in r.json()["results"]] == [d["detection_id"] for d in first]
        # b is gone: a classifies b's objects itself (from Redis), with the same results
        r = httpx.post(f"{a.url}/classify/batch", json={"detections": rest}, timeout=30)
        assert r.status_code == 200, r.text
        assert svc_a.router.stats["fallback"] == len([d for d in rest if d["object_id"] in
                                                      {x["object_id"] for x in owned_by_b}])
        results = r.json()["results"]
        assert {x["status"] for x in results} == {"classified"}
        latest = {x["object_id"]: x for x in results}
        for oid, curve in curves.items():
            got = np.array([latest[oid]["probabilities"][c] for c in CLASSES])
            want = offline_probabilities(keras_model, tiny_model_dir, curve)
            np.testing.assert_allclose(got, want, atol=1e-5)
            assert latest[oid]["n_detections"] == len(curve)


def test_a_split_batch_is_refused_whole_when_a_new_object_lacks_position(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str, peer_dir: Path
) -> None:
    import redis

    curves = _curves(8, 1, seed=2)
    batch = [c[0] for c in curves.values()]
    with _worker(tiny_model_dir, clean_redis, loaded_model, peer_dir) as a, _worker(
        tiny_model_dir, clean_redis, loaded_model, peer_dir
    ) as b:
        other = _services(b).router.slot
        bad = next(i for i, d in enumerate(batch) if owner_slot(d["object_id"], 2) == other)
        batch[bad] = {k: v for k, v in batch[bad].items() if k not in ("ra", "dec")}
        r = httpx.post(f"{a.url}/classify/batch", json={"detections": batch}, timeout=30)
    assert r.status_code == 422
    assert {tuple(e["loc"]) for e in r.json()["detail"]} == {
        ("body", "detections", bad, "ra"), ("body", "detections", bad, "dec")
    }
    assert redis.Redis.from_url(clean_redis).dbsize() == 0  # nothing stored, by either worker


def test_redis_down_is_503_for_a_forwarded_batch_and_serving_resumes_after_restart(
    tiny_model_dir: Path, loaded_model: Any, tmp_path: Path, peer_dir: Path
) -> None:
    import redis

    from tests.integration.conftest import RedisProcess

    server = RedisProcess(tmp_path, persistent=True)
    server.start()
    curves = _curves(6, 2, seed=3)
    first = [c[0] for c in curves.values()]
    second = [c[1] for c in curves.values()]
    try:
        settings = {"redis_timeout_s": 0.5}
        with _worker(tiny_model_dir, server.url, loaded_model, peer_dir, **settings) as a, _worker(
            tiny_model_dir, server.url, loaded_model, peer_dir, **settings
        ) as b:
            assert {owner_slot(d["object_id"], 2) for d in first} == {0, 1}  # spans both workers
            r = httpx.post(f"{a.url}/classify/batch", json={"detections": first}, timeout=30)
            assert r.status_code == 200, r.text
            server.stop()
            r = httpx.post(f"{a.url}/classify/batch", json={"detections": second}, timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"]
            server.start()
            r = httpx.post(f"{a.url}/classify/batch", json={"detections": second}, timeout=30)
            assert r.status_code == 200, r.text
            assert {x["n_detections"] for x in r.json()["results"]} == {2}
            assert _services(b).router.stats["owner"] + _services(a).router.stats["owner"] > 0
        stored = redis.Redis.from_url(server.url)
        objects_keys = list(stored.scan_iter(match="goto:{o:*"))  # the /ui index (goto:{ui}:*) aside
        assert len(objects_keys) == 4 * len(curves)  # state, order, detections, history per object
        stored.close()
    finally:
        server.stop()


def test_a_forwarded_detection_without_position_is_422_from_its_owner(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str, peer_dir: Path
) -> None:
    import redis

    with _worker(tiny_model_dir, clean_redis, loaded_model, peer_dir) as a, _worker(
        tiny_model_dir, clean_redis, loaded_model, peer_dir
    ) as b:
        other = _services(b).router.slot
        det = next(c[0] for c in _curves(8, 1, seed=4).values() if owner_slot(c[0]["object_id"], 2) == other)
        del det["ra"], det["dec"]
        r = httpx.post(f"{a.url}/classify", json=det, timeout=30)
        assert r.status_code == 422
        assert {tuple(e["loc"]) for e in r.json()["detail"]} == {("body", "ra"), ("body", "dec")}
        # the owner refused it: not classified a second time here as if the owner had failed
        assert _services(a).router.stats == {"owner": 1, "fallback": 0}
    assert redis.Redis.from_url(clean_redis).dbsize() == 0
