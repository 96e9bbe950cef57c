"""``goto-classifier serve --workers 2`` with the embedded Redis: concurrent detections lose nothing, and
the one webhook dispatcher process that ``serve`` runs beside the workers delivers every event once."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from service.webhooks import verify_signature
from tests.integration.conftest import ServeProcess, offline_probabilities
from tests.integration.webhook_fixtures import SECRET, Receiver

pytestmark = pytest.mark.slow

N_OBJECTS, PER_OBJECT = 20, 25


async def post_concurrently(
    url: str, detections: list[dict[str, Any]], concurrency: int
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(d: dict[str, Any]) -> httpx.Response:
            async with sem:
                return await client.post("/classify", json=d)

        return await asyncio.gather(*(one(d) for d in detections))


def test_two_workers_embedded_redis_concurrent_objects(
    tiny_model_dir: Path, keras_model: Any, tmp_path: Path
) -> None:
    rng = random.Random(11)
    curves: dict[str, list[dict[str, Any]]] = {}
    for i in range(N_OBJECTS):
        oid = f"GOTO_conc_{i:02d}"
        ra, dec = rng.uniform(0, 360), rng.uniform(-60, 60)
        mjds = sorted(58600 + rng.uniform(0, 200) for _ in range(PER_OBJECT))
        curves[oid] = [
            {
                "object_id": oid,
                "detection_id": f"d{k:02d}",
                "mjd": t,
                "mag": rng.uniform(16, 20),
                "mag_err": rng.uniform(0.02, 0.2),
                "ra": ra,
                "dec": dec,
            }
            for k, t in enumerate(mjds)
        ]
    stream = [d for c in curves.values() for d in c]
    rng.shuffle(stream)
    replays = rng.sample(stream, 40)  # replayed detections, racing with the originals
    stream = stream + replays
    rng.shuffle(stream)

    receiver = Receiver().start()
    hooks = tmp_path / "hooks.json"
    hooks.write_text(json.dumps({"subscriptions": [
        {"id": "every", "url": receiver.url, "secret": SECRET, "events": ["classification.updated"]}]}))
    settings = dict(
        GOTO_MODEL_DIR=str(tiny_model_dir),
        GOTO_DATA_DIR=str(tmp_path / "data"),
        GOTO_LOG_LEVEL="warning",
        GOTO_WEBHOOKS=str(hooks),
    )
    try:
        with ServeProcess(settings) as serve:
            url = serve.url
            responses = asyncio.run(post_concurrently(url, stream, concurrency=48))
            assert [r.status_code for r in responses] == [200] * len(stream)
            statuses = [r.json()["status"] for r in responses]
            assert statuses.count("duplicate") == len(replays)
            with httpx.Client(base_url=url) as client:
                # workers use the engine verified at start-up by serve, without importing TensorFlow
                assert client.get("/model").json()["engine"]["source"] == "verified-file"
                # serve's own metrics directory: counts of both workers, whichever answers the scrape
                classified = f'goto_detections_total{{outcome="classified"}} {N_OBJECTS * PER_OBJECT}.0'
                duplicates = f'goto_detections_total{{outcome="duplicate"}} {len(replays)}.0'
                # each object is classified by one worker: the other forwards its detections there
                forwarded = re.compile(r'goto_forwarded_detections_total\{outcome="owner"\} (\S+)')
                for _ in range(3):
                    metrics = client.get("/metrics").text
                    assert classified in metrics and duplicates in metrics
                    owner = forwarded.search(metrics)
                    assert owner is not None and float(owner.group(1)) > 0
                for oid, curve in curves.items():
                    view = client.get(f"/objects/{oid}").json()
                    assert view["n_detections"] == PER_OBJECT
                    assert sorted(d["detection_id"] for d in view["light_curve"]) == [
                        d["detection_id"] for d in curve
                    ]
                    history = client.get(f"/objects/{oid}/probabilities").json()["history"]
                    assert len(history) == PER_OBJECT  # one row per new detection, none for replays
                    got = np.array([view["latest"]["probabilities"][c] for c in ("VS", "SN", "AGN")])
                    np.testing.assert_allclose(
                        got, offline_probabilities(keras_model, tiny_model_dir, curve), atol=1e-5
                    )
            # one update event per classified detection, delivered by serve's one dispatcher process
            children = psutil.Process(serve.proc.pid).children()  # type: ignore[union-attr]
            dispatchers = [c for c in children if "dispatch" in c.cmdline()]
            assert len(dispatchers) == 1
            deadline = time.monotonic() + 30
            while len(receiver.answered(200)) < N_OBJECTS * PER_OBJECT and time.monotonic() < deadline:
                time.sleep(0.05)
            delivered = receiver.answered(200)
            assert len({r.event_id for r in delivered}) == len(delivered) == N_OBJECTS * PER_OBJECT
            verify_signature(SECRET, delivered[-1].headers, delivered[-1].body)
    finally:
        receiver.stop()
    assert serve.returncode == 0, serve.stderr[-2000:]
    assert (tmp_path / "data" / "redis.db").is_file()  # the embedded server persisted under the data dir
