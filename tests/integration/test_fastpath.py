"""The classify fast path answers exactly as FastAPI does (real servers, real Redis).

The same script of requests (valid, replayed, invalid, unauthorised, over-long, a new object without
position, an undeclared content type) goes to a server with ``GOTO_FAST_PATH`` on and to one with it off,
each with an empty Redis: statuses, the headers a client relies on and the bodies must be equal (time
stamps aside), and so must the objects stored afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.conftest import ThreadServer, make_settings

pytestmark = pytest.mark.slow

KEY = "fast-path-test-key-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}


def _det(oid: str, i: int, **extra: Any) -> dict[str, Any]:
    return {"object_id": oid, "detection_id": f"d{i}", "mjd": 58600.0 + i, "mag": 18.0 + 0.1 * i,
            "mag_err": 0.05, "ra": 150.0, "dec": 2.0, **extra}


def _script() -> list[tuple[str, Any, dict[str, str]]]:
    """(path, body: JSON text or object, headers) in order."""
    no_pos = {k: v for k, v in _det("GOTO_nopos", 0).items() if k not in ("ra", "dec")}
    return [
        ("/classify", _det("GOTO_a", 0), AUTH),
        ("/classify", _det("GOTO_a", 2), AUTH),
        ("/classify", _det("GOTO_a", 1), AUTH),  # out of order: recompute
        ("/classify", _det("GOTO_a", 1), AUTH),  # replay: duplicate
        ("/classify", _det("GOTO_b", 0), {}),  # no key: 401
        ("/classify", _det("GOTO_b", 0), {"authorization": "Bearer wrong-key-0123456789"}),
        ("/classify", no_pos, AUTH),  # new object without position: 422
        ("/classify", json.dumps(_det("GOTO_c", 0, mag=float("nan"))), AUTH),  # NaN: 422 naming mag
        ("/classify", _det("GOTO_c", 0, mag_err=0.0), AUTH),
        ("/classify", "{not json", AUTH),
        ("/classify", _det("GOTO_c", 0, extra_field=1), AUTH),
        ("/classify/batch", {"detections": [_det("GOTO_d", i) for i in range(3)]}, AUTH),
        ("/classify/batch", {"detections": [_det("GOTO_e", 0), no_pos]}, AUTH),  # refused whole
        ("/classify/batch", {"detections": [_det("GOTO_f", i) for i in range(6)]}, AUTH),  # over 5
        ("/classify/batch", {"detections": []}, AUTH),
        ("/classify/batch", {"detections": [_det("GOTO_d", 1), _det("GOTO_g", 0)]}, AUTH),
    ]


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in ("updated_at", "time")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _run(url: str) -> list[tuple[int, dict[str, str], Any]]:
    out = []
    with httpx.Client(base_url=url) as client:
        for path, body, headers in _script():
            content = body if isinstance(body, str) else json.dumps(body)
            r = client.post(path, content=content, headers={"content-type": "application/json", **headers})
            kept = {h: r.headers.get(h) for h in ("content-type", "retry-after", "www-authenticate")}
            assert r.headers.get("x-request-id")
            out.append((r.status_code, kept, _without_times(r.json())))
    return out


def _fast_path(app: Any) -> Any:
    from service.api.fastpath import ClassifyFastPath

    layer = app.middleware_stack
    while not isinstance(layer, ClassifyFastPath):
        layer = layer.app
    return layer


def _classify_200s(url: str) -> float:
    line = 'goto_http_requests_total{method="POST",route="/classify",status="200"} '
    text = httpx.get(f"{url}/metrics").text
    return sum(float(x[len(line) :]) for x in text.splitlines() if x.startswith(line))


def _stored(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    try:
        return {k.decode(): client.type(k).decode() for k in client.keys("*")}
    finally:
        client.close()


def test_fast_path_answers_every_request_as_fastapi_does(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str
) -> None:
    from service.app import create_app

    runs = {}
    for fast in (True, False):
        settings = make_settings(
            tiny_model_dir, clean_redis, max_batch_size=5, api_keys=KEY, fast_path=fast
        )
        app = create_app(settings, model=loaded_model)
        with ThreadServer(app) as srv:
            before = _classify_200s(srv.url)
            responses = _run(srv.url)
            counted = _classify_200s(srv.url) - before
            served = _fast_path(app).served if fast else None
        runs[fast] = (responses, _stored(clean_redis), counted)
        if fast:
            assert served == 6  # the six 200s; every other request was answered by FastAPI
        redis.Redis.from_url(clean_redis).flushdb()

    (fast_responses, fast_keys, fast_counted), (slow_responses, slow_keys, _) = runs[True], runs[False]
    assert [r[0] for r in fast_responses] == [200, 200, 200, 200, 401, 401, 422, 422, 422, 422, 422,
                                              200, 422, 422, 422, 200]
    for i, (fast, slow) in enumerate(zip(fast_responses, slow_responses, strict=True)):
        assert fast == slow, f"request {i} of the script"
    assert fast_keys == slow_keys
    assert [r["status"] for r in fast_responses[15][2]["results"]] == ["duplicate", "classified"]
    # the fast path labels its requests with the route template, as FastAPI's routing does
    assert fast_counted == 4


def test_fast_path_reads_a_chunked_body(tiny_model_dir: Path, loaded_model: Any, clean_redis: str) -> None:
    from service.app import create_app

    app = create_app(make_settings(tiny_model_dir, clean_redis), model=loaded_model)
    text = json.dumps({"detections": [_det("GOTO_chunked", i) for i in range(3)]}).encode()

    def chunks() -> Any:  # no Content-Length: the body arrives in several ASGI messages
        for i in range(0, len(text), 64):
            yield text[i : i + 64]

    with ThreadServer(app) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify/batch", content=chunks(), headers={"content-type": "application/json"})
        served = _fast_path(app).served
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["classified"] * 3
    assert served == 1
