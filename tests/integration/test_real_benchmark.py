"""The real-data benchmark (trainer.real_benchmark) on a small labelled set written here, with the
shipped model: the preset adapter is applied, a set the model trained on is scored on its held-out
part only, and the numbers are those of ``trainer.evaluation`` on the same objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightcurve.adapters import SurveyAdapter
from lightcurve.metadata import load_metadata
from trainer.real_benchmark import score_real_set
from trainer.real_sets import RealSet, real_split, split_rule

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "model_artifacts"


def _write_set(folder: Path, n_per_class: int = 12) -> pd.DataFrame:
    """VS (slow sinusoids, from the start) and SN (rise then decline) with 2 exposures a night and a
    discovery date 3 nights after the first; two VS end before it (the adapter must drop them)."""
    rng = np.random.default_rng(5)
    objects, detections = [], []
    for label in ("VS", "SN"):
        for i in range(n_per_class):
            oid = f"{label}_{i:02d}"
            t0 = 58000.0 + 10 * i
            nights = t0 + np.arange(10) * 2.0
            if label == "VS":
                mag = 16 + 0.5 * np.sin(nights / 7.0)
            else:
                phase = nights - nights[3]
                mag = 19 - 2.0 * np.exp(-np.abs(phase) / 8.0)
            disc = float(nights[3]) if not (label == "VS" and i < 2) else float(nights[-1] + 5)
            objects.append({"object_id": oid, "ra": 10.0 + i, "dec": -5.0, "label": label, "disc_mjd": disc})
            for night, m in zip(nights, mag, strict=True):
                for dt in (0.0, 0.02):
                    detections.append(
                        {"object_id": oid, "mjd": night + dt, "mag": m + rng.normal(0, 0.02),
                         "mag_err": 0.03, "filter": "L"}
                    )
    folder.mkdir(parents=True)
    pd.DataFrame(objects).to_csv(folder / "objects.csv", index=False)
    pd.DataFrame(detections).to_csv(folder / "detections.csv", index=False)
    return pd.DataFrame(objects)


@pytest.fixture(scope="module")
def shipped():
    import keras

    return keras.models.load_model(MODEL_DIR / "model.keras", compile=False), load_metadata(MODEL_DIR)


def test_every_object_after_the_preset_adapter(shipped, tmp_path):
    model, metadata = shipped
    _write_set(tmp_path / "toy")
    real_set = RealSet("toy", "toy", SurveyAdapter(start_column="disc_mjd", binning="night"), "test set")
    result = score_real_set(model, metadata, real_set, tmp_path)
    # the two VS whose curves end before discovery are dropped and named
    assert result["class_counts"] == {"VS": 10, "SN": 12, "AGN": 0}
    assert result["dropped_by_adapter"] == {"VS": 2}
    assert result["classes_present"] == ["VS", "SN"] and result["auc_kind"].startswith("binary")
    # from disc_mjd, one point per night: 7 nights are left of each curve (10 nights, start at the 4th)
    assert result["median_detections"] == 7
    # every curve has fewer than 30 points: the AUC from 30 equals the AUC from all of them
    assert result["auc_by_n_obs"]["30"] == pytest.approx(result["auc"])
    assert np.isnan(result["recall"]["AGN"]) and result["objects"] == "every object"


def test_a_set_the_model_trained_on_is_scored_on_its_held_out_part(shipped, tmp_path):
    model, metadata = shipped
    objects = _write_set(tmp_path / "toy")
    rule = split_rule(seed=3, test_fraction=0.3, validation_fraction=0.15)
    trained_on = metadata.model_copy(
        update={"training": {**metadata.training, "real_sets": [{"name": "toy", "split": rule}]}}
    )
    real_set = RealSet("toy", "toy", SurveyAdapter(), "test set")
    result = score_real_set(model, trained_on, real_set, tmp_path)
    parts = real_split(objects["object_id"], objects["label"], set_name="toy", seed=3)
    expected = objects.loc[parts == "test", "label"].value_counts().to_dict()
    assert result["objects"].startswith("held-out test part") and result["split_rule"] == rule
    assert result["class_counts"] == {"VS": expected["VS"], "SN": expected["SN"], "AGN": 0}
    assert result["n_objects"] == 8  # ceil(0.3 * 12) per class


def test_real_split_is_per_class_by_id_and_disjoint():
    ids = [f"o{i}" for i in range(40)]
    labels = ["VS"] * 30 + ["SN"] * 4 + ["AGN"] * 6
    parts = real_split(ids, labels, set_name="s", seed=1)
    for label, n in (("VS", 30), ("SN", 4), ("AGN", 6)):
        mine = parts[np.asarray(labels) == label]
        assert (mine == "test").sum() == int(np.ceil(0.3 * n))
        assert (mine == "validation").sum() == round(0.15 * n)
    # the same ids in another order keep their parts; another seed moves some
    shuffled = np.random.default_rng(0).permutation(40)
    again = real_split(np.asarray(ids)[shuffled], np.asarray(labels)[shuffled], set_name="s", seed=1)
    assert (again == parts[shuffled]).all()
    assert (real_split(ids, labels, set_name="s", seed=2) != parts).any()
