"""End-to-end classification through a real uvicorn server and a real Redis."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import redis

from lightcurve.context import galactic_lb
from service.keys import object_keys
from tests.integration.conftest import ThreadServer, offline_probabilities

pytestmark = pytest.mark.slow

CLASSES = ("VS", "SN", "AGN")


def light_curve(
    object_id: str, n: int, seed: int = 1, ra: float = 150.0, dec: float = 30.0
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    mjd = sorted(58600.0 + rng.uniform(0, 300) for _ in range(n))
    dets = [
        {
            "object_id": object_id,
            "detection_id": f"{object_id}-{i:03d}",
            "mjd": t,
            "mag": 17.0 + rng.uniform(0, 3),
            "mag_err": rng.uniform(0.02, 0.3),
        }
        for i, t in enumerate(mjd)
    ]
    dets[0].update(ra=ra, dec=dec)
    return dets


def probs(body: dict[str, Any]) -> np.ndarray:
    return np.array([body["probabilities"][c] for c in CLASSES])


def post_all(client: httpx.Client, dets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in dets:
        r = client.post("/classify", json=d)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def state_snapshot(redis_url: str, object_id: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(redis_url)
    keys = object_keys(object_id)
    snap = client.hgetall(keys.state)
    snap[b"#history"] = str(client.llen(keys.history)).encode()
    snap[b"#dets"] = str(client.zcard(keys.order)).encode()
    client.close()
    return snap


def test_one_at_a_time_equals_offline_recompute(
    server: ThreadServer, keras_model: Any, tiny_model_dir: Path, loaded_model: Any, clean_redis: str
) -> None:
    dets = light_curve("GOTO_IRAS18547+1254", 12)
    with httpx.Client(base_url=server.url) as client:
        results = post_all(client, dets)
    assert [r["mode"] for r in results] == ["incremental"] * 12  # in time order: one step each
    assert [r["n_detections"] for r in results] == list(range(1, 13))
    for k in (1, 5, 12):  # every intermediate classification equals the offline pass over its prefix
        expected = offline_probabilities(keras_model, tiny_model_dir, dets[:k])
        np.testing.assert_allclose(probs(results[k - 1]), expected, atol=1e-5)
    assert all(r["model_version"] == loaded_model.version for r in results)
    # The stored RNN state equals a full recompute of the state.
    from lightcurve.preprocessing import sequence_input

    x = sequence_input(
        [d["mjd"] for d in dets],
        [d["mag"] for d in dets],
        [d["mag_err"] for d in dets],
        loaded_model.metadata.sequence,
    )
    expected_state = loaded_model.engine.run(x.values[None], np.array([x.n_valid]))[0]
    stored = np.frombuffer(state_snapshot(clean_redis, dets[0]["object_id"])[b"rnn"], dtype=np.float32)
    np.testing.assert_allclose(stored, expected_state, atol=1e-5)


def test_real_goto_light_curve(
    server: ThreadServer, keras_model: Any, tiny_model_dir: Path, real_goto_dir: Path
) -> None:
    detections = pd.read_csv(real_goto_dir / "detections.csv")
    objects = pd.read_csv(real_goto_dir / "objects.csv").set_index("object_id")
    object_id = "GOTO_SN2019euw"
    rows = detections[detections.object_id == object_id].sort_values("mjd")
    dets = [
        {
            "object_id": object_id,
            "mjd": float(r.mjd),
            "mag": float(r.mag),
            "mag_err": float(r.mag_err),
            "filter": str(r.filter),
        }
        for r in rows.itertuples()
    ]
    dets[0].update(ra=float(objects.loc[object_id, "ra"]), dec=float(objects.loc[object_id, "dec"]))
    with httpx.Client(base_url=server.url) as client:
        results = post_all(client, dets)
        final = client.get(f"/objects/{object_id}/probabilities").json()
    expected = offline_probabilities(keras_model, tiny_model_dir, dets)
    np.testing.assert_allclose(probs(results[-1]), expected, atol=1e-5)
    np.testing.assert_allclose(probs(final["latest"]), expected, atol=1e-5)
    assert final["latest"]["n_detections"] == len(dets)


def test_beyond_first_30_stored_but_classification_unchanged(
    server: ThreadServer, keras_model: Any, tiny_model_dir: Path
) -> None:
    dets = light_curve("ZTF21abcdefg", 34, seed=3)
    with httpx.Client(base_url=server.url) as client:
        results = post_all(client, dets)
        view = client.get("/objects/ZTF21abcdefg").json()
    assert [r["status"] for r in results[30:]] == ["stored"] * 4
    assert all(np.array_equal(probs(r), probs(results[29])) for r in results[30:])
    assert results[-1]["n_detections"] == 34 and results[-1]["n_used"] == 30
    np.testing.assert_allclose(
        probs(results[-1]), offline_probabilities(keras_model, tiny_model_dir, dets), atol=1e-5
    )
    assert len(view["light_curve"]) == 34
    assert [d["in_model"] for d in view["light_curve"]] == [True] * 30 + [False] * 4
    # An out-of-order detection that lands among the first 30 forces a recompute.
    early = {
        "object_id": "ZTF21abcdefg",
        "detection_id": "late-but-early",
        "mjd": dets[5]["mjd"] + 1e-3,
        "mag": 19.0,
        "mag_err": 0.1,
    }
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/classify", json=early).json()
    assert r["status"] == "classified" and r["mode"] == "recompute" and r["n_detections"] == 35
    np.testing.assert_allclose(
        probs(r), offline_probabilities(keras_model, tiny_model_dir, [*dets, early]), atol=1e-5
    )


def test_replaying_any_detection_changes_nothing(server: ThreadServer, clean_redis: str) -> None:
    dets = light_curve("GOTO_replay", 33, seed=4)
    for d in dets[::3]:
        del d["detection_id"]  # derived from object_id, mjd and filter
    with httpx.Client(base_url=server.url) as client:
        post_all(client, dets)
        before = state_snapshot(clean_redis, "GOTO_replay")
        last = client.get("/objects/GOTO_replay/probabilities").json()["latest"]
        for d in random.Random(0).sample(dets, len(dets)):
            r = client.post("/classify", json=d).json()
            assert r["status"] == "duplicate"
            assert r["probabilities"] == last["probabilities"] and r["revision"] == last["revision"]
    assert state_snapshot(clean_redis, "GOTO_replay") == before


def test_shuffled_arrival_gives_the_same_final_state(
    server: ThreadServer, clean_redis: str, keras_model: Any, tiny_model_dir: Path
) -> None:
    ordered = light_curve("GOTO_A", 36, seed=5)
    shuffled = [dict(d, object_id="GOTO_B") for d in ordered]  # detection ids are per object
    random.Random(2).shuffle(shuffled)
    shuffled[0].update(ra=150.0, dec=30.0)  # the detection that creates an object must carry a position
    with httpx.Client(base_url=server.url) as client:
        a = post_all(client, ordered)
        b = post_all(client, shuffled)
    assert "recompute" in {r["mode"] for r in b} and "stored" in {r["status"] for r in b}
    np.testing.assert_allclose(probs(a[-1]), probs(b[-1]), atol=1e-5)
    np.testing.assert_allclose(
        probs(b[-1]), offline_probabilities(keras_model, tiny_model_dir, ordered), atol=1e-5
    )
    sa, sb = state_snapshot(clean_redis, "GOTO_A"), state_snapshot(clean_redis, "GOTO_B")
    assert sa[b"ids"] == sb[b"ids"] and sa[b"#dets"] == sb[b"#dets"] == b"36"
    np.testing.assert_allclose(
        np.frombuffer(sa[b"rnn"], np.float32), np.frombuffer(sb[b"rnn"], np.float32), atol=1e-5
    )


def test_batch_equals_single_posts(server: ThreadServer, keras_model: Any, tiny_model_dir: Path) -> None:
    curves = {f"BATCH_{i}": light_curve(f"BATCH_{i}", 5 + 4 * i, seed=10 + i) for i in range(5)}
    detections = [d for curve in curves.values() for d in curve]
    random.Random(3).shuffle(detections)
    for curve in curves.values():  # creating detections (first posted per object) carry the position
        first = next(d for d in detections if d["object_id"] == curve[0]["object_id"])
        first.update(ra=curve[0]["ra"], dec=curve[0]["dec"])
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/classify/batch", json={"detections": detections[:40]})
        r2 = client.post("/classify/batch", json={"detections": detections[40:]})
        assert r.status_code == 200 and r2.status_code == 200, r.text
        results = r.json()["results"] + r2.json()["results"]
        assert [x["detection_id"] for x in results] == [d["detection_id"] for d in detections]
        for object_id, curve in curves.items():
            latest = client.get(f"/objects/{object_id}/probabilities").json()["latest"]
            posted = [d for d in detections if d["object_id"] == object_id]
            np.testing.assert_allclose(
                probs(latest), offline_probabilities(keras_model, tiny_model_dir, posted), atol=1e-5
            )
            assert latest["n_detections"] == len(curve)


def test_read_endpoints(server: ThreadServer, loaded_model: Any) -> None:
    dets = light_curve("GOTO_read", 4, seed=6)
    dets[0]["host_sep_arcsec"] = 12.5
    with httpx.Client(base_url=server.url) as client:
        post_all(client, dets)
        hist = client.get("/objects/GOTO_read/probabilities").json()
        view = client.get("/objects/GOTO_read").json()
        post_all(client, light_curve("GOTO_nohost", 2, seed=7))
        no_host = client.get("/objects/GOTO_nohost").json()["context"]
        assert client.get("/objects/unknown_object").status_code == 404
        assert client.get("/objects/unknown_object/probabilities").status_code == 404
        assert client.get("/objects/bad{id}").status_code == 422
        card = client.get("/model").json()
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        openapi = client.get("/openapi.json").json()
        metrics = client.get("/metrics").text
    rows = hist["history"]
    assert [r["n_detections"] for r in rows] == [1, 2, 3, 4]
    assert [r["detection_id"] for r in rows] == [d["detection_id"] for d in dets]
    assert all(set(r) >= {"mjd", "probabilities", "model_version", "time", "predicted_class"} for r in rows)
    assert (
        view["context"]["host_sep_arcsec"] == 12.5
        and view["context"]["source_detection_id"] == "GOTO_read-000"
        and view["context"]["host_source"] == "request"
    )
    # no host distance given and no catalogue configured: the view says the host is unknown
    assert no_host["host_sep_arcsec"] is None and no_host["host_source"] == "unknown"
    gal_l, gal_b = galactic_lb(dets[0]["ra"], dets[0]["dec"])
    assert view["context"]["gal_l_deg"] == pytest.approx(float(gal_l))
    assert view["context"]["gal_b_deg"] == pytest.approx(float(gal_b))
    assert [d["detection_id"] for d in view["light_curve"]] == [d["detection_id"] for d in dets]
    assert (
        card["model_version"] == loaded_model.version and card["engine"]["max_abs_diff_probabilities"] <= 1e-5
    )
    assert "/classify/batch" in openapi["paths"]
    # metrics by route template (not raw path), and the served model
    assert 'goto_http_requests_total{method="POST",route="/classify",status="200"}' in metrics
    assert 'goto_http_requests_total{method="GET",route="/objects/{object_id}",status="404"}' in metrics
    assert "GOTO_read" not in metrics and "unknown_object" not in metrics
    assert f'goto_model_info{{model_version="{loaded_model.version}"}} 1.0' in metrics
    assert openapi["components"]["schemas"]["DetectionRequest"]["examples"]
