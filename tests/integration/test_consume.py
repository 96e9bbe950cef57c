"""``goto-classifier consume``, the stream front-end, against a real Redis and real consumer processes.

The consumers load the tiny test model's step engine from a verified engine file (as ``serve``'s
workers do), so they start without importing TensorFlow.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import redis

from service.keys import CONSUMER_GROUP, DEAD_LETTER_STREAM, INGEST_STREAM, RESULTS_STREAM
from service.replay import build_requests
from tests.integration.conftest import make_settings, offline_probabilities

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLASSES = ("VS", "SN", "AGN")


@pytest.fixture(scope="session")
def engine_file(loaded_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from service.inference import save_verified_engine

    return save_verified_engine(loaded_model, tmp_path_factory.mktemp("engine") / "engine.npz")


class ConsumeProcess:
    """``goto-classifier consume`` as a subprocess; its log goes to a file (a full pipe would block it)."""

    def __init__(self, settings: dict[str, str], log_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOTO_")} | settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ConsumeProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "lightcurve.cli", "consume"], env=self.env,
                                         cwd=REPO, stdout=log, stderr=log)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def consumer_env(model_dir: Path, redis_url: str, engine: Path, tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "GOTO_REDIS_URL": redis_url,
        "GOTO_MODEL_DIR": str(model_dir),
        "GOTO_ENGINE_FILE": str(engine),
        "GOTO_DATA_DIR": str(tmp),
        "GOTO_LOG_LEVEL": "info",
        **extra,
    }


def results(client: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    """``(ingest entry id, result)`` of every entry of the results stream, in stream order."""
    return [(f[b"ingest_id"].decode(), orjson.loads(f[b"result"])) for _, f in client.xrange(RESULTS_STREAM)]


def wait_for(condition: Any, what: str, procs: list[ConsumeProcess], timeout: float = 420) -> None:
    # generous: on the shared 2-core box under load ~8 the takeover test alone took 200 s
    deadline = time.monotonic() + timeout
    while not condition():
        for p in procs:
            assert p.proc is not None
            if p.proc.poll() is not None and p.proc.returncode != -signal.SIGKILL:
                raise AssertionError(f"consumer exited with {p.proc.returncode}:\n{p.log()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(p.log()[-2000:] for p in procs)
            raise AssertionError(f"timed out waiting for {what}:\n{logs}")
        time.sleep(0.05)


def test_real_goto_curves_through_the_stream_equal_http(
    server, clean_redis, real_goto_dir, tiny_model_dir, engine_file, tmp_path
):
    requests = build_requests(pd.read_csv(real_goto_dir / "detections.csv"),
                              pd.read_csv(real_goto_dir / "objects.csv"))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        over_http = [http.post("/classify", json=r).json() for r in requests]
    assert {r["status"] for r in over_http} == {"classified"}
    client = redis.Redis.from_url(clean_redis)
    client.flushdb()  # the same detections again, now through the stream, from an empty store
    ids = [client.xadd(INGEST_STREAM, {"detection": orjson.dumps(r)}).decode() for r in requests]
    with ConsumeProcess(consumer_env(tiny_model_dir, clean_redis, engine_file, tmp_path),
                        tmp_path / "consume.log") as consumer:
        wait_for(lambda: client.xlen(RESULTS_STREAM) >= len(requests), "15 results", [consumer])
    by_entry = dict(results(client))
    assert list(by_entry) == ids  # one result per entry, in stream order
    for entry_id, want in zip(ids, over_http, strict=True):
        got = by_entry[entry_id]
        assert set(got) == set(want)  # the same JSON as the HTTP response
        for key in ("object_id", "detection_id", "status", "mode", "n_detections", "n_used",
                    "predicted_class", "model_version", "revision"):
            assert got[key] == want[key], key
        np.testing.assert_allclose([got["probabilities"][c] for c in CLASSES],
                                   [want["probabilities"][c] for c in CLASSES], atol=1e-6)
    assert client.xpending(INGEST_STREAM, CONSUMER_GROUP)["pending"] == 0
    assert client.xlen(DEAD_LETTER_STREAM) == 0


def held(client: redis.Redis) -> dict[str, int]:
    """Entries each consumer of the group has read and not acknowledged (none before the group exists)."""
    try:
        consumers = client.xinfo_consumers(INGEST_STREAM, CONSUMER_GROUP)
    except redis.ResponseError:  # NOGROUP: no consumer has started yet
        return {}
    return {c["name"].decode(): c["pending"] for c in consumers}


def _curves(n_objects: int, n_each: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    curves = {}
    for k in range(n_objects):
        oid = f"K{k:03d}"
        t, ra, dec = 58600.0 + rng.uniform(0, 5), rng.uniform(0, 359), rng.uniform(-60, 60)
        curve = []
        for i in range(n_each):
            t += rng.uniform(0.5, 6)
            curve.append({"object_id": oid, "detection_id": f"{oid}-{i}", "mjd": round(t, 6),
                          "mag": round(rng.uniform(15, 20), 4), "mag_err": round(rng.uniform(0.02, 0.2), 4),
                          "ra": ra, "dec": dec})
        curves[oid] = curve
    return curves


def test_a_consumer_killed_mid_stream_loses_nothing(
    clean_redis, tiny_model_dir, engine_file, keras_model, tmp_path
):
    curves = _curves(40, 8, seed=3)
    stream = [d for i in range(8) for c in curves.values() for d in c[i : i + 1]]  # time order per object
    replayed = stream[::37]  # a producer retrying: the same detections sent twice
    client = redis.Redis.from_url(clean_redis)
    entry_ids = [client.xadd(INGEST_STREAM, {"detection": orjson.dumps(d)}).decode()
                 for d in stream + replayed]
    base = consumer_env(tiny_model_dir, clean_redis, engine_file, tmp_path, GOTO_CLAIM_MIN_IDLE_MS="1500")
    # a reads large batches, so that it is surely in the middle of one when it is killed
    a = ConsumeProcess(base | {"GOTO_CONSUMER_NAME": "a", "GOTO_CONSUME_BATCH": "150"}, tmp_path / "a.log")
    b = ConsumeProcess(base | {"GOTO_CONSUMER_NAME": "b", "GOTO_CONSUME_BATCH": "10"}, tmp_path / "b.log")
    with a:

        held_by_a = 0
        while not held_by_a:  # kill a while it holds entries: stopped first, so it cannot ack meanwhile
            wait_for(lambda: held(client).get("a", 0) > 0, "consumer a to read", [a])
            assert a.proc is not None
            a.proc.send_signal(signal.SIGSTOP)
            held_by_a = held(client)["a"]
            if not held_by_a:
                a.proc.send_signal(signal.SIGCONT)  # it acknowledged in between: try again
        a.kill()
    assert held_by_a > 0  # a died holding entries nobody had acknowledged
    with b:
        wait_for(lambda: client.xpending(INGEST_STREAM, CONSUMER_GROUP)["pending"] == 0
                 and {e for e, _ in results(client)} >= set(entry_ids), "every entry answered", [b])
        assert "took over" in b.log()
    answered = results(client)
    assert {e for e, _ in answered} == set(entry_ids)  # every entry has a result
    by_detection: dict[str, list[str]] = defaultdict(list)
    for _, r in answered:
        by_detection[r["detection_id"]].append(r["status"])
    assert set(by_detection) == {d["detection_id"] for d in stream}
    for statuses in by_detection.values():  # at most one classification; every repeat a duplicate
        assert Counter(s != "duplicate" for s in statuses)[True] <= 1, statuses
    for d in replayed:
        assert len(by_detection[d["detection_id"]]) >= 2 and "duplicate" in by_detection[d["detection_id"]]
    assert client.xlen(DEAD_LETTER_STREAM) == 0
    # nothing lost: every object holds all its detections, classified as a full pass over them
    latest: dict[str, dict[str, Any]] = {}
    for _, r in answered:
        if r["revision"] >= latest.get(r["object_id"], {"revision": -1})["revision"]:
            latest[r["object_id"]] = r
    for oid, curve in curves.items():
        assert client.zcard(f"goto:{{o:{oid}}}:order") == len(curve)
        assert latest[oid]["n_detections"] == len(curve)
        got = [latest[oid]["probabilities"][c] for c in CLASSES]
        np.testing.assert_allclose(got, offline_probabilities(keras_model, tiny_model_dir, curve), atol=1e-5)


def test_malformed_entries_go_to_the_dead_letter_stream_and_nothing_is_stored(
    clean_redis, tiny_model_dir, loaded_model
):
    from service.consume import StreamConsumer
    from service.runtime import Runtime, blocking_client

    good = {"object_id": "GOOD1", "detection_id": "g1", "mjd": 58600.5, "mag": 18.2, "mag_err": 0.05,
            "ra": 10.0, "dec": 20.0}
    bad = {
        "no_field": {"payload": b"{}"},
        "not_json": {"detection": b"{not json"},
        "mag_out_of_range": {"detection": orjson.dumps({**good, "object_id": "BAD1", "mag": 99.0})},
        "nan_mag_err": {"detection": b'{"object_id":"BAD2","mjd":58600.5,"mag":18.0,"mag_err":NaN,'
                                     b'"ra":1.0,"dec":2.0}'},
        "no_position": {"detection": orjson.dumps({"object_id": "BAD3", "mjd": 58600.5, "mag": 18.0,
                                                   "mag_err": 0.1})},
        "bad_id": {"detection": orjson.dumps({**good, "object_id": "has space"})},
    }
    client = redis.Redis.from_url(clean_redis)
    client.xadd(INGEST_STREAM, {"detection": orjson.dumps(good)})
    names = {client.xadd(INGEST_STREAM, fields).decode(): name for name, fields in bad.items()}
    client.xadd(INGEST_STREAM, {"detection": orjson.dumps({**good, "detection_id": "g2", "mjd": 58601.5})})

    async def consume() -> dict[str, int]:
        runtime = await Runtime.start(make_settings(tiny_model_dir, clean_redis), model=loaded_model)
        stream_client = blocking_client(runtime.redis_url, runtime.settings)
        consumer = StreamConsumer(runtime, stream_client, name="t")
        task = asyncio.create_task(consumer.run())
        try:
            deadline = time.monotonic() + 60
            while client.xlen(RESULTS_STREAM) < 2 or client.xlen(DEAD_LETTER_STREAM) < len(bad):
                assert time.monotonic() < deadline and not task.done(), "consumer did not finish"
                await asyncio.sleep(0.05)
        finally:
            consumer.stop()
            await task
            await stream_client.aclose()
            await runtime.aclose()
        return consumer.stats

    stats = asyncio.run(consume())
    assert stats["dead"] == len(bad) and stats["classified"] == 2
    dead = {names[f[b"ingest_id"].decode()]: (f, orjson.loads(f[b"error"]))
            for _, f in client.xrange(DEAD_LETTER_STREAM)}
    assert set(dead) == set(bad)

    def locs(name: str) -> list[list[Any]]:
        return [e["loc"] for e in dead[name][1]]

    assert locs("no_field") == [["detection"]]
    assert locs("mag_out_of_range") == [["mag"]]
    assert "less than or equal to" in dead["mag_out_of_range"][1][0]["msg"]
    assert locs("nan_mag_err") == [["mag_err"]]
    assert locs("no_position") == [["ra"], ["dec"]]
    assert locs("bad_id") == [["object_id"]]
    assert dead["not_json"][1][0]["type"] == "json_invalid"
    assert dead["mag_out_of_range"][0][b"detection"] == bad["mag_out_of_range"]["detection"]  # as sent
    assert [r["status"] for _, r in results(client)] == ["classified", "classified"]
    assert client.xpending(INGEST_STREAM, CONSUMER_GROUP)["pending"] == 0
    # only the good object was stored
    assert {k.decode().split("}")[0] for k in client.scan_iter("goto:{o:*")} == {"goto:{o:GOOD1"}
