"""Training beyond the simulated sky (trainer.mixed): real sets, augmented copies, unknown hosts.

Every object stays in one split only (a copy goes with its parent into training), the test part of a
real set is never trained or validated on, the simulated test split is unchanged, and a model trained
this way records it in its metadata so that the real-data benchmark scores only the held-out part.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lightcurve.cli import main
from lightcurve.preprocessing import context_matrix
from trainer.augment import AugmentOptions
from trainer.data import CLASS_NAMES, load_tables
from trainer.dataset import DataOptions, prepare_training_data
from trainer.mixed import MixOptions, _hide_hosts, with_training_extras
from trainer.real_benchmark import score_model_on_real_sets
from trainer.real_sets import real_split

from .test_real_benchmark import _write_set

pytestmark = pytest.mark.slow
SEED = 11


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(out), "--n-objects", "2000", "--seed", "3"]) == 0
    return out


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy stand-in for real_dev/mantra_crts (VS and SN with a disc_mjd column)."""
    root = tmp_path_factory.mktemp("real")
    _write_set(root / "real_dev" / "mantra_crts", n_per_class=20)
    return root


def _parents(ids: np.ndarray) -> set[str]:
    return {str(i).split("~")[0] for i in ids}


def test_every_object_in_one_split_and_real_test_parts_kept_out(sim_dir, real_root):
    tables = load_tables(sim_dir)
    plain = prepare_training_data(tables, DataOptions(seed=SEED), CLASS_NAMES)
    options = MixOptions(
        real_sets=("mantra_crts",), real_data_root=str(real_root), real_copies=2,
        augment=AugmentOptions(copies=1), host_unknown_fraction=0.5,
    )
    mixed = with_training_extras(plain, tables, options, seed=SEED)
    train, val, test = (mixed.part(n) for n in ("train", "validation", "test"))
    # the simulated test split is the paper's, untouched
    assert test.object_ids.tolist() == plain.part("test").object_ids.tolist()
    np.testing.assert_array_equal(test.context, plain.part("test").context)
    # no object, nor a copy of it, in two splits
    assert not _parents(train.object_ids) & _parents(val.object_ids)
    assert not (_parents(train.object_ids) | _parents(val.object_ids)) & _parents(test.object_ids)
    # copies only in training; validation holds the real validation part as observed
    assert not any("~" in str(i) for i in val.object_ids)
    assert sum("~a" in str(i) for i in train.object_ids) > len(plain.part("train"))
    # the real set's held-out test part is in neither training nor validation
    objects = load_tables(real_root / "real_dev" / "mantra_crts").objects
    objects = objects[~objects["object_id"].isin(["VS_00", "VS_01"])]  # dropped by the adapter
    parts = real_split(objects["object_id"], objects["label"], set_name="mantra_crts", seed=SEED)
    held_out = set(objects["object_id"][parts == "test"])
    assert held_out and not held_out & (_parents(train.object_ids) | _parents(val.object_ids))
    assert set(objects["object_id"][parts == "validation"]) <= set(val.object_ids)
    # about half the simulated training objects with a host lost it (the "no match" value); validation
    # and test kept theirs
    no_match = context_matrix([0.0], [0.0], [float("nan")], plain.context_spec)[0, 2]
    before = plain.inputs.context[plain.split.train, 2]
    after = mixed.inputs.context[mixed.split.train, 2]
    changed = before != after
    assert (after[changed] == no_match).all()
    assert changed.any()
    np.testing.assert_array_equal(
        mixed.inputs.context[mixed.split.validation], plain.inputs.context[plain.split.validation]
    )
    # the share is as asked: on 4,000 objects that all had a host, half of them
    many = plain.part("test").subset(np.zeros(4000, dtype=np.intp))
    many = dataclasses.replace(many, context=np.zeros((4000, 3), dtype=np.float32))
    hidden = _hide_hosts(many, plain, 0.5, seed=SEED).context[:, 2] == no_match
    assert 0.47 < hidden.mean() < 0.53
    record = mixed.provenance["training_extras"]
    assert record["real_sets"][0]["class_counts"]["test"] == {"VS": 6, "SN": 6, "AGN": 0}


def test_a_model_trained_with_extras_records_them_and_is_benchmarked_on_the_held_out_part(
    sim_dir, real_root, tmp_path
):
    out = tmp_path / "model"
    code = main([
        "train", "--data", str(sim_dir), "--out", str(out), "--work-dir", str(tmp_path / "work"),
        "--fast", "--epochs", "1", "--tsne-points", "0", "--seed", str(SEED),
        "--real-sets", "mantra_crts", "--real-data-root", str(real_root), "--augment-copies", "1",
        "--host-unknown-fraction", "0.2",
    ])
    assert code == 0
    training = json.loads((out / "metadata.json").read_text())["training"]
    assert [s["name"] for s in training["real_sets"]] == ["mantra_crts"]
    assert training["augment"]["copies"] == 1 and training["host_unknown_fraction"] == 0.2
    departures = " ".join(training["departures_from_paper"])
    assert "real set mantra_crts" in departures and "augmented copies" in departures
    result = score_model_on_real_sets(out, real_root, ["mantra_crts"])
    (scored,) = result["sets"]
    assert scored["objects"].startswith("held-out test part")
    assert scored["class_counts"] == training["real_sets"][0]["class_counts"]["test"]
