"""Post-hoc calibration: fitting lowers the log-loss, temperature keeps the argmax, ECE measures."""

from __future__ import annotations

import numpy as np
import pytest

from lightcurve.calibration import Calibration, apply_calibration
from lightcurve.metadata import ArtifactMetadata, LayerNames
from trainer.calibration import calibration_metrics, expected_calibration_error, fit_calibration, log_loss


def _overconfident(rng: np.random.Generator, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities q drawn per object, labels drawn from q, and a sharpened (T = 0.5) softmax."""
    q = rng.dirichlet([1.0, 1.0, 1.0], n)
    labels = np.array([rng.choice(3, p=row) for row in q])
    sharp = q**2 / np.sum(q**2, axis=1, keepdims=True)
    return labels, sharp


def _prior_shifted(rng: np.random.Generator, n: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """Labels 90 % class 0, and a model that believes the classes are balanced (class weights do this)."""
    q = rng.dirichlet([1.0, 1.0, 1.0], n)
    prior = np.array([0.9, 0.05, 0.05])
    true = q * prior / np.sum(q * prior, axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in true])
    return labels, q


def test_temperature_lowers_the_log_loss_and_keeps_every_argmax() -> None:
    labels, probs = _overconfident(np.random.default_rng(1))
    cal = fit_calibration(labels, probs, "temperature")
    calibrated = apply_calibration(probs, cal)
    assert cal.temperature == pytest.approx(2.0, rel=0.15)  # it undoes the squaring
    assert cal.log_loss_after < cal.log_loss_before - 0.02
    assert log_loss(labels, calibrated) == pytest.approx(cal.log_loss_after)
    assert np.array_equal(calibrated.argmax(axis=1), probs.argmax(axis=1))
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    before, after = (expected_calibration_error(labels, p) for p in (probs, calibrated))
    assert after["top_label"] < before["top_label"] / 2


def test_vector_scaling_undoes_a_prior_shift_that_temperature_cannot() -> None:
    labels, probs = _prior_shifted(np.random.default_rng(2))
    by_method = {m: fit_calibration(labels, probs, m) for m in ("temperature", "vector")}
    assert by_method["vector"].log_loss_after < by_method["temperature"].log_loss_after - 0.05
    ece = expected_calibration_error(labels, apply_calibration(probs, by_method["vector"]))
    assert max(ece.values()) < 0.03
    assert expected_calibration_error(labels, probs)["1"] > 0.1


def test_ece_is_small_for_calibrated_probabilities_and_counts_every_object() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([2.0, 2.0, 2.0], 20000)
    labels = np.array([rng.choice(3, p=row) for row in probs])
    metrics = calibration_metrics(labels, probs, ("VS", "SN", "AGN"))
    assert max(metrics["ece"].values()) < 0.02
    assert sum(metrics["reliability"]["SN"]["counts"]) == 20000
    assert set(metrics["ece"]) == {"VS", "SN", "AGN", "top_label"}


def test_no_calibration_is_the_identity_and_metadata_carries_a_fitted_map() -> None:
    probs = np.array([[0.5, 0.3, 0.2]])
    assert np.array_equal(apply_calibration(probs, None), probs)
    cal = Calibration(method="vector", scale=(1.0, 2.0, 0.5), bias=(0.1, -0.2, 0.1), fitted_on="validation")
    meta = ArtifactMetadata(
        model_version="m",
        created_at="now",
        rnn_type="gru",
        layers=LayerNames(rnn=("rnn_1", "rnn_2"), rnn_batchnorm=("bn_rnn_1", "bn_rnn_2")),
        calibration=cal,
    )
    again = ArtifactMetadata.model_validate_json(meta.to_json())
    assert again.calibration == cal
    assert np.allclose(apply_calibration(probs, again.calibration), apply_calibration(probs, cal))
    with pytest.raises(ValueError, match="scale and bias"):
        Calibration(method="vector", scale=(1.0,), bias=None)
    with pytest.raises(ValueError, match="no scale or bias"):
        Calibration(method="temperature", temperature=1.2, scale=(1.0, 1.0, 1.0), bias=(0.0, 0.0, 0.0))
