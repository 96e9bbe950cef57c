"""The pages in a real headless Chromium (selenium), after ``replay`` of the two real GOTO light curves
into ``goto-classifier serve`` with the shipped model: plot elements and their point counts, no
console errors, a screenshot that is not blank.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them and sets
``UI_BROWSER_REQUIRED=1``, which turns a missing browser into a failure instead of a skip).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from service.replay import build_requests, replay
from tests.integration.conftest import ServeProcess

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("UI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UI_CHROMEDRIVER", "/usr/bin/chromedriver")
#: The flags a closed-network CI machine needs (no sandbox as root, no background network calls).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1800",
)


def _browser_missing() -> str | None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if not missing:
        return None
    return f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = _browser_missing()
    if reason:
        if os.environ.get("UI_BROWSER_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``serve --workers 2`` (shipped model, embedded Redis) with the real GOTO curves replayed."""
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real GOTO examples not found at {SHARED_DATA}")
    data_dir = tmp_path_factory.mktemp("serve-data")
    with ServeProcess({"GOTO_DATA_DIR": str(data_dir)}, workers=2) as srv:
        requests = build_requests(pd.read_csv(SHARED_DATA / "detections.csv"),
                                  pd.read_csv(SHARED_DATA / "objects.csv"))
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            summary = replay(requests, client, progress=False)
        assert summary.accepted == 15, summary.errors
        yield srv.url


def _severe_console_entries(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _screenshot_is_not_blank(png: bytes) -> tuple[int, float]:
    """Distinct colours and the share of pixels that are not the page background."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return len(colours), 1.0 - counts.max() / len(pixels)


def _wait_listed(url: str, n: int) -> None:
    """The index is written just after the commit: wait until the listing shows ``n`` objects."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/ui").text.count('class="object-row"') >= n:
            return
        time.sleep(0.1)


def test_listing_in_chromium_shows_both_replayed_objects(browser, replayed):
    from selenium.webdriver.common.by import By

    _wait_listed(replayed, 2)
    browser.get(f"{replayed}/ui")
    rows = browser.find_elements(By.CSS_SELECTOR, "table#objects tbody tr.object-row")
    cells = {r.find_element(By.TAG_NAME, "a").text: [c.text for c in r.find_elements(By.TAG_NAME, "td")]
             for r in rows}
    assert set(cells) == {"GOTO_SN2019euw", "GOTO_IRAS18547+1254"}
    assert cells["GOTO_SN2019euw"][5] == "8" and cells["GOTO_IRAS18547+1254"][5] == "7"
    counts = browser.find_element(By.ID, "class-counts").text
    assert "all 2" in counts
    assert _severe_console_entries(browser) == []


def test_object_page_in_chromium_draws_every_detection_and_history_row(browser, replayed):
    from selenium.webdriver.common.by import By

    browser.get(f"{replayed}/ui/objects/GOTO_SN2019euw")
    assert browser.find_element(By.CSS_SELECTOR, "h1.object-id").text == "GOTO_SN2019euw"
    lc = browser.find_element(By.ID, "lightcurve")
    # 8 detections, all within the shipped model's first 30: all drawn as model input, with error bars
    assert len(lc.find_elements(By.CSS_SELECTOR, "circle.det.used")) == 8
    assert lc.find_elements(By.CSS_SELECTOR, "circle.det.beyond") == []
    assert len(lc.find_elements(By.CSS_SELECTOR, "line.err")) == 8
    for plot_id in ("prob-by-detection", "prob-by-time"):
        plot = browser.find_element(By.ID, plot_id)
        # one point per history row (8) and class (3), one line per class
        assert len(plot.find_elements(By.CSS_SELECTOR, "circle.prob")) == 8 * 3
        assert len(plot.find_elements(By.CSS_SELECTOR, "polyline.series")) == 3
        assert plot.find_elements(By.CSS_SELECTOR, "g.version") == []  # one model version throughout
        box = plot.rect
        assert box["width"] > 300 and box["height"] > 100  # laid out, not collapsed
    assert browser.find_element(By.ID, "host-source").text.startswith("unknown")
    links = {a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "p.links a")}
    assert f"{replayed}/objects/GOTO_SN2019euw/probabilities" in links
    assert _severe_console_entries(browser) == []
    colours, covered = _screenshot_is_not_blank(browser.get_screenshot_as_png())
    assert colours > 20 and covered > 0.05


def test_model_page_in_chromium_loads_every_report_plot(browser, replayed):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{replayed}/ui/model")
    images = browser.find_elements(By.CSS_SELECTOR, "#report figure img")
    report = Path(__file__).resolve().parents[2] / "model_artifacts" / "report"
    shipped = sorted(p.name for p in report.glob("*.png"))
    assert [Path(i.get_attribute("src")).name for i in images] == shipped and shipped
    for image in images:  # decoded by the browser: served, right type, a real picture
        browser.execute_script("arguments[0].scrollIntoView()", image)  # they load lazily
        WebDriverWait(browser, 10).until(
            lambda d, img=image: d.execute_script("return arguments[0].complete", img)
        )
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 100
    assert _severe_console_entries(browser) == []


def test_unknown_object_page_is_a_404_page_in_chromium(browser, replayed):
    from selenium.webdriver.common.by import By

    browser.get(f"{replayed}/ui/objects/GOTO_nothing_here")
    assert "GOTO_nothing_here" in browser.find_element(By.ID, "error").text
    # the browser logs the 404 of the document itself and nothing else
    entries = _severe_console_entries(browser)
    assert len(entries) == 1 and "404" in entries[0]["message"]
