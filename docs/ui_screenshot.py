"""Screenshot of an object page for the README: ``python docs/ui_screenshot.py``.

Starts ``goto-classifier serve`` (shipped model, embedded Redis in a temporary directory), replays the
two real GOTO light curves, and saves the page of ``--object`` (default SN 2019euw) as drawn by a
headless Chromium (Debian ``chromium`` + ``chromium-driver``, driven by selenium).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
REAL_GOTO = REPO.parent / "shared" / "data" / "real_goto_examples"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("serve did not become ready")


def screenshot(url: str, out: Path, width: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     f"--user-data-dir={profile}", f"--window-size={width},1000", "--hide-scrollbars"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(int(height) + 20, 4000))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(driver.get_screenshot_as_png())
        finally:
            driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object", default="GOTO_SN2019euw")
    parser.add_argument("--out", default=str(REPO / "docs" / "img" / "ui_object_sn2019euw.png"))
    parser.add_argument("--width", type=int, default=1100)
    args = parser.parse_args()

    from service.replay import build_requests, replay

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOTO_")} | {"GOTO_DATA_DIR": data_dir}
        command = [sys.executable, "-m", "lightcurve.cli", "serve", "--port", str(port)]
        proc = subprocess.Popen(command, env=env)
        try:
            _wait_ready(url, proc)
            requests = build_requests(pd.read_csv(REAL_GOTO / "detections.csv"),
                                      pd.read_csv(REAL_GOTO / "objects.csv"))
            with httpx.Client(base_url=url, timeout=60) as client:
                summary = replay(requests, client, progress=False)
            if summary.rejected:
                raise SystemExit(f"replay rejected detections: {summary.errors[:3]}")
            screenshot(f"{url}/ui/objects/{args.object}", Path(args.out), args.width)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
