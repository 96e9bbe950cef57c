"""``goto-classifier serve --workers 2``: /metrics adds up every worker's counts (prometheus-client
multiprocess mode), both workers' dispatchers share the webhook outbox, and the logs are JSON lines
without secrets."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.webhooks import EVENT_UPDATED, verify_signature
from tests.integration.conftest import ServeProcess
from tests.integration.webhook_fixtures import SECRET, Receiver

pytestmark = pytest.mark.slow

API_KEY = "metrics-test-api-key-0123456789"
WRONG_KEY = "not-the-right-key-9876543210"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in scraped.items() if n == name and set(labels.items()) <= set(lab))


def detections(rng: random.Random) -> tuple[list[dict[str, Any]], int]:
    """New detections, replays and invalid ones, shuffled; returns them and the number invalid."""
    new = []
    for k in range(30):
        ra, dec = rng.uniform(0, 359), rng.uniform(-60, 60)
        for i in range(4):  # every detection carries a position: arrival order does not matter
            new.append({"object_id": f"GOTO_m{k:02d}", "detection_id": f"d{i}", "mjd": 58600.0 + 3 * i,
                        "mag": rng.uniform(16, 20), "mag_err": 0.05, "ra": ra, "dec": dec})
    replays = rng.sample(new, 20)
    invalid = [
        {**new[0], "detection_id": "nan", "mag": float("nan")},
        {**new[1], "detection_id": "bad-err", "mag_err": -1.0},
        {**new[2], "object_id": "bad id with spaces"},
        {**new[3], "detection_id": "neg-dec", "dec": -91.0},
        {"object_id": "GOTO_nopos", "detection_id": "x", "mjd": 58600.0, "mag": 18.0, "mag_err": 0.1},
    ]
    sent = new + replays + invalid
    rng.shuffle(sent)
    return sent, len(invalid)


async def post_all(url: str, dets: list[dict[str, Any]], concurrency: int = 16) -> list[httpx.Response]:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, headers=headers) as client:

        async def one(d: dict[str, Any]) -> httpx.Response:
            async with sem:
                # NaN is not JSON: send the raw text Python's json writes for it
                return await client.post("/classify", content=json.dumps(d),
                                          headers={"Content-Type": "application/json"})

        return await asyncio.gather(*(one(d) for d in dets))


def workers_that_served(directory: Path) -> set[str]:
    """Pids whose multiprocess files count HTTP requests (the supervisor's files hold only zeros)."""
    from prometheus_client.mmap_dict import MmapedDict

    pids = set()
    for path in directory.glob("counter_*.db"):
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[0] == "goto_http_requests" and value > 0:
                pids.add(path.stem.split("_", 1)[1])
    return pids


def stale_metrics_file(directory: Path) -> None:
    """A counter file as a previous server run would have left it (1000 classified detections)."""
    code = (
        "from prometheus_client import Counter\n"
        "Counter('goto_detections', 'x', ['outcome']).labels('classified').inc(1000)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_two_workers_metrics_add_up_and_dispatchers_share_the_outbox(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(4)
    sent, n_invalid = detections(rng)
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    stale_metrics_file(metrics_dir)  # serve must clean it: otherwise every count is off by 1000
    receiver = Receiver().start()
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(
        f"subscriptions:\n  - id: every\n    url: {receiver.url}\n    secret_env: EVERY_SECRET\n"
        f"    events: [{EVENT_UPDATED}]\n    timeout_s: 3\n    backoff_base_s: 0.05\n    backoff_max_s: 0.2\n"
    )
    settings = dict(
        GOTO_MODEL_DIR=str(tiny_model_dir),
        GOTO_DATA_DIR=str(tmp_path / "data"),
        GOTO_WEBHOOKS=str(hooks),
        GOTO_API_KEYS=API_KEY,
        GOTO_LOG_JSON="true",
        GOTO_ACCESS_LOG="true",
        GOTO_LOG_LEVEL="info",
        EVERY_SECRET=SECRET,
        GOTO_WEBHOOK_DISPATCHER="worker",  # a dispatcher in each worker: they share one consumer group
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        with ServeProcess(settings) as serve:
            url = serve.url
            responses = asyncio.run(post_all(url, sent))
            codes = Counter(r.status_code for r in responses)
            assert codes == {200: len(sent) - n_invalid, 422: n_invalid}
            statuses = Counter(r.json()["status"] for r in responses if r.status_code == 200)
            assert statuses["classified"] == 120 and statuses["duplicate"] == 20
            assert httpx.post(f"{url}/classify", json=sent[0],
                              headers={"Authorization": f"Bearer {WRONG_KEY}"}).status_code == 401

            # every event delivered once although each worker runs a dispatcher (one consumer group)
            deadline = time.monotonic() + 30
            while len(receiver.answered(200)) < statuses["classified"] and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            delivered = receiver.answered(200)
            ids = [r.event_id for r in delivered]
            assert len(ids) == statuses["classified"] and len(set(ids)) == len(ids)
            for r in delivered:
                verify_signature(SECRET, r.headers, r.body)

            # Whichever worker answers the scrape, it reports the whole server.
            time.sleep(0.2)
            scrapes = [samples(httpx.get(f"{url}/metrics").text) for _ in range(6)]
            served = workers_that_served(metrics_dir)
    finally:
        receiver.stop()
    assert serve.returncode == 0, serve.stderr[-2000:]
    assert len(served) == 2  # both workers handled requests: the totals below add them up

    for m in scrapes:
        def det(outcome: str, m: Any = m) -> float:
            return total(m, "goto_detections_total", outcome=outcome)

        assert det("classified") == statuses["classified"]
        assert det("duplicate") == statuses["duplicate"]
        assert det("rejected") == n_invalid
        assert det("classified") + det("duplicate") + det("stored") + det("rejected") == len(sent)
        assert total(m, "goto_classifications_total") == statuses["classified"]
        assert total(m, "goto_http_requests_total", route="/classify", status="200") == len(sent) - n_invalid
        assert total(m, "goto_http_requests_total", route="/classify", status="422") == n_invalid
        assert total(m, "goto_http_requests_total", route="/classify", status="401") == 1
        assert total(m, "goto_http_request_duration_seconds_count", route="/classify") == len(sent) + 1
        # a lost commit race costs an extra inference job, so jobs >= committed classifications
        assert total(m, "goto_inference_batch_size_sum") >= total(m, "goto_classifications_total") > 0
        assert total(m, "goto_webhook_delivery_successes_total", subscription="every") == len(ids)
        assert total(m, "goto_model_info", model_version="tiny-gru-7") == 1
        assert total(m, "goto_redis_errors_total") == 0

    # Logs: JSON lines only (uvicorn's included), request ids, object ids, and no secret anywhere.
    text = serve.stderr
    assert API_KEY not in text and WRONG_KEY not in text and SECRET not in text
    # (TensorFlow's C++ start-up notes of the engine check are not Python logs; everything else is)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert not [line for line in non_json_lines(text) if not line.startswith("tensorflow: ")]
    access = [r for r in lines if r["logger"] == "service.access" and r.get("route") == "/classify"]
    assert len(access) == len(sent) + 1
    assert len({r["request_id"] for r in access}) == len(access)
    assert all(r["object_id"].startswith("GOTO_") for r in access if r["status"] == 200)
    assert any(r["logger"].startswith("uvicorn") for r in lines)


def non_json_lines(text: str) -> list[str]:
    """The stderr lines that are not JSON, each labelled "tensorflow: " if it is TensorFlow's C++ log.

    TensorFlow's C++ notes (glog-style ``I0000 00:00:...`` lines, absl's start-up warning, and the
    continuation lines of a multi-line note, which carry no prefix) are written by its runtime, not by
    Python's logging; any other line that is not JSON is a Python log or traceback that escaped.
    """
    out: list[str] = []
    in_tf_note = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("{"):
            in_tf_note = False
            continue
        glog = line[:1] in "IWEF" and line[1:5].isdigit()
        in_tf_note = glog or "absl" in line or (in_tf_note and not line.startswith("Traceback"))
        out.append(("tensorflow: " if in_tf_note else "") + line)
    return out
