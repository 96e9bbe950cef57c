"""Long runs that survive: a checkpoint directory copied elsewhere resumes to the same weights as an
uninterrupted run; the optional early stop on validation AUC ends a run and is recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lightcurve.cli import main
from trainer.data import CLASS_NAMES, load_tables
from trainer.dataset import DataOptions, prepare_training_data
from trainer.model import ModelConfig
from trainer.training import STATE, TrainConfig, train_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(out), "--n-objects", "3000", "--seed", "11"]) == 0
    return prepare_training_data(load_tables(out), DataOptions(seed=3), CLASS_NAMES)


def _config(epochs: int, **kwargs) -> TrainConfig:
    return TrainConfig(model=ModelConfig(rnn_units=8, dense_units=8), epochs=epochs, seed=5, **kwargs)


def test_resume_from_a_copied_checkpoint_gives_the_uninterrupted_weights(data, tmp_path: Path) -> None:
    straight = train_model(_config(3), data, tmp_path / "straight", log=lambda _m: None)

    first_leg = tmp_path / "machine_a" / "work"
    train_model(_config(1), data, first_leg, log=lambda _m: None)
    copied = tmp_path / "machine_b" / "work"
    shutil.copytree(first_leg, copied)  # what an operator copies to another machine
    shutil.rmtree(first_leg)
    resumed = train_model(_config(3), data, copied, log=lambda _m: None)

    assert resumed.resumed_from_epoch == 1 and resumed.epochs_completed == 3
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Not trivially equal: training moved the weights away from the first leg's.
    assert straight.history[-1]["loss"] != straight.history[0]["loss"]


def test_early_stop_on_validation_auc_ends_the_run_and_is_recorded(data, tmp_path: Path) -> None:
    # A min_delta of 1 means no epoch can improve on the first: patience 2 stops after epoch 3.
    config = _config(20, early_stop_patience=2, early_stop_min_delta=1.0, export_weights="best_val_auc")
    work = tmp_path / "work"
    outcome = train_model(config, data, work, log=lambda _m: None)
    assert outcome.stopped_early_at == 3 and outcome.epochs_completed == 3
    assert outcome.best_epoch == 1 and outcome.exported_epoch == 1
    assert json.loads((work / STATE).read_text())["stopped_early_at"] == 3
    # Running the command again does not train on past the stop.
    again = train_model(config, data, work, log=lambda _m: None)
    assert again.epochs_completed == 3 and len(again.history) == 3


def test_default_is_the_papers_200_epochs_without_early_stop() -> None:
    config = TrainConfig()
    assert config.epochs == 200 and config.early_stop_patience == 0 and config.batching == "bucketed"
