"""The ``/ui`` pages over real HTTP (uvicorn) and a real Redis: what they show, escaping, access rules."""

from __future__ import annotations

import functools
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from tests.integration.conftest import ThreadServer, build_tiny_artifact, make_settings

pytestmark = pytest.mark.slow

KEY = "ui-test-key-0123456789"
MARKUP_VERSION = "v1<script>alert(1)</script>&'\""


def _svg(page: str, element_id: str) -> str:
    start = page.index(f'<svg id="{element_id}"')
    return page[start : page.index("</svg>", start)]


def _count(fragment: str, css_class: str) -> int:
    return len(re.findall(rf'<[a-z]+ class="{css_class}"', fragment))


def _det(oid: str, i: int, **extra: Any) -> dict[str, Any]:
    return {"object_id": oid, "mjd": 58600.0 + 2.5 * i, "mag": 18.0 + 0.05 * i, "mag_err": 0.05,
            "ra": 150.0, "dec": 2.0, **extra}


def _wait_listed(url: str, n: int, query: str = "", headers: dict[str, str] | None = None) -> str:
    """The index is written just after the commit (``service.ui.index``): poll until ``n`` rows show."""
    deadline = time.monotonic() + 10
    while True:
        page = httpx.get(f"{url}/ui{query}", headers=headers).text
        if page.count('class="object-row"') >= n or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


@pytest.fixture(scope="module")
def short_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that reads only its first 6 detections (sequence length from its metadata)."""
    import lightcurve.metadata
    import trainer.model

    patch = pytest.MonkeyPatch()
    # build_tiny_artifact takes the defaults of both; a 6-step model proves the page reads the metadata
    for module, name in ((trainer.model, "ModelConfig"), (lightcurve.metadata, "SequenceSpec")):
        patch.setattr(module, name, functools.partial(getattr(module, name), n_steps=6))
    try:
        return build_tiny_artifact(tmp_path_factory.mktemp("short") / "m", version="tiny-6-steps")
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def markup_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose version string is markup, with a report directory (one plot, one other file)."""
    out = build_tiny_artifact(tmp_path_factory.mktemp("markup") / "m", seed=11, version=MARKUP_VERSION)
    report = out / "report"
    report.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "docs" / "img" / "data_context.png", report / "roc.png")
    (report / "notes.txt").write_text("not a plot")
    return out


def _server(model_dir: Path, redis_url: str, **settings: Any) -> ThreadServer:
    return ThreadServer(create_app(make_settings(model_dir, redis_url, **settings)))


def test_object_page_marks_detections_beyond_the_models_first_n_steps(short_model_dir, clean_redis):
    with _server(short_model_dir, clean_redis) as srv:
        dets = [_det("GOTO_AT2026abc", i, host_sep_arcsec=3.5) for i in range(8)]
        assert httpx.post(f"{srv.url}/classify/batch", json={"detections": dets}).status_code == 200
        resp = httpx.get(f"{srv.url}/ui/objects/GOTO_AT2026abc")
        view = httpx.get(f"{srv.url}/objects/GOTO_AT2026abc").json()
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    page = resp.text
    lc = _svg(page, "lightcurve")
    assert _count(lc, "det used") == 6 and _count(lc, "det beyond") == 2
    assert _count(lc, "err") == 8
    assert "after the model&#x27;s first 6" in lc and "beyond its first 6" in page
    # the first 6 detections are classified (6 history rows); the 2 beyond are stored only
    for plot_id in ("prob-by-detection", "prob-by-time"):
        plot = _svg(page, plot_id)
        assert _count(plot, "prob c0") == _count(plot, "prob c1") == _count(plot, "prob c2") == 6
    ctx = view["context"]
    assert f"{ctx['gal_l_deg']:.4f}°" in page and f"{ctx['gal_b_deg']:.4f}°" in page
    assert '<dd id="host-sep">3.50″</dd>' in page and "<code>request</code>" in page
    assert 'href="/objects/GOTO_AT2026abc/probabilities"' in page


def test_model_version_change_is_marked_and_every_stored_string_is_escaped(
    markup_model_dir, tiny_model_dir, loaded_model, clean_redis
):
    with _server(markup_model_dir, clean_redis) as srv:
        dets = [_det("GOTO_v", i) for i in range(2)]
        assert httpx.post(f"{srv.url}/classify/batch", json={"detections": dets}).status_code == 200
        model_page = httpx.get(f"{srv.url}/ui/model").text
        plot = httpx.get(f"{srv.url}/ui/model/report/roc.png")
        other = httpx.get(f"{srv.url}/ui/model/report/notes.txt")
        up = httpx.get(f"{srv.url}/ui/model/report/..%2Fmetadata.json")
    # the service's own model takes over: the next detection is classified by another version
    with ThreadServer(create_app(make_settings(tiny_model_dir, clean_redis), model=loaded_model)) as srv:
        assert httpx.post(f"{srv.url}/classify", json=_det("GOTO_v", 2)).status_code == 200
        listing = _wait_listed(srv.url, 1)
        page = httpx.get(f"{srv.url}/ui/objects/GOTO_v").text
    for plot_id in ("prob-by-detection", "prob-by-time"):
        assert _count(_svg(page, plot_id), "version") == 1  # one change, at the third update
    assert "model tiny-gru-7" in _svg(page, "prob-by-detection")
    escaped = "v1&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#x27;&quot;"
    for html in (page, model_page):
        assert "<script" not in html and escaped in html
    assert "<script" not in listing and "tiny-gru-7" in listing
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert 'src="/ui/model/report/roc.png"' in model_page and "notes.txt" not in model_page
    assert other.status_code == 404 and up.status_code == 404


def test_markup_in_ids_and_filters_never_reaches_the_page(server):
    unknown = httpx.get(f"{server.url}/ui/objects/GOTO_nothing")
    assert unknown.status_code == 404 and "GOTO_nothing" in unknown.text
    assert unknown.headers["content-type"].startswith("text/html")
    attack = "<img src=x onerror=alert(1)>"
    for resp in (
        httpx.get(f"{server.url}/ui/objects/{attack}"),
        httpx.get(f"{server.url}/ui", params={"class": attack}),
        httpx.get(f"{server.url}/ui", params={"min_class": "SN", "min_p": attack}),
    ):
        assert resp.status_code in (404, 422)
        assert "<img" not in resp.text and "&lt;img src=x onerror=alert(1)&gt;" in resp.text
        assert "script-src" not in resp.headers["content-security-policy"]  # default-src 'none': no script
    assert httpx.get(f"{server.url}/ui", params={"min_class": "SN", "min_p": "1.5"}).status_code == 422
    assert httpx.get(f"{server.url}/ui", params={"min_class": "SN"}).status_code == 422
    assert httpx.get(f"{server.url}/ui", params={"per_page": "0"}).status_code == 422


def test_listing_counts_filters_and_pages_what_was_classified(server):
    results = []
    for i in range(5):
        det = {**_det(f"GOTO_{i}", 0), "ra": 40.0 * i, "dec": 10.0 * i}
        r = httpx.post(f"{server.url}/classify", json=det)
        results.append(r.json())
    page = _wait_listed(server.url, 5)
    by_class = {c: sum(r["predicted_class"] == c for r in results) for c in ("VS", "SN", "AGN")}
    for i, (c, n) in enumerate(by_class.items()):
        assert f'<a class="count c{i}" href="/ui?class={c}">{c} <b>{n}</b></a>' in page
    newest_first = [f"GOTO_{i}" for i in reversed(range(5))]
    assert re.findall(r'<a href="/ui/objects/(GOTO_\d)">', page) == newest_first
    first = httpx.get(f"{server.url}/ui", params={"per_page": 2}).text
    last = httpx.get(f"{server.url}/ui", params={"per_page": 2, "page": 3}).text
    assert re.findall(r'<a href="/ui/objects/(GOTO_\d)">', first) == newest_first[:2]
    assert re.findall(r'<a href="/ui/objects/(GOTO_\d)">', last) == newest_first[4:]
    assert 'rel="next" href="/ui?page=2&amp;per_page=2"' in first and 'rel="next"' not in last
    best = max(results, key=lambda r: r["probabilities"]["SN"])
    p = best["probabilities"]["SN"]
    filtered = httpx.get(f"{server.url}/ui", params={"min_class": "SN", "min_p": f"{p - 1e-6:.6f}"}).text
    expected = [r["object_id"] for r in reversed(results) if r["probabilities"]["SN"] >= p - 1e-6]
    assert re.findall(r'<a href="/ui/objects/(GOTO_\d)">', filtered) == expected
    cls = results[0]["predicted_class"]
    only = httpx.get(f"{server.url}/ui", params={"class": cls}).text
    assert re.findall(r'<a href="/ui/objects/(GOTO_\d)">', only) == [
        r["object_id"] for r in reversed(results) if r["predicted_class"] == cls
    ]


@pytest.fixture
def protected(tiny_model_dir, loaded_model, clean_redis) -> Iterator[ThreadServer]:
    settings = make_settings(tiny_model_dir, clean_redis, api_keys=KEY, protect_reads=True)
    with ThreadServer(create_app(settings, model=loaded_model)) as srv:
        yield srv


def test_protected_reads_need_a_key_by_header_or_the_login_cookie(protected):
    url = protected.url
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(f"{url}/classify", json=_det("GOTO_k", 0), headers=auth).status_code == 200
    denied = httpx.get(f"{url}/ui/objects/GOTO_k")
    assert denied.status_code == 401 and 'action="/ui/login"' in denied.text
    assert 'name="next" value="/ui/objects/GOTO_k"' in denied.text and "lightcurve" not in denied.text
    assert httpx.get(f"{url}/ui/model").status_code == 401
    assert httpx.get(f"{url}/ui/objects/GOTO_k", headers=auth).status_code == 200
    assert httpx.get(f"{url}/ui/static/ui.css").status_code == 200  # the login page's style is open

    wrong = httpx.post(f"{url}/ui/login", data={"key": "not-the-key-at-all", "next": "/ui/model"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    with httpx.Client(base_url=url) as browser_like:
        ok = browser_like.post("/ui/login", data={"key": KEY, "next": "/ui/objects/GOTO_k"})
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/objects/GOTO_k"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        assert browser_like.get("/ui/objects/GOTO_k").status_code == 200
        assert "GOTO_k" in _wait_listed(url, 1, headers=auth)
        # the pages' cookie opens the pages only, never the JSON API
        browser_like.cookies.set("goto_ui_key", KEY)
        assert browser_like.get("/objects/GOTO_k").status_code == 401
    elsewhere = httpx.post(f"{url}/ui/login", data={"key": KEY, "next": "//evil.example/ui"})
    assert elsewhere.headers["location"] == "/ui"
