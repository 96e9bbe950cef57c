"""Loss functions of the paper (Burhanudin et al. 2021, section 3.3, eqs. 2-5).

One implementation covers all three: the weighted focal loss (eq. 4)

    FL_i = - sum_j delta_ij alpha_j (1 - p_ij)^gamma log(p_ij)

is the weighted cross-entropy when ``gamma = 0`` and the plain cross-entropy (eq. 2) when also every
``alpha_j = 1``. Labels are integer class indices (the Kronecker delta is taken inside the loss).

The loss is a registered Keras serialisable class, so a compiled model (the training checkpoint)
reloads with ``import trainer.losses``; the service loads ``model.keras`` with ``compile=False`` and
needs no loss at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike, NDArray

__all__ = ["LOSS_KINDS", "WeightedFocalLoss", "class_weights", "make_loss"]

LossKind = Literal["ce", "wce", "focal"]
LOSS_KINDS: tuple[str, ...] = ("ce", "wce", "focal")
#: Probabilities are clipped to [EPSILON, 1 - EPSILON] so that log(p) stays finite.
EPSILON = 1e-7


def class_weights(labels: ArrayLike, n_classes: int) -> NDArray[np.float64]:
    """Paper eq. 5: ``alpha_j = N / (n * N_j)`` from the training labels.

    Parameters
    ----------
    labels
        Integer class index of every training example.
    n_classes
        Number of classes ``n``; every class must occur at least once.

    Returns
    -------
    numpy.ndarray
        ``(n_classes,)`` weights; a balanced set gives all ones.

    Examples
    --------
    >>> class_weights([0, 0, 0, 0, 1, 2], 3).tolist()
    [0.5, 2.0, 2.0]
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    if y.size == 0:
        raise ValueError("labels: no training examples to compute class weights from")
    if np.any((y < 0) | (y >= n_classes)):
        raise ValueError(f"labels: class indices must lie in [0, {n_classes - 1}]")
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"labels: classes {missing} have no training examples; cannot weight them")
    return y.size / (n_classes * counts)


@keras.saving.register_keras_serializable(package="goto_classifier")
class WeightedFocalLoss(keras.losses.Loss):
    """Weighted focal loss (paper eq. 4) over integer labels and softmax probabilities.

    Parameters
    ----------
    alpha
        Per-class weights ``alpha_j`` (eq. 5); ones give the unweighted loss.
    gamma
        Focusing parameter; 0 gives the (weighted) cross-entropy.
    """

    def __init__(
        self,
        alpha: Sequence[float] = (1.0, 1.0, 1.0),
        gamma: float = 0.0,
        name: str = "weighted_focal_loss",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if gamma < 0:
            raise ValueError("gamma must be >= 0")
        if len(alpha) == 0 or any(not a > 0 for a in alpha):
            raise ValueError("alpha must be a non-empty sequence of positive weights")
        self.alpha = tuple(float(a) for a in alpha)
        self.gamma = float(gamma)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        n_classes = len(self.alpha)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        onehot = ops.one_hot(labels, n_classes, dtype=y_pred.dtype)
        p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        alpha = ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype)
        per_class = -onehot * alpha * ops.power(1.0 - p, self.gamma) * ops.log(p)
        return ops.sum(per_class, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"alpha": list(self.alpha), "gamma": self.gamma})
        return config


def make_loss(kind: str, alpha: Sequence[float], gamma: float = 2.0) -> WeightedFocalLoss:
    """The paper's three losses: ``ce`` (eq. 2), ``wce`` (eq. 4 with gamma 0), ``focal`` (eq. 4).

    ``alpha`` is used by ``wce`` and ``focal`` only; ``gamma`` by ``focal`` only.
    """
    if kind == "ce":
        return WeightedFocalLoss(alpha=[1.0] * len(alpha), gamma=0.0, name="cross_entropy")
    if kind == "wce":
        return WeightedFocalLoss(alpha=alpha, gamma=0.0, name="weighted_cross_entropy")
    if kind == "focal":
        return WeightedFocalLoss(alpha=alpha, gamma=gamma, name="weighted_focal_loss")
    raise ValueError(f"loss must be one of {LOSS_KINDS}, got {kind!r}")
