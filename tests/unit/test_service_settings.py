"""Service settings: environment parsing, secrets kept out of repr, fail-fast validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, load_settings


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "metadata.json").write_text("{}")
    (tmp_path / "model.keras").write_bytes(b"")
    return tmp_path


def test_environment_is_read(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "a-very-long-api-key-0001"
    monkeypatch.setenv("GOTO_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("GOTO_API_KEYS", f"{key}, second-key-0123456789 ,")
    monkeypatch.setenv("GOTO_MAX_BATCH_SIZE", "50")
    monkeypatch.setenv("GOTO_PROTECT_READS", "true")
    settings = Settings()
    assert settings.key_values() == (key.encode(), b"second-key-0123456789")
    assert settings.max_batch_size == 50 and settings.protect_reads and settings.redis_url is None
    assert key not in repr(settings) and key not in str(settings)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("GOTO_REDIS_URL", "http://localhost:6379", "REDIS_URL"),
        ("GOTO_MAX_BODY_BYTES", "10", "MAX_BODY_BYTES"),
        ("GOTO_MAX_BATCH_SIZE", "zero", "MAX_BATCH_SIZE"),
        ("GOTO_API_KEYS", "short", "API_KEYS"),
        ("GOTO_GALAXY_CATALOG", "/nonexistent/galaxies.csv", "galaxy_catalog"),
        ("GOTO_LOG_LEVEL", "loud", "LOG_LEVEL"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    monkeypatch.setenv("GOTO_MODEL_DIR", str(model_dir))
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=needle):
        load_settings()


def test_model_dir_must_hold_an_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOTO_MODEL_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match=r"metadata\.json"):
        load_settings()
