"""Post-hoc calibration of the classifier's probabilities, applied identically by trainer and service.

The network is trained with class weights (the paper's alpha_j) and a focal loss: both move its
softmax away from the frequencies a survey sees, so "0.8 SN" need not be right 80 % of the time. A
calibration fitted on the validation split after training (``trainer.calibration``) maps the
network's probabilities ``p`` to calibrated ones; it is stored in ``metadata.json`` and this module is
the one implementation of applying it:

- ``temperature`` (Guo et al. 2017): ``softmax(log p / T)``. Since ``log p`` is the logits minus a
  per-object constant, this equals ``softmax(z / T)`` of the logits ``z``; one parameter, and the
  argmax never changes.
- ``vector``: ``softmax(a * log p + b)`` with one scale ``a_j`` and one bias ``b_j`` per class (the
  diagonal form of Kull et al. 2019's Dirichlet calibration). The biases can undo the shift of class
  priors that the class weights cause; the argmax can change.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Calibration", "apply_calibration", "calibrated_log_inputs"]

#: Probabilities are clipped here before the logarithm (a softmax output can underflow to 0).
LOG_FLOOR = 1e-12


class Calibration(BaseModel):
    """A fitted calibration map (see the module docstring) and what it was fitted on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["temperature", "vector"]
    temperature: float = Field(1.0, gt=0)
    #: ``vector`` only: per-class scale and bias on log-probabilities, in class order.
    scale: tuple[float, ...] | None = None
    bias: tuple[float, ...] | None = None
    #: Which objects it was fitted on, and the validation log-loss before and after.
    fitted_on: str = ""
    n_objects: int = Field(0, ge=0)
    log_loss_before: float | None = None
    log_loss_after: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Calibration:
        if self.method == "vector":
            if self.scale is None or self.bias is None or len(self.scale) != len(self.bias):
                raise ValueError("vector calibration needs scale and bias of one entry per class")
        elif self.scale is not None or self.bias is not None:
            raise ValueError("temperature calibration takes no scale or bias")
        return self


def calibrated_log_inputs(probs: ArrayLike) -> NDArray[np.float64]:
    """``log p`` with the floor applied: the input of every calibration map."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), LOG_FLOOR, 1.0))


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def apply_calibration(probs: ArrayLike, calibration: Calibration | None) -> NDArray[np.float64]:
    """Calibrated probabilities of ``probs`` (``(N, n_classes)`` or ``(n_classes,)``); ``None``: as is.

    Examples
    --------
    >>> p = np.array([[0.7, 0.2, 0.1]])
    >>> apply_calibration(p, Calibration(method="temperature", temperature=1.0)).round(6).tolist()
    [[0.7, 0.2, 0.1]]
    >>> hot = apply_calibration(p, Calibration(method="temperature", temperature=2.0))
    >>> bool(hot[0, 0] < 0.7 and hot.argmax() == 0)
    True
    """
    p = np.asarray(probs, dtype=np.float64)
    if calibration is None:
        return p
    z = calibrated_log_inputs(p)
    if calibration.method == "temperature":
        z = z / calibration.temperature
    else:
        z = z * np.asarray(calibration.scale) + np.asarray(calibration.bias)
    return _softmax(z)
