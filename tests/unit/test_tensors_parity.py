"""Parity: the trainer's tensors for an object equal lightcurve's preprocessing of its detections.

The service builds inputs from validated ``Detection`` objects through
``sequence_input_from_detections`` (full recompute) and ``context_vector``; the trainer builds them
from tables. Both must give bit-identical arrays, with and without normalisation.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lightcurve.metadata import ContextSpec, FeatureStats, SequenceSpec
from lightcurve.preprocessing import context_vector, sequence_input_from_detections
from lightcurve.types import Detection, derive_detection_id
from trainer.tensors import build_inputs, fit_context_stats, fit_sequence_stats, label_indices

CLASSES = ("VS", "SN", "AGN")


def _tables() -> SimpleNamespace:
    rng = np.random.default_rng(5)
    rows = []
    # Unsorted, with a same-time pair (tie broken by detection id) and a replayed detection id.
    for i, (mjd, mag) in enumerate([(58610.2, 17.9), (58605.1, 18.4), (58605.1, 18.5), (58620.0, 18.0)]):
        rows.append(("GOTO_SN2019euw", f"d{i}", mjd, mag, 0.05 + 0.01 * i))
    rows.append(("GOTO_SN2019euw", "d0", 58610.2, 17.9, 0.05))
    # More than 30 detections, in reverse time order: only the first 30 in time are kept.
    for i in range(45):
        rows.append(("GOTO_IRAS18547+1254", f"e{i:02d}", 58700.0 - 3.0 * i, 13.0 + rng.normal(0, 0.1), 0.02))
    rows.append(("ZTF21abcdefg", "only", 59000.5, 19.7, 0.2))
    detections = pd.DataFrame(rows, columns=["object_id", "detection_id", "mjd", "mag", "mag_err"])
    detections["filter"] = "L"
    objects = pd.DataFrame(
        {
            "object_id": ["ZTF21abcdefg", "GOTO_SN2019euw", "GOTO_IRAS18547+1254"],
            "ra": [10.0, 288.51, 284.28],
            "dec": [20.0, -23.21, 12.98],
            "label": ["AGN", "SN", "VS"],
        }
    )
    context = pd.DataFrame(
        {
            "object_id": objects["object_id"],
            "gal_l_deg": [120.5, 10.2, 45.0],
            "gal_b_deg": [-42.0, -15.0, 4.5],
            "host_sep_arcsec": [12.0, np.nan, 75.0],
        }
    )
    return SimpleNamespace(detections=detections, objects=objects, context=context)


def _service_detections(tables: SimpleNamespace, object_id: str) -> list[Detection]:
    rows = tables.detections[tables.detections["object_id"] == object_id]
    # The service receives detections one by one in arrival order; shuffle to prove order is irrelevant.
    rows = rows.sample(frac=1.0, random_state=1)
    return [
        Detection(
            object_id=r.object_id,
            detection_id=r.detection_id,
            mjd=r.mjd,
            mag=r.mag,
            mag_err=r.mag_err,
            filter=r.filter,
        )
        for r in rows.itertuples()
    ]


NORMALISED = (
    SequenceSpec(normalisation=FeatureStats(mean=(40.0, 17.0, 0.08), std=(60.0, 1.7, 0.05))),
    ContextSpec(normalisation=FeatureStats(mean=(150.0, 20.0, 80.0), std=(100.0, 30.0, 25.0))),
)


@pytest.mark.parametrize("specs", [(SequenceSpec(), ContextSpec()), NORMALISED], ids=["raw", "normalised"])
def test_trainer_tensors_equal_lightcurve_preprocessing(specs):
    seq_spec, ctx_spec = specs
    tables = _tables()
    inputs = build_inputs(tables, tables.context, seq_spec, ctx_spec, CLASSES)
    assert inputs.series.shape == (3, 30, 3) and inputs.series.dtype == np.float32
    for row, oid in enumerate(tables.objects["object_id"]):
        expected = sequence_input_from_detections(_service_detections(tables, oid), seq_spec)
        np.testing.assert_array_equal(inputs.series[row], expected.values)
        assert inputs.n_valid[row] == expected.n_valid
        ctx = tables.context.iloc[row]
        sep = None if np.isnan(ctx.host_sep_arcsec) else float(ctx.host_sep_arcsec)
        np.testing.assert_array_equal(
            inputs.context[row], context_vector(ctx.gal_l_deg, ctx.gal_b_deg, sep, ctx_spec)
        )
    assert inputs.n_valid.tolist() == [1, 4, 30]  # replayed id dropped, 45 truncated to 30
    assert inputs.labels.tolist() == [2, 1, 0]


def test_tensors_use_derived_ids_when_the_table_has_none():
    tables = _tables()
    tables.detections = tables.detections[tables.detections["object_id"] != "GOTO_SN2019euw"].drop(
        columns="detection_id"
    )
    tables.objects = tables.objects[tables.objects["object_id"] != "GOTO_SN2019euw"].reset_index(drop=True)
    tables.context = tables.context[tables.context["object_id"] != "GOTO_SN2019euw"].reset_index(drop=True)
    inputs = build_inputs(tables, tables.context, SequenceSpec(), ContextSpec(), CLASSES)
    dets = [
        Detection(object_id=r.object_id, mjd=r.mjd, mag=r.mag, mag_err=r.mag_err)
        for r in tables.detections[tables.detections["object_id"] == "GOTO_IRAS18547+1254"].itertuples()
    ]
    assert dets[0].detection_id == derive_detection_id("GOTO_IRAS18547+1254", dets[0].mjd)
    np.testing.assert_array_equal(
        inputs.series[1], sequence_input_from_detections(dets, SequenceSpec()).values
    )


def test_normalisation_stats_use_real_steps_only():
    tables = _tables()
    raw = build_inputs(tables, tables.context, SequenceSpec(), ContextSpec(), CLASSES)
    stats = fit_sequence_stats(raw.series, raw.n_valid)
    real = np.concatenate([raw.series[i, : raw.n_valid[i]] for i in range(3)]).astype(np.float64)
    np.testing.assert_allclose(stats.mean, real.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, real.std(axis=0), rtol=1e-12)
    assert min(stats.mean) > -100  # the -999 padding never entered the statistics
    ctx_stats = fit_context_stats(raw.context)
    assert ctx_stats.mean[2] == pytest.approx((12.0 + 100.0 + 100.0) / 3)  # dummy 100" for NaN and >60"


def test_missing_detections_and_unknown_labels_are_named():
    tables = _tables()
    tables.detections = tables.detections[tables.detections["object_id"] != "ZTF21abcdefg"]
    with pytest.raises(ValueError, match=r"ZTF21abcdefg.*no detections"):
        build_inputs(tables, tables.context, SequenceSpec(), ContextSpec(), CLASSES)
    with pytest.raises(ValueError, match=r"row 1: 'QSO'"):
        label_indices(pd.Series(["VS", "QSO"]), CLASSES)
