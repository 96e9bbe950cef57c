"""Webhook subscriptions file: formats, defaults, and errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.webhooks.config import (
    DEFAULT_EVENTS,
    EVENT_THRESHOLD_CROSSED,
    EVENT_UPDATED,
    Subscription,
    WebhookConfigError,
    load_subscriptions,
)


def _write_json(tmp_path: Path, data: object, name: str = "hooks.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_json_minimal_subscription_gets_documented_defaults(tmp_path: Path) -> None:
    entry = {"url": "https://marshall.example/hook", "secret": "abc"}
    path = _write_json(tmp_path, {"subscriptions": [entry]})
    (sub,) = load_subscriptions(path)
    assert sub.events == DEFAULT_EVENTS
    assert sub.threshold_for("SN") == 0.7
    assert sub.rearm_threshold_for("SN") == pytest.approx(0.6)
    assert sub.secret_value() == "abc"
    assert sub.sid.startswith("sub-")
    # The derived id names Redis streams, so it must not change between loads.
    assert load_subscriptions(path)[0].sid == sub.sid


def test_yaml_with_per_class_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "subscriptions:\n"
        "  - id: marshall\n"
        "    url: http://127.0.0.1:9000/goto\n"
        "    secret: s3cret\n"
        "    events: [classification.updated, classification.threshold_crossed]\n"
        "    thresholds: {SN: 0.8, '*': 0.9}\n"
        "    rearm_thresholds: {SN: 0.5}\n"
        "    timeout_s: 2.5\n"
    )
    (sub,) = load_subscriptions(path)
    assert sub.sid == "marshall"
    assert sub.events == (EVENT_UPDATED, EVENT_THRESHOLD_CROSSED)
    assert (sub.threshold_for("SN"), sub.rearm_threshold_for("SN")) == (0.8, 0.5)
    assert (sub.threshold_for("AGN"), sub.rearm_threshold_for("AGN")) == (0.9, pytest.approx(0.8))
    assert sub.timeout_s == 2.5


def test_scalar_threshold_applies_to_every_class() -> None:
    sub = Subscription(url="http://x.example/", secret="k", thresholds=0.5)
    assert sub.threshold_for("VS") == sub.threshold_for("anything") == 0.5
    assert sub.rearm_threshold_for("VS") == pytest.approx(0.4)


def test_secret_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARSHALL_SECRET", "from-env")
    entry = {"url": "https://m.example/", "secret_env": "MARSHALL_SECRET"}
    path = _write_json(tmp_path, {"subscriptions": [entry]})
    assert load_subscriptions(path)[0].secret_value() == "from-env"


def test_secret_is_not_shown_in_repr() -> None:
    sub = Subscription(url="http://x.example/", secret="topsecretvalue")
    assert "topsecretvalue" not in repr(sub)


@pytest.mark.parametrize(
    ("entry", "where", "what"),
    [
        ({"url": "ftp://x", "secret": "k"}, "subscriptions[0].url", "http"),
        ({"url": "http://x", "secret": "k", "events": ["classification.typo"]}, "subscriptions[0].events",
         "unknown event 'classification.typo'"),
        ({"url": "http://x", "secret": "k", "events": []}, "subscriptions[0].events", "at least one"),
        ({"url": "http://x", "secret": "k", "thresholds": {"SN": 1.5}}, "subscriptions[0].thresholds.SN",
         "probability"),
        ({"url": "http://x", "secret": "k", "thresholds": "high"}, "subscriptions[0].thresholds", "mapping"),
        ({"url": "http://x", "secret": "k", "treshold": 0.5}, "subscriptions[0].treshold", "Extra inputs"),
        ({"url": "http://x"}, "subscriptions[0]", "exactly one of 'secret' and 'secret_env'"),
        ({"url": "http://x", "secret_env": "GOTO_TEST_UNSET_SECRET"}, "subscriptions[0]",
         "GOTO_TEST_UNSET_SECRET is not set"),
        ({"url": "http://x", "secret": "k", "timeout_s": 0}, "subscriptions[0].timeout_s", "greater than 0"),
        ({"url": "http://x", "secret": "k", "id": "has space"}, "subscriptions[0].id", "letters, digits"),
        ({"url": "http://x", "secret": "k", "rearm_thresholds": {"SN": 0.75}}, "subscriptions[0]",
         "SN re-arms at 0.75 which is not below its threshold 0.7"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, entry: dict, where: str, what: str) -> None:
    path = _write_json(tmp_path, {"subscriptions": [entry]})
    with pytest.raises(WebhookConfigError) as info:
        load_subscriptions(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {where}:"), message
    assert what in message


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    same_url = {"url": "http://x.example/hook", "secret": "k"}
    path = _write_json(tmp_path, {"subscriptions": [same_url, {**same_url, "events": [EVENT_UPDATED]}]})
    with pytest.raises(WebhookConfigError, match=r"subscriptions\[1\]\.id: .* subscriptions\[0\]"):
        load_subscriptions(path)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(WebhookConfigError, match="cannot read"):
        load_subscriptions(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(WebhookConfigError, match=r"bad\.json: invalid JSON at line 1"):
        load_subscriptions(bad)
    listed = _write_json(tmp_path, [{"url": "http://x", "secret": "k"}], "list.json")
    with pytest.raises(WebhookConfigError, match="'subscriptions' list"):
        load_subscriptions(listed)
    missing = _write_json(tmp_path, {"subs": []}, "missing-key.json")
    with pytest.raises(WebhookConfigError, match="subscriptions: Field required"):
        load_subscriptions(missing)


def test_dispatch_cli_explains_missing_or_bad_configuration(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from lightcurve.cli import main

    assert main(["dispatch", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    assert "GOTO_WEBHOOKS" in capsys.readouterr().err
    bad = _write_json(tmp_path, {"subscriptions": [{"url": "ftp://x", "secret": "k"}]})
    assert main(["dispatch", "--redis-url", "redis://127.0.0.1:1/0", "--webhooks", str(bad)]) == 2
    assert f"{bad}: subscriptions[0].url" in capsys.readouterr().err
    good = _write_json(tmp_path, {"subscriptions": [{"url": "http://x.example/", "secret": "k"}]}, "ok.json")
    assert main(["dispatch", "--webhooks", str(good)]) == 2  # GOTO_REDIS_URL is not set here either
    assert "GOTO_REDIS_URL" in capsys.readouterr().err
    assert main(["webhooks", "replay-dead-letters", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    assert "--all" in capsys.readouterr().err
