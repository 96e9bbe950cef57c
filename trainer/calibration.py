"""Fitting a calibration map on the validation split, and measuring calibration (an option beyond
the paper; the map itself and its application live in :mod:`lightcurve.calibration`).

Both maps minimise the validation log-loss (the mean negative log-likelihood of the true class).
Expected calibration error (ECE) is measured per class, one against the rest: objects are binned by
``p_j`` into ``n_bins`` equal-width bins and ECE_j is the object-weighted mean over bins of
``|mean p_j - fraction of class j|``; the top-label ECE does the same with the largest probability
against the fraction of objects whose argmax is right (Guo et al. 2017).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lightcurve.calibration import Calibration, apply_calibration, calibrated_log_inputs

__all__ = [
    "calibrate_on_validation",
    "calibration_metrics",
    "expected_calibration_error",
    "fit_calibration",
    "log_loss",
    "reliability",
]

#: Equal-width probability bins of the reliability diagrams and ECE.
N_BINS = 15


def log_loss(labels: ArrayLike, probs: ArrayLike) -> float:
    """Mean negative log-probability of the true class."""
    y = np.asarray(labels, dtype=np.int64)
    z = calibrated_log_inputs(probs)
    return float(-np.mean(z[np.arange(y.size), y])) if y.size else float("nan")


def _log_softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_calibration(
    labels: ArrayLike,
    probs: ArrayLike,
    method: Literal["temperature", "vector"] = "temperature",
    fitted_on: str = "validation split",
) -> Calibration:
    """The ``method`` map that minimises the log-loss of ``probs`` against ``labels``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 2000)
    >>> sharp = np.full((2000, 3), 0.01); sharp[np.arange(2000), y] = 0.98
    >>> sharp[:600] = np.roll(sharp[:600], 1, axis=1)   # 30 % confidently wrong: overconfident
    >>> cal = fit_calibration(y, sharp)
    >>> bool(cal.temperature > 1 and cal.log_loss_after < cal.log_loss_before)
    True
    """
    from scipy.optimize import minimize, minimize_scalar

    y = np.asarray(labels, dtype=np.int64)
    z = calibrated_log_inputs(probs)
    rows = np.arange(y.size)
    before = log_loss(y, probs)

    def nll(zz: NDArray[np.float64]) -> float:
        return float(-np.mean(_log_softmax(zz)[rows, y]))

    if method == "temperature":
        # on log T, bounded: T in [e^-4, e^4] covers any sane softmax
        res = minimize_scalar(lambda lt: nll(z / np.exp(lt)), bounds=(-4.0, 4.0), method="bounded")
        cal = Calibration(method="temperature", temperature=float(np.exp(res.x)))
    else:
        k = z.shape[1]

        def objective(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            a, b = theta[:k], theta[k:]
            logp = _log_softmax(z * a + b)
            p = np.exp(logp)
            onehot = np.zeros_like(p)
            onehot[rows, y] = 1.0
            g = (p - onehot) / y.size  # d nll / d (z*a + b)
            return float(-np.mean(logp[rows, y])), np.concatenate([(g * z).sum(0), g.sum(0)])

        res = minimize(objective, np.concatenate([np.ones(k), np.zeros(k)]), jac=True, method="L-BFGS-B")
        cal = Calibration(
            method="vector",
            scale=tuple(float(v) for v in res.x[:k]),
            bias=tuple(float(v) for v in res.x[k:] - res.x[k:].mean()),  # softmax ignores a common shift
        )
    after = log_loss(y, apply_calibration(probs, cal))
    return cal.model_copy(
        update={
            "fitted_on": fitted_on,
            "n_objects": int(y.size),
            "log_loss_before": before,
            "log_loss_after": after,
        }
    )


def reliability(predicted: ArrayLike, outcome: ArrayLike, n_bins: int = N_BINS) -> dict[str, Any]:
    """Per equal-width bin of ``predicted``: objects, mean prediction, observed fraction; and the ECE."""
    p = np.asarray(predicted, dtype=np.float64)
    hit = np.asarray(outcome, dtype=np.float64)
    which = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    sum_p = np.bincount(which, weights=p, minlength=n_bins)
    sum_hit = np.bincount(which, weights=hit, minlength=n_bins)
    filled = counts > 0
    mean_p = np.divide(sum_p, counts, out=np.full(n_bins, np.nan), where=filled)
    observed = np.divide(sum_hit, counts, out=np.full(n_bins, np.nan), where=filled)
    ece = (
        float(np.sum(np.abs(mean_p - observed)[filled] * counts[filled]) / p.size) if p.size else float("nan")
    )
    return {
        "ece": ece,
        "bin_edges": np.linspace(0, 1, n_bins + 1).round(6).tolist(),
        "counts": counts.astype(int).tolist(),
        "mean_predicted": [None if not f else float(v) for v, f in zip(mean_p, filled, strict=True)],
        "observed": [None if not f else float(v) for v, f in zip(observed, filled, strict=True)],
    }


def expected_calibration_error(labels: ArrayLike, probs: ArrayLike, n_bins: int = N_BINS) -> dict[str, float]:
    """ECE of each class (one against the rest) and the top-label ECE, by class index name."""
    return {k: v["ece"] for k, v in _diagrams(labels, probs, n_bins).items()}


def _diagrams(labels: ArrayLike, probs: ArrayLike, n_bins: int) -> dict[str, dict[str, Any]]:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    out = {str(j): reliability(p[:, j], y == j, n_bins) for j in range(p.shape[1])}
    out["top_label"] = reliability(p.max(axis=1), p.argmax(axis=1) == y, n_bins)
    return out


def calibration_metrics(
    labels: ArrayLike, probs: ArrayLike, class_names: list[str] | tuple[str, ...], n_bins: int = N_BINS
) -> dict[str, Any]:
    """Reliability diagrams and ECE per class (by name) and top-label, plus the log-loss."""
    diagrams = _diagrams(labels, probs, n_bins)
    named = {("top_label" if k == "top_label" else class_names[int(k)]): v for k, v in diagrams.items()}
    return {
        "n_bins": n_bins,
        "log_loss": log_loss(labels, probs),
        "ece": {k: v["ece"] for k, v in named.items()},
        "reliability": named,
    }


def calibrate_on_validation(
    model: Any, data: Any, use_context: bool, method: Literal["temperature", "vector", "none"]
) -> Calibration | None:
    """Fit ``method`` on the raw probabilities of ``data``'s own validation split (a
    :class:`trainer.dataset.PreparedData`; extras such as real sets left out, so that ``calibrate``
    on an exported model finds the same objects from ``split.json``). ``none``: no calibration."""
    from trainer.evaluation import predict_proba

    if method == "none":
        return None
    validation = data.inputs.subset(data.split.indices("validation"))
    if len(validation) == 0:
        raise ValueError("calibration needs a validation split with objects")
    probs = predict_proba(model, validation, use_context)
    return fit_calibration(
        validation.labels,
        probs,
        method,
        fitted_on=f"validation split of the training data ({len(validation)} objects)",
    )
