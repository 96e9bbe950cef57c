"""Redis stopped -> 503 with Retry-After and nothing half-written; restarted -> serving again, no restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RedisProcess, ThreadServer, make_settings

pytestmark = pytest.mark.slow


def test_redis_outage_and_recovery(tiny_model_dir: Path, loaded_model: Any, tmp_path: Path) -> None:
    from service.app import create_app

    redis_server = RedisProcess(tmp_path, persistent=True)
    redis_server.start()
    settings = make_settings(tiny_model_dir, redis_server.url, redis_timeout_s=1.0, retry_after_s=3)
    dets = [
        {
            "object_id": "GOTO_outage",
            "detection_id": f"d{i}",
            "mjd": 58600.0 + i,
            "mag": 18.0 + 0.1 * i,
            "mag_err": 0.05,
            "ra": 45.0,
            "dec": -10.0,
        }
        for i in range(5)
    ]
    try:
        with (
            ThreadServer(create_app(settings, model=loaded_model)) as srv,
            httpx.Client(base_url=srv.url, timeout=10) as client,
        ):
            for d in dets[:3]:
                assert client.post("/classify", json=d).status_code == 200
            before = client.get("/objects/GOTO_outage/probabilities").json()

            redis_server.stop()
            r = client.post("/classify", json=dets[3])
            assert r.status_code == 503 and r.headers["retry-after"] == "3"
            batch = client.post("/classify/batch", json={"detections": dets[3:]})
            assert batch.status_code == 503
            assert client.get("/objects/GOTO_outage").status_code == 503
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["redis"] is False
            assert client.get("/healthz").status_code == 200

            redis_server.start()  # same port, same data directory
            after = client.get("/objects/GOTO_outage/probabilities").json()
            assert after == before  # nothing from the failed requests was written
            assert client.get("/readyz").status_code == 200
            r = client.post("/classify", json=dets[3])
            assert r.status_code == 200 and r.json()["n_detections"] == 4
            r = client.post("/classify", json=dets[4])
            assert r.json()["n_detections"] == 5 and r.json()["mode"] == "incremental"
            assert len(client.get("/objects/GOTO_outage/probabilities").json()["history"]) == 5
    finally:
        redis_server.stop()
