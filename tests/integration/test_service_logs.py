"""Structured logs: JSON lines with request ids (echoed as X-Request-ID) and object ids, and no secrets."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.logs import configure_logging
from tests.integration.conftest import ThreadServer, make_settings
from tests.integration.webhook_fixtures import Receiver, Reply

pytestmark = pytest.mark.slow

API_KEY = "log-test-api-key-0123456789abcdef"
WEBHOOK_SECRET = "log-test-webhook-secret-fedcba9876543210"
DETECTION = {"object_id": "GOTO_log+1", "detection_id": "d1", "mjd": 58600.5, "mag": 18.0, "mag_err": 0.1,
             "ra": 10.0, "dec": 20.0}


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything every logger writes while the test runs, as the service formats it (JSON, debug)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("debug", json_lines=True, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved


def test_json_request_logs_carry_ids_and_never_secrets(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    from service.app import create_app

    # a receiver that fails, so the dispatcher logs failed attempts (with the subscription in scope)
    receiver = Receiver().start()
    receiver.script = lambda rec, n: Reply(status=500)
    hooks = tmp_path / "hooks.json"
    hooks.write_text(json.dumps({"subscriptions": [{
        "id": "marshall", "url": receiver.url, "secret": WEBHOOK_SECRET,
        "events": ["classification.updated"], "backoff_base_s": 0.05, "backoff_max_s": 0.1}]}))
    settings = make_settings(tiny_model_dir, clean_redis, api_keys=API_KEY, webhooks=hooks, access_log=True,
                             log_level="debug", log_json=True)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    try:
        with ThreadServer(create_app(settings, model=loaded_model)) as srv, \
                httpx.Client(base_url=srv.url, headers=auth) as client:
            given = client.post("/classify", json=DETECTION, headers={"X-Request-ID": "marshall-req-42"})
            second = {**DETECTION, "detection_id": "d2", "mjd": 58601.0}
            generated = client.post("/classify/batch", json={"detections": [second]})
            forged = client.get("/objects/GOTO_log+1", headers={"X-Request-ID": "bad id\twith tab"})
            refused = client.post("/classify", json=DETECTION, headers={"Authorization": "Bearer wrong-key"})
            invalid = client.post("/classify", json={**DETECTION, "mag": 99.0})
            deadline = time.monotonic() + 10
            while len(receiver.requests) < 3 and time.monotonic() < deadline:  # a retry happened
                time.sleep(0.02)
    finally:
        receiver.stop()
    assert [r.status_code for r in (given, generated, forged, refused, invalid)] == [200, 200, 200, 401, 422]
    assert len(receiver.requests) >= 3

    # request ids: the client's when it is a plain token, else a fresh one; always echoed
    assert given.headers["x-request-id"] == "marshall-req-42"
    assert len(generated.headers["x-request-id"]) == 32
    assert forged.headers["x-request-id"] not in ("", "bad id\twith tab")
    assert len({r.headers["x-request-id"] for r in (given, generated, forged, refused, invalid)}) == 5

    text = captured_logs.getvalue()
    assert API_KEY not in text and WEBHOOK_SECRET not in text
    assert "wrong-key" not in text  # a refused key is a secret too (maybe a real key with a typo)
    records = [json.loads(line) for line in text.splitlines()]
    access = {r["request_id"]: r for r in records if r["logger"] == "service.access"}
    first = access["marshall-req-42"]
    assert (first["route"], first["status"], first["object_id"], first["method"]) == (
        "/classify", 200, "GOTO_log+1", "POST")
    assert first["duration_ms"] > 0
    batch = access[generated.headers["x-request-id"]]
    assert batch["object_id"] == "GOTO_log+1" and batch["n_detections"] == 1
    view = access[forged.headers["x-request-id"]]
    assert (view["route"], view["object_id"]) == ("/objects/{object_id}", "GOTO_log+1")
    assert access[refused.headers["x-request-id"]]["status"] == 401
    assert access[invalid.headers["x-request-id"]]["status"] == 422
    # the dispatcher's retries were logged (so its lines were scanned for the secret too)
    assert any(r["logger"] == "service.webhooks" and "attempt" in r["message"] for r in records)
