from __future__ import annotations

import numpy as np
import pytest

from lightcurve.metadata import ContextSpec, FeatureStats, SequenceSpec
from lightcurve.preprocessing import (
    context_matrix,
    context_vector,
    limit_observations,
    sequence_input,
    sequence_input_from_detections,
    step_matrix,
    step_vector,
)
from lightcurve.types import Detection

SPEC = SequenceSpec()
NORM_SPEC = SequenceSpec(normalisation=FeatureStats(mean=(50.0, 18.0, 0.1), std=(80.0, 1.5, 0.05)))


def test_unsorted_input_is_sorted_and_times_start_at_zero():
    x = sequence_input([58612.0, 58605.0, 58608.5], [17.9, 18.4, 18.0], [0.05, 0.07, 0.06], SPEC)
    assert x.n_valid == 3
    assert x.t_first == 58605.0
    np.testing.assert_allclose(x.values[:3, 0], [0.0, 3.5, 7.0])
    np.testing.assert_allclose(x.values[:3, 1], [18.4, 18.0, 17.9], rtol=1e-6)
    assert np.all(x.values[3:] == SPEC.mask_value)


def test_duplicate_detection_ids_are_dropped():
    x = sequence_input([50001.0, 50002.0, 50001.0], [18, 19, 17], [0.1, 0.1, 0.1], SPEC, ["a", "b", "a"])
    assert x.n_valid == 2
    np.testing.assert_allclose(x.values[:2, 1], [18.0, 19.0])


def test_more_than_n_steps_keeps_the_first_in_time():
    n = 45
    mjd = 58000.0 + np.arange(n)[::-1]
    x = sequence_input(mjd, np.linspace(15, 19, n), np.full(n, 0.05), SPEC)
    assert x.values.shape == (30, 3)
    assert x.n_valid == 30
    np.testing.assert_allclose(x.values[:, 0], np.arange(30))
    assert x.t_first == 58000.0


def test_single_point_is_one_step_then_padding():
    x = sequence_input([58605.0], [18.4], [0.07], SPEC)
    assert x.n_valid == 1
    np.testing.assert_allclose(x.values[0], [0.0, 18.4, 0.07], rtol=1e-6)
    assert np.all(x.values[1:] == SPEC.mask_value)


def test_empty_light_curve_is_rejected():
    with pytest.raises(ValueError, match="mjd"):
        sequence_input([], [], [], SPEC)


@pytest.mark.parametrize("spec", [SPEC, NORM_SPEC], ids=["raw", "normalised"])
def test_step_form_equals_batch_form(spec):
    rng = np.random.default_rng(1)
    mjd = 58000 + np.sort(rng.uniform(0, 400, 40))
    mag = rng.uniform(12, 20.5, 40)
    err = rng.uniform(0.01, 0.3, 40)
    batch = sequence_input(mjd, mag, err, spec)
    steps = np.stack([step_vector(mjd[k], mag[k], err[k], mjd[0], spec) for k in range(spec.n_steps)])
    np.testing.assert_array_equal(steps, batch.values)
    # the many-objects form: 30 "objects", each at its own step, equals the same rows
    n = spec.n_steps
    many = step_matrix(mjd[:n], mag[:n], err[:n], np.full(n, mjd[0]), spec)
    np.testing.assert_array_equal(many, batch.values)


def test_normalisation_is_applied_to_real_steps_only():
    x = sequence_input([58605.0, 58655.0], [18.0, 19.5], [0.1, 0.15], NORM_SPEC)
    np.testing.assert_allclose(x.values[1], [0.0, 1.0, 1.0], atol=1e-6)
    assert np.all(x.values[2:] == NORM_SPEC.mask_value)


def test_a_real_step_that_looks_padded_is_refused():
    spec = SequenceSpec(mask_value=0.0)
    with pytest.raises(ValueError, match="mask value"):
        step_vector(58605.0, 0.0, 0.0, 58605.0, spec)


def test_detections_form_matches_array_form():
    dets = [
        Detection(object_id="o", detection_id=f"d{i}", mjd=58600.0 + 3 * ((7 * i) % 11), mag=18 + i / 10,
                  mag_err=0.05)
        for i in range(11)
    ]
    a = sequence_input_from_detections(dets, SPEC)
    b = sequence_input([d.mjd for d in dets], [d.mag for d in dets], [d.mag_err for d in dets], SPEC,
                       [d.key for d in dets])
    np.testing.assert_array_equal(a.values, b.values)


def test_limit_observations_masks_later_steps():
    x = sequence_input(58000 + np.arange(10.0), np.full(10, 18.0), np.full(10, 0.1), SPEC).values
    y = limit_observations(x[None], 6, SPEC.mask_value)[0]
    np.testing.assert_array_equal(y[:6], x[:6])
    assert np.all(y[6:] == SPEC.mask_value)


def test_context_dummy_beyond_60_arcsec_and_for_no_match():
    spec = ContextSpec(dummy_host_sep_arcsec=100.0)
    out = context_matrix([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], [59.9, 60.0, 60.1, np.nan], spec)
    np.testing.assert_allclose(out[:, 2], [59.9, 60.0, 100.0, 100.0], rtol=1e-6)
    np.testing.assert_allclose(context_vector(1.0, 0.0, None, spec), [1.0, 0.0, 100.0])
