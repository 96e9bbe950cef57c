"""Evaluation on any labelled set: three classes, two, or a class without objects; findings by rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from trainer.auc import hand_till_auc
from trainer.evaluation import classification_metrics, rise_then_level

CLASSES = ("VS", "SN", "AGN")


def _scores(labels: np.ndarray, seed: int, signal: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(labels.size, 3))
    logits[np.arange(labels.size), labels] += signal
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def test_three_classes_auc_is_sklearn_hand_and_till() -> None:
    y = np.random.default_rng(0).integers(0, 3, 400)
    p = _scores(y, 1)
    m = classification_metrics(y, p, CLASSES)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovo", average="macro"), abs=1e-12)
    assert m["classes_present"] == list(CLASSES) and m["auc_kind"] == "Hand & Till over all pairs"
    for j, c in enumerate(CLASSES):
        assert m["auc_one_vs_rest"][c] == pytest.approx(roc_auc_score(y == j, p[:, j]))


def test_two_classes_give_the_pairs_auc_and_leave_the_absent_class_undefined() -> None:
    # A ZTF-like set: SNe and novae (VS), no AGN.
    y = np.array([1] * 150 + [0] * 12)
    p = _scores(y, 2)
    m = classification_metrics(y, p, CLASSES)
    pair = 0.5 * (roc_auc_score(y == 0, p[:, 0]) + roc_auc_score(y == 1, p[:, 1]))
    assert m["auc"] == pytest.approx(pair)
    assert m["classes_present"] == ["VS", "SN"] and m["auc_kind"].startswith("binary")
    assert m["class_counts"]["AGN"] == 0
    assert math.isnan(m["recall"]["AGN"]) and math.isnan(m["auc_one_vs_rest"]["AGN"])
    assert not math.isnan(m["recall"]["SN"]) and m["roc"]["AGN"]["fpr"] == []
    # Macro F1 over the classes present only: a perfect classifier scores 1, not 2/3.
    perfect = np.eye(3)[y]
    assert classification_metrics(y, perfect, CLASSES)["f1_macro"] == pytest.approx(1.0)


def test_one_class_leaves_the_auc_undefined_without_crashing() -> None:
    y = np.zeros(20, dtype=int)
    m = classification_metrics(y, _scores(y, 3), CLASSES)
    assert math.isnan(m["auc"]) and m["auc_kind"] == "undefined"
    assert math.isnan(hand_till_auc(y, _scores(y, 3)))


def test_precision_of_a_class_never_predicted_is_undefined_not_zero() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.2, 0.8, 0.0], [0.4, 0.6, 0.0],
                  [0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    m = classification_metrics(y, p, CLASSES, curves=False)
    assert math.isnan(m["precision"]["AGN"]) and m["recall"]["AGN"] == 0.0


@pytest.mark.parametrize(
    ("a1", "a10", "a30", "holds"),
    [
        (0.80, 0.95, 0.955, True),  # rises, then levels off
        (0.524, 0.545, 0.445, False),  # the shipped model on CRTS: a rise, then a fall of 0.1
        (0.90, 0.905, 0.905, False),  # flat: no rise of 0.01
        (0.80, 0.90, 0.95, False),  # still rising after 10
        (0.80, float("nan"), 0.90, None),  # undefined
    ],
)
def test_rise_then_level_rule(a1: float, a10: float, a30: float, holds: bool | None) -> None:
    curve = [{"n_obs": n, "auc": a1 if n < 10 else (a10 if n < 30 else a30)} for n in range(1, 31)]
    assert rise_then_level(curve)["holds"] is holds
