"""A model trained on adapted light curves (bands kept, late start, binning) reads another input than
the service builds from arriving detections: the service refuses to load it, naming the adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.inference import load_model


@pytest.mark.parametrize(
    "adapter", [{"binning": "night"}, {"bands": ["ztf_r"]}, {"start_column": "disc_mjd"}]
)
def test_a_model_trained_on_adapted_tables_is_refused(tiny_model_dir: Path, tmp_path: Path, adapter) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    meta_path = model_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["data"] = {**meta.get("data", {}), "adapter": {"adapter": adapter}}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(RuntimeError, match="trained on adapted light curves"):
        load_model(model_dir)


def test_the_same_model_without_an_adapter_loads(tiny_model_dir: Path) -> None:
    assert load_model(tiny_model_dir).engine is not None
