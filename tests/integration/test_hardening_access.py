"""Who may read what (issue 16, items 6 and 7): protected reads cover the API's description, metrics
have their own switch, and listing dead letters needs no webhook secret (real server, real Redis)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.conftest import ThreadServer, make_settings

pytestmark = pytest.mark.slow

KEY = "access-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
DESCRIPTION = ("/openapi.json", "/docs", "/redoc")


def _statuses(url: str, paths: tuple[str, ...], headers: dict[str, str] | None = None) -> dict[str, int]:
    with httpx.Client(base_url=url, headers=headers) as client:
        return {p: client.get(p).status_code for p in paths}


@pytest.mark.parametrize(
    ("protect_reads", "protect_metrics"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_protected_reads_cover_the_description_and_metrics_have_their_own_switch(
    tiny_model_dir: Path, loaded_model: Any, clean_redis: str, protect_reads: bool, protect_metrics: bool
) -> None:
    from service.app import create_app

    settings = make_settings(tiny_model_dir, clean_redis, api_keys=KEY, protect_reads=protect_reads,
                             protect_metrics=protect_metrics)
    with ThreadServer(create_app(settings, model=loaded_model)) as srv:
        anonymous = _statuses(srv.url, (*DESCRIPTION, "/model", "/metrics", "/healthz", "/readyz"))
        keyed = _statuses(srv.url, (*DESCRIPTION, "/model", "/metrics"), AUTH)
        schema = httpx.get(f"{srv.url}/openapi.json", headers=AUTH).json()
    read = 401 if protect_reads else 200
    assert anonymous == {**dict.fromkeys((*DESCRIPTION, "/model"), read),
                         "/metrics": 401 if protect_metrics else 200, "/healthz": 200, "/readyz": 200}
    assert set(keyed.values()) == {200}
    # the description is still the whole API (served by our route, not FastAPI's)
    assert {"/classify", "/classify/batch", "/objects/{object_id}", "/model"} <= set(schema["paths"])
    assert not {"/docs", "/redoc", "/openapi.json"} & set(schema["paths"])


def test_dead_letters_are_listed_without_the_secret_and_replay_still_needs_it(
    clean_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightcurve.cli import main as cli_main
    from service.webhooks.deadletters import DeadField
    from service.webhooks.outbox import EntryField, dead_letter_key

    monkeypatch.delenv("MARSHALL_SECRET", raising=False)
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("subscriptions:\n  - id: marshall\n    url: http://127.0.0.1:9/hook\n"
                     "    secret_env: MARSHALL_SECRET\n")
    client = redis.Redis.from_url(clean_redis)
    client.xadd(dead_letter_key("marshall"), {
        EntryField.EVENT_ID: "evt-1", EntryField.TYPE: "classification.updated",
        EntryField.SUBSCRIPTION: "marshall", EntryField.OBJECT_ID: "GOTO_x", EntryField.ATTEMPT: "3",
        EntryField.LAST_STATUS: "400", EntryField.LAST_ERROR: "HTTP 400", EntryField.CREATED: "1.0",
        EntryField.BODY: "{}", DeadField.REASON: "rejected", DeadField.DEAD_AT: "2.0",
    })
    client.close()
    source = ["--redis-url", clean_redis, "--webhooks", str(hooks)]

    out = io.StringIO()
    with redirect_stdout(out):
        code = cli_main(["webhooks", "dead-letters", *source, "--json"])
    assert code == 0
    assert [json.loads(line)["event_id"] for line in out.getvalue().splitlines()] == ["evt-1"]

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = cli_main(["webhooks", "replay-dead-letters", *source, "--all"])
    assert code == 2 and "MARSHALL_SECRET" in err.getvalue()
