"""Augmented copies (trainer.augment): reproducible by seed, perturbations as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainer.augment import AugmentOptions, augmented_copies
from trainer.data import SurveyTables


def _tables(n_objects: int = 40, n_det: int = 25) -> SurveyTables:
    rows = []
    for i in range(n_objects):
        for j in range(n_det):
            rows.append({"object_id": f"o{i:03d}", "mjd": 58000.0 + 3 * j, "mag": 18.0 + 0.01 * j,
                         "mag_err": 0.05, "filter": "L", "detection_id": f"d{j}"})
    objects = pd.DataFrame({"object_id": [f"o{i:03d}" for i in range(n_objects)], "ra": 1.0, "dec": 2.0,
                            "label": ["VS", "SN"] * (n_objects // 2)})
    return SurveyTables(detections=pd.DataFrame(rows), objects=objects, galaxies=None)


def test_same_seed_same_copies_other_seed_other_copies():
    t = _tables()
    opts = AugmentOptions(copies=2)
    a = augmented_copies(t, t.objects["object_id"], opts, seed=4)
    b = augmented_copies(t, t.objects["object_id"], opts, seed=4)
    c = augmented_copies(t, t.objects["object_id"], opts, seed=5)
    pd.testing.assert_frame_equal(a.detections, b.detections)
    assert not a.detections["mag"].equals(c.detections["mag"])


def test_copies_are_thinned_truncated_shifted_and_keep_their_label():
    t = _tables()
    out = augmented_copies(t, t.objects["object_id"], AugmentOptions(copies=3), seed=1)
    assert len(out.objects) == 3 * 40
    assert set(out.objects["object_id"]) == {f"o{i:03d}~a{k}" for i in range(40) for k in range(3)}
    parent = out.objects["object_id"].str.split("~").str[0]
    labels = dict(zip(t.objects["object_id"], t.objects["label"], strict=True))
    assert (out.objects["label"] == parent.map(labels)).all()
    per_copy = out.detections.groupby("object_id").size()
    assert per_copy.min() >= 1 and per_copy.max() <= 25
    # about half the copies are cut to an early prefix of at most 25 points, the rest only thinned
    # (each detection dropped with probability U(0, 0.5): 25 * 0.75 kept on average)
    assert 0.7 * 25 * 0.75 * 0.5 < per_copy.mean() < 25
    # one zero-point shift per copy: mag minus the parent's mag at the same time is constant per copy
    merged = out.detections.assign(parent=lambda d: d["object_id"].str.split("~").str[0]).merge(
        t.detections, left_on=["parent", "mjd"], right_on=["object_id", "mjd"], suffixes=("", "_orig")
    )
    shift = (merged["mag"] - merged["mag_orig"]).groupby(merged["object_id"])
    assert (shift.max() - shift.min()).max() < 1e-9
    assert 0.05 < shift.first().std() < 0.3  # zero_point_sigma 0.15
    scale = (merged["mag_err"] / merged["mag_err_orig"]).groupby(merged["object_id"]).first()
    assert scale.min() > 0 and 0.1 < np.log(scale).std() < 0.45  # error_scale_sigma 0.25
    # every copy's detections are its parent's, in time order
    assert merged.groupby("object_id")["mjd"].apply(lambda s: s.is_monotonic_increasing).all()


def test_no_copies_and_bad_options():
    t = _tables(4)
    assert len(augmented_copies(t, t.objects["object_id"], AugmentOptions(), seed=0).objects) == 0
    with pytest.raises(ValueError, match="thin_max"):
        AugmentOptions(thin_max=1.0)
    with pytest.raises(ValueError, match="copies"):
        AugmentOptions(copies=-1)
