"""The AUC of the paper (Hand & Till 2001), over whichever classes a labelled set holds.

Hand & Till's multiclass AUC is the unweighted mean, over every pair of classes (i, j), of
``A(i, j) = (A(i|j) + A(j|i)) / 2``, where ``A(i|j)`` is the probability that an object of class i
gets a higher score ``p_i`` than an object of class j. With all three classes present it equals
scikit-learn's ``roc_auc_score(multi_class="ovo", average="macro")`` (the selection metric of the
paper and of this trainer). A real set often holds two classes (ZTF's bright transients: SNe and
novae); the mean then has one pair, the binary AUC of those two classes in Hand & Till's form. With
fewer than two classes present the AUC is undefined (NaN), never a number made up.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["classes_present", "hand_till_auc"]


def classes_present(labels: ArrayLike, n_classes: int) -> list[int]:
    """Class indices with at least one object."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    return [int(c) for c in np.flatnonzero(counts)]


def _a_given(scores_i: np.ndarray, scores_j: np.ndarray) -> float:
    """P(score of a class-i object > score of a class-j object), ties counting one half."""
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.ones(scores_i.size), np.zeros(scores_j.size)])
    return float(roc_auc_score(y, np.concatenate([scores_i, scores_j])))


def hand_till_auc(labels: ArrayLike, probs: ArrayLike) -> float:
    """Hand & Till (2001) AUC over the classes present in ``labels`` (NaN if fewer than two).

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1])
    >>> p = np.array([[.9, .1, 0], [.6, .4, 0], [.3, .7, 0], [.5, .5, 0]])
    >>> hand_till_auc(y, p)
    1.0
    >>> float(np.isnan(hand_till_auc([2, 2], p[:2])))
    1.0
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    present = classes_present(y, p.shape[1])
    if len(present) < 2:
        return float("nan")
    pairs = []
    for i, j in combinations(present, 2):
        in_i, in_j = y == i, y == j
        pairs.append(0.5 * (_a_given(p[in_i, i], p[in_j, i]) + _a_given(p[in_j, j], p[in_i, j])))
    return float(np.mean(pairs))
