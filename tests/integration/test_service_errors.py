"""Bad input: the right status, an error naming the field, and nothing stored (real server, real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ThreadServer, db_size, make_settings

pytestmark = pytest.mark.slow

GOOD = {
    "object_id": "GOTO_ok",
    "detection_id": "d1",
    "mjd": 58605.1,
    "mag": 18.2,
    "mag_err": 0.05,
    "ra": 10.0,
    "dec": 20.0,
}
KEY = "k" * 20 + "-secret-key-1"


def locs(response: httpx.Response) -> list[list[Any]]:
    return [err["loc"] for err in response.json()["detail"]]


@pytest.fixture
def limited_server(tiny_model_dir: Path, loaded_model: Any, clean_redis: str) -> Iterator[ThreadServer]:
    from service.app import create_app

    settings = make_settings(tiny_model_dir, clean_redis, max_body_bytes=4096, max_batch_size=5)
    with ThreadServer(create_app(settings, model=loaded_model)) as srv:
        yield srv


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mag": float("nan")}, "mag"),
        ({"mag_err": float("inf")}, "mag_err"),
        ({"mjd": float("-inf")}, "mjd"),
        ({"mag_err": 0.0}, "mag_err"),
        ({"mag_err": -0.1}, "mag_err"),
        ({"mjd": 12.0}, "mjd"),
        ({"mag": 99.0}, "mag"),
        ({"ra": 360.0}, "ra"),
        ({"dec": -91.0}, "dec"),
        ({"object_id": "bad id with spaces"}, "object_id"),
        ({"object_id": "x" * 65}, "object_id"),
        ({"detection_id": "a/b"}, "detection_id"),
        ({"host_sep_arcsec": -1.0}, "host_sep_arcsec"),
        ({"mag": "bright"}, "mag"),
        ({"ra": None, "dec": None}, "ra"),  # missing position on a new object
    ],
)
def test_invalid_detection_is_422_naming_the_field(
    limited_server: ThreadServer, clean_redis: str, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    # json.dumps writes NaN/Infinity tokens, which Python's JSON parser (and so FastAPI) accepts.
    import json

    content = json.dumps(body)
    with httpx.Client(base_url=limited_server.url) as client:
        r = client.post("/classify", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(loc[-1] == field for loc in locs(r)), r.text
    assert db_size(clean_redis) == 0


def test_missing_field_named(limited_server: ThreadServer, clean_redis: str) -> None:
    body = {k: v for k, v in GOOD.items() if k != "mag_err"}
    with httpx.Client(base_url=limited_server.url) as client:
        r = client.post("/classify", json=body)
    assert r.status_code == 422 and ["body", "mag_err"] in locs(r)
    assert db_size(clean_redis) == 0


def test_oversized_body_is_413(limited_server: ThreadServer, clean_redis: str) -> None:
    big = {**GOOD, "detection_id": "d" * 10, "pad": "x" * 5000}
    with httpx.Client(base_url=limited_server.url) as client:
        r = client.post("/classify", json=big)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
            yield b'{"object_id": "GOTO_ok", "pad": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        chunked = client.post("/classify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert chunked.status_code == 413
    assert db_size(clean_redis) == 0


def test_batch_over_count_is_422_and_stores_nothing(limited_server: ThreadServer, clean_redis: str) -> None:
    dets = [{**GOOD, "detection_id": f"d{i}", "mjd": 58605.0 + i} for i in range(6)]
    with httpx.Client(base_url=limited_server.url) as client:
        r = client.post("/classify/batch", json={"detections": dets})
    assert r.status_code == 422 and ["body", "detections"] in locs(r)
    assert db_size(clean_redis) == 0


def test_batch_with_one_bad_item_stores_nothing(limited_server: ThreadServer, clean_redis: str) -> None:
    dets = [{**GOOD, "detection_id": f"d{i}", "mjd": 58605.0 + i} for i in range(4)]
    dets[2]["mag_err"] = 0.0
    new_without_position = {"object_id": "GOTO_new", "mjd": 58606.0, "mag": 18.0, "mag_err": 0.1}
    with httpx.Client(base_url=limited_server.url) as client:
        r = client.post("/classify/batch", json={"detections": dets})
        r2 = client.post("/classify/batch", json={"detections": [dets[0], new_without_position]})
    assert r.status_code == 422 and ["body", "detections", 2, "mag_err"] in locs(r)
    assert r2.status_code == 422 and ["body", "detections", 1, "ra"] in locs(r2)
    assert db_size(clean_redis) == 0


def test_known_object_needs_no_position(limited_server: ThreadServer) -> None:
    with httpx.Client(base_url=limited_server.url) as client:
        assert client.post("/classify", json=GOOD).status_code == 200
        later = {k: v for k, v in GOOD.items() if k not in ("ra", "dec")}
        r = client.post("/classify", json={**later, "detection_id": "d2", "mjd": 58606.0})
        assert r.status_code == 200 and r.json()["n_detections"] == 2


def test_api_keys_protect_writes(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    from service.app import create_app

    settings = make_settings(tiny_model_dir, clean_redis, api_keys=f"{KEY}, other-key-0123456789")
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    with (
        ThreadServer(create_app(settings, model=loaded_model)) as srv,
        httpx.Client(base_url=srv.url) as client,
    ):
        assert client.post("/classify", json=GOOD).status_code == 401
        wrong = client.post("/classify", json=GOOD, headers={"Authorization": "Bearer " + "x" * 33})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.post("/classify/batch", json={"detections": [GOOD]}).status_code == 401
        assert db_size(clean_redis) == 0
        ok = client.post("/classify", json=GOOD, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        assert client.get("/objects/GOTO_ok").status_code == 200  # reads open unless protect_reads
    assert KEY not in caplog.text

    settings = make_settings(tiny_model_dir, clean_redis, api_keys=KEY, protect_reads=True)
    with (
        ThreadServer(create_app(settings, model=loaded_model)) as srv,
        httpx.Client(base_url=srv.url) as client,
    ):
        assert client.get("/objects/GOTO_ok").status_code == 401
        assert client.get("/objects/GOTO_ok", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes stay open
