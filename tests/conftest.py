"""Shared fixtures. Environment scrubbed so a developer's GOTO_* variables never leak into tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "real_goto_examples"


@pytest.fixture(autouse=True)
def _scrub_goto_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GOTO_") and name != "GOTO_REDIS_URL":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def real_goto_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real GOTO examples not found at {SHARED_DATA}")
    return SHARED_DATA
