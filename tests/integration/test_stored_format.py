"""Stored data written by an earlier version is still read: ``tests/fixtures/store_v1.json`` holds the
raw Redis keys of two classified objects as commit 5bd8ffd wrote them (``make_store_v1.py`` beside it),
and that version's answers for them. Loaded into Redis, the current code must answer the same and
continue the objects from their stored RNN states."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from tests.integration.conftest import offline_probabilities

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store_v1.json"
CLASSES = ("VS", "SN", "AGN")


def _raw(value: Any) -> bytes:
    return base64.b64decode(value["base64"]) if isinstance(value, dict) else value.encode()


def load_fixture_keys(url: str, keys: dict[str, Any]) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key, entry in keys.items():
            kind, value = entry["type"], entry["value"]
            if kind == "hash":
                client.hset(key, mapping={f: _raw(v) for f, v in value.items()})
            elif kind == "zset":
                client.zadd(key, {m: s for m, s in value})
            else:
                client.rpush(key, *(_raw(v) for v in value))
    finally:
        client.close()


def test_objects_written_by_the_old_codec_read_the_same_and_step_on(
    server, clean_redis, keras_model, tiny_model_dir
):
    fixture = json.loads(FIXTURE.read_text())
    load_fixture_keys(clean_redis, fixture["keys"])  # the server's Redis, flushed before it started
    for held in fixture["held_back"]:
        oid = held["object_id"]
        old = fixture["responses"][oid]
        assert httpx.get(f"{server.url}/objects/{oid}").json() == old["object"]
        assert httpx.get(f"{server.url}/objects/{oid}/probabilities").json() == old["probabilities"]
        # one more detection: one RNN step from the stored state, equal to a full offline pass
        r = httpx.post(f"{server.url}/classify", json=held)
        assert r.status_code == 200, r.text
        result = r.json()
        n_old = old["object"]["n_detections"]
        assert (result["status"], result["mode"], result["n_detections"]) == ("classified", "incremental",
                                                                              n_old + 1)
        assert result["revision"] == old["object"]["latest"]["revision"] + 1
        curve = [
            {"object_id": oid, "detection_id": d["detection_id"], "mjd": d["mjd"], "mag": d["mag"],
             "mag_err": d["mag_err"], "ra": d["ra"], "dec": d["dec"]}
            for d in old["object"]["light_curve"]
        ] + [held]
        want = offline_probabilities(keras_model, tiny_model_dir, curve)
        got = np.array([result["probabilities"][c] for c in CLASSES])
        np.testing.assert_allclose(got, want, atol=1e-5)
        history = httpx.get(f"{server.url}/objects/{oid}/probabilities").json()["history"]
        assert history[:-1] == old["probabilities"]["history"] and len(history) == n_old + 1

