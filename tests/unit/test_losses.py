"""Paper eqs. 2-5: focal loss, its reductions to (weighted) cross-entropy, and the class weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from trainer.losses import WeightedFocalLoss, class_weights, make_loss

Y = np.array([0, 1, 2, 0, 1])
P = np.array(
    [[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.25, 0.25, 0.5], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8]],
    dtype=np.float32,
)


def _loss(loss: keras.losses.Loss) -> float:
    return float(loss(Y, P))


def test_gamma0_alpha1_equals_keras_cross_entropy():
    ours = _loss(WeightedFocalLoss(alpha=(1.0, 1.0, 1.0), gamma=0.0))
    reference = float(keras.losses.SparseCategoricalCrossentropy()(Y, P))
    assert ours == pytest.approx(reference, rel=1e-5)
    assert ours == pytest.approx(-np.mean(np.log(P[np.arange(5), Y])), rel=1e-5)


def test_focal_matches_hand_computation():
    alpha, gamma = np.array([0.5, 2.0, 3.0]), 2.0
    p_true = P[np.arange(len(Y)), Y].astype(np.float64)
    expected = np.mean(-alpha[Y] * (1.0 - p_true) ** gamma * np.log(p_true))
    assert _loss(WeightedFocalLoss(alpha=alpha, gamma=gamma)) == pytest.approx(expected, rel=1e-5)
    # The modulating factor down-weights well-classified examples: focal < weighted CE here.
    assert _loss(WeightedFocalLoss(alpha=alpha, gamma=gamma)) < _loss(
        WeightedFocalLoss(alpha=alpha, gamma=0.0)
    )


def test_weighted_ce_equals_sample_weighted_ce():
    alpha = np.array([0.5, 2.0, 3.0])
    reference = float(keras.losses.SparseCategoricalCrossentropy()(Y, P, sample_weight=alpha[Y]))
    assert _loss(make_loss("wce", alpha)) == pytest.approx(reference, rel=1e-5)


def test_make_loss_kinds_set_alpha_and_gamma():
    alpha = [0.4, 10.0, 5.0]
    ce, wce, focal = make_loss("ce", alpha), make_loss("wce", alpha), make_loss("focal", alpha, gamma=1.0)
    assert ce.alpha == (1.0, 1.0, 1.0) and ce.gamma == 0.0
    assert wce.alpha == tuple(alpha) and wce.gamma == 0.0
    assert focal.alpha == tuple(alpha) and focal.gamma == 1.0
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("hinge", alpha)


def test_one_hot_shape_labels_are_accepted():
    # Keras may hand labels as (batch, 1); the loss must not broadcast them against the classes.
    loss = WeightedFocalLoss(alpha=(1.0, 2.0, 3.0), gamma=1.0)
    assert float(loss(Y.reshape(-1, 1), P)) == pytest.approx(float(loss(Y, P)), rel=1e-6)


def test_loss_is_keras_serialisable():
    loss = make_loss("focal", [0.4, 10.0, 5.0], gamma=2.0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, WeightedFocalLoss)
    assert restored.alpha == loss.alpha and restored.gamma == loss.gamma
    assert float(restored(Y, P)) == pytest.approx(float(loss(Y, P)))


def test_class_weights_formula():
    labels = [0] * 6 + [1] * 3 + [2] * 1
    np.testing.assert_allclose(class_weights(labels, 3), [10 / 18, 10 / 9, 10 / 3])
    # Weighted class totals are equal: every class contributes N / n to the loss.
    np.testing.assert_allclose(class_weights(labels, 3) * [6, 3, 1], [10 / 3] * 3)


def test_class_weights_reject_missing_class_and_bad_labels():
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        class_weights([0, 1, 1], 3)
    with pytest.raises(ValueError, match="class indices"):
        class_weights([0, 1, 3], 3)


def test_invalid_parameters_rejected():
    with pytest.raises(ValueError, match="gamma"):
        WeightedFocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        WeightedFocalLoss(alpha=(1.0, 0.0, 1.0))
