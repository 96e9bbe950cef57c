"""Hostile input (issue 16, items 1, 4, 5, 12): each is refused with the right status, an error naming
the field, nothing stored, and the connection left usable; the fast path and FastAPI answer alike
(every test runs against a server with ``GOTO_FAST_PATH`` on and one with it off; real Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ThreadServer, db_size, make_settings

pytestmark = pytest.mark.slow

GOOD = {"object_id": "GOTO_ok", "detection_id": "d1", "mjd": 58605.1, "mag": 18.4, "mag_err": 0.06,
        "ra": 1.0, "dec": 1.0}
JSON = {"content-type": "application/json"}


@pytest.fixture(params=[True, False], ids=["fast-path", "fastapi"])
def srv(request: pytest.FixtureRequest, tiny_model_dir: Path, loaded_model: Any,
        clean_redis: str) -> Iterator[ThreadServer]:
    from service.app import create_app

    settings = make_settings(tiny_model_dir, clean_redis, fast_path=request.param)
    with ThreadServer(create_app(settings, model=loaded_model)) as server:
        yield server


def fields(response: httpx.Response) -> list[Any]:
    return [err["loc"][-1] for err in response.json()["detail"]]


# The raw JSON escape of a lone UTF-16 surrogate; Python's json module decodes it to a str that no
# UTF-8 encoder (orjson included) can write back.
SURROGATE = "\\ud800"


def _with_surrogate(body: dict[str, Any], field: str) -> str:
    marked = {**body, field: "SURROGATE"}
    return json.dumps(marked).replace('"SURROGATE"', f'"{SURROGATE}"')


@pytest.mark.parametrize("field", ["object_id", "detection_id", "filter", "mag", "ra"])
def test_lone_surrogate_is_422_naming_the_field_and_the_connection_stays_usable(
    srv: ThreadServer, clean_redis: str, field: str
) -> None:
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", content=_with_surrogate(GOOD, field), headers=JSON)
        assert r.status_code == 422, r.text
        assert field in fields(r)
        batch = '{"detections": [' + _with_surrogate(GOOD, field) + "]}"
        rb = client.post("/classify/batch", content=batch, headers=JSON)
        assert rb.status_code == 422, rb.text
        assert ["body", "detections", 0, field] in [e["loc"] for e in rb.json()["detail"]]
        assert db_size(clean_redis) == 0
        # a lone surrogate as a key (an unknown field) too
        key = json.dumps(GOOD)[:-1] + f', "{SURROGATE}": 1}}'
        assert client.post("/classify", content=key, headers=JSON).status_code == 422
        # same keep-alive connection: the next valid request is answered
        ok = client.post("/classify", json=GOOD)
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mag", True),
        ("mag", False),
        ("mag", " 18.4"),
        ("mag", "18.4"),
        ("mjd", "58605.1"),
        ("ra", True),
        ("dec", False),
        ("mag_err", True),
        ("mag_err", 1e-320),  # a subnormal: no photometry is that precise
        ("mag_err", 5e-5),  # below the documented floor of 1e-4 mag
        ("host_sep_arcsec", False),
        ("host_sep_arcsec", "1.5"),
    ],
)
def test_numbers_must_be_json_numbers_in_range(
    srv: ThreadServer, clean_redis: str, field: str, value: Any
) -> None:
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", json={**GOOD, field: value})
        rb = client.post("/classify/batch", json={"detections": [{**GOOD, field: value}]})
    assert r.status_code == 422, r.text
    assert fields(r) == [field]
    assert rb.status_code == 422 and fields(rb) == [field]
    assert db_size(clean_redis) == 0


def test_integers_and_the_mag_err_floor_are_accepted(srv: ThreadServer) -> None:
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", json={**GOOD, "mag": 18, "ra": 0, "mag_err": 1e-4})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/jsonx",
        "application/json-patch+json",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
    ],
)
def test_anything_but_utf8_json_is_415(srv: ThreadServer, clean_redis: str, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    body = json.dumps(GOOD).encode()
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", content=body, headers=headers)
        rb = client.post("/classify/batch", content=json.dumps({"detections": [GOOD]}), headers=headers)
        ok = client.post("/classify", json=GOOD)  # the connection is still usable
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["detail"]
    assert rb.status_code == 415
    assert ok.status_code == 200


def test_utf16_body_is_not_read_as_json(srv: ThreadServer, clean_redis: str) -> None:
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", content=json.dumps(GOOD).encode("utf-16"), headers=JSON)
    assert r.status_code == 422, r.text
    assert db_size(clean_redis) == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"'],
)
def test_utf8_json_content_types_are_accepted(srv: ThreadServer, content_type: str) -> None:
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", content=json.dumps(GOOD), headers={"content-type": content_type})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("field", "value"), [("object_id", "."), ("object_id", ".."),
                                              ("object_id", "..."), ("detection_id", "..")])
def test_ids_made_only_of_dots_are_422(srv: ThreadServer, clean_redis: str, field: str, value: str) -> None:
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/classify", json={**GOOD, field: value})
    assert r.status_code == 422, r.text
    assert fields(r) == [field]
    assert db_size(clean_redis) == 0


def test_ids_with_dots_and_other_characters_are_read_back(srv: ThreadServer) -> None:
    with httpx.Client(base_url=srv.url) as client:
        for oid in (".a", "a..", "GOTO_IRAS18547+1254"):
            assert client.post("/classify", json={**GOOD, "object_id": oid}).status_code == 200
            assert client.get(f"/objects/{oid}").status_code == 200
        # a dots-only id cannot be stored, so asking for one is a 422, not a 404
        assert client.get("/objects/%2e%2e").status_code == 422
