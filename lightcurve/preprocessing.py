"""Model inputs from detections: the ONLY implementation, shared by trainer and service.

Paper section 2.3: per object, detections sorted by time, the first ``n_steps`` (30) kept, each step
``(t - t_first, mag, mag_err)``; shorter light curves are padded with a mask value that Keras'
``Masking`` layer skips. The context vector is ``(l, b, d_G)`` with ``d_G`` replaced by a dummy value
beyond 60 arcsec or without a catalogue match.

Two forms exist and are proven equal by the tests: the batch form (:func:`sequence_input`) used by
the trainer and by the service's full recompute, and the step form (:func:`step_vector`) used by the
service to advance a stored RNN state by one detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lightcurve.metadata import ContextSpec, FeatureStats, SequenceSpec
from lightcurve.types import Detection, order_detections

__all__ = [
    "SequenceInput",
    "context_matrix",
    "context_vector",
    "limit_observations",
    "order_arrays",
    "sequence_input",
    "sequence_input_from_detections",
    "step_matrix",
    "step_vector",
]

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class SequenceInput:
    """One object's time-series input: ``values`` is ``(n_steps, 3)`` float32, padded with the mask."""

    values: FloatArray
    n_valid: int
    t_first: float


def _normalise(raw: NDArray[np.float64], stats: FeatureStats | None) -> NDArray[np.float64]:
    if stats is None:
        return raw
    return (raw - np.asarray(stats.mean)) / np.asarray(stats.std)


def _check_not_mask(values: NDArray[np.float64], mask_value: float) -> None:
    # A real step whose every feature equals the mask value would be silently skipped by Masking.
    if values.size and np.any(np.all(values == mask_value, axis=-1)):
        raise ValueError("a real time step equals the mask value in every feature; choose another mask_value")


def order_arrays(
    mjd: ArrayLike, detection_ids: Sequence[str] | None = None
) -> NDArray[np.intp]:
    """Indices that put detections in model order: duplicates of a detection id dropped (first seen
    kept), then sorted by (mjd, detection_id). Without ids, a stable sort by mjd.

    Examples
    --------
    >>> order_arrays([3.0, 1.0, 2.0, 1.0], ["c", "a", "b", "a"]).tolist()
    [1, 2, 0]
    """
    t = np.asarray(mjd, dtype=np.float64)
    if detection_ids is None:
        return np.argsort(t, kind="stable")
    ids = list(detection_ids)
    if len(ids) != len(t):
        raise ValueError("detection_ids must have one entry per detection")
    first: dict[str, int] = {}
    for i, key in enumerate(ids):
        first.setdefault(key, i)
    keep = np.fromiter(first.values(), dtype=np.intp, count=len(first))
    order = sorted(keep.tolist(), key=lambda i: (t[i], ids[i]))
    return np.asarray(order, dtype=np.intp)


def step_matrix(
    mjd: ArrayLike, mag: ArrayLike, mag_err: ArrayLike, t_first: ArrayLike, spec: SequenceSpec
) -> FloatArray:
    """Step form for many objects at once: row ``i`` is the input of one real time step of object ``i``
    (detection ``mjd[i]``, ``mag[i]``, ``mag_err[i]``, first detection time ``t_first[i]``), ``(N, 3)``.

    Examples
    --------
    >>> from lightcurve.metadata import SequenceSpec
    >>> step_matrix([58610.0, 58606.5], [18.2, 17.0], [0.05, 0.1], [58605.0, 58606.0], SequenceSpec())[:, 0]
    array([5. , 0.5], dtype=float32)
    """
    t = np.asarray(mjd, dtype=np.float64)
    raw = np.stack(
        [t - np.asarray(t_first, dtype=np.float64), np.asarray(mag, dtype=np.float64),
         np.asarray(mag_err, dtype=np.float64)],
        axis=-1,
    )
    values = _normalise(raw, spec.normalisation)
    _check_not_mask(values, spec.mask_value)
    return values.astype(np.float32)


def step_vector(mjd: float, mag: float, mag_err: float, t_first: float, spec: SequenceSpec) -> FloatArray:
    """The input vector of one real time step, given the object's first detection time.

    Examples
    --------
    >>> from lightcurve.metadata import SequenceSpec
    >>> step_vector(58610.0, 18.2, 0.05, 58605.0, SequenceSpec()).tolist()
    [5.0, 18.200000762939453, 0.05000000074505806]
    """
    return step_matrix([mjd], [mag], [mag_err], [t_first], spec)[0]


def sequence_input(
    mjd: ArrayLike,
    mag: ArrayLike,
    mag_err: ArrayLike,
    spec: SequenceSpec,
    detection_ids: Sequence[str] | None = None,
) -> SequenceInput:
    """Batch form: order, de-duplicate, keep the first ``n_steps``, make times relative, normalise, pad.

    Examples
    --------
    >>> from lightcurve.metadata import SequenceSpec
    >>> x = sequence_input([58612.0, 58605.0], [17.9, 18.4], [0.05, 0.07], SequenceSpec(n_steps=3))
    >>> x.n_valid, x.t_first
    (2, 58605.0)
    >>> x.values[:, 0].tolist()
    [0.0, 7.0, -999.0]
    """
    t = np.asarray(mjd, dtype=np.float64)
    m = np.asarray(mag, dtype=np.float64)
    e = np.asarray(mag_err, dtype=np.float64)
    if not (t.shape == m.shape == e.shape) or t.ndim != 1:
        raise ValueError("mjd, mag and mag_err must be 1-d arrays of the same length")
    if t.size == 0:
        raise ValueError("mjd: a light curve needs at least one detection")
    idx = order_arrays(t, detection_ids)[: spec.n_steps]
    t_first = float(t[idx[0]])
    raw = np.stack([t[idx] - t_first, m[idx], e[idx]], axis=1)
    values = _normalise(raw, spec.normalisation)
    _check_not_mask(values, spec.mask_value)
    out = np.full((spec.n_steps, len(spec.features)), spec.mask_value, dtype=np.float32)
    out[: len(idx)] = values
    return SequenceInput(values=out, n_valid=len(idx), t_first=t_first)


def sequence_input_from_detections(detections: Sequence[Detection], spec: SequenceSpec) -> SequenceInput:
    """Batch form over validated detections (the service's full recompute uses this)."""
    ordered = order_detections(detections)
    return sequence_input(
        [d.mjd for d in ordered], [d.mag for d in ordered], [d.mag_err for d in ordered], spec
    )


def limit_observations(values: FloatArray, n_obs: int, mask_value: float) -> FloatArray:
    """Keep only the first ``n_obs`` steps of ``(..., n_steps, n_features)`` inputs (paper Fig. 8).

    Examples
    --------
    >>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> limit_observations(x, 1, -1.0).tolist()
    [[0.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]]
    """
    out = np.array(values, dtype=np.float32, copy=True)
    out[..., n_obs:, :] = mask_value
    return out


def context_matrix(
    gal_l_deg: ArrayLike, gal_b_deg: ArrayLike, host_sep_arcsec: ArrayLike, spec: ContextSpec
) -> FloatArray:
    """Context inputs ``(N, 3)``: NaN or > ``max_host_sep_arcsec`` separations become the dummy value.

    Examples
    --------
    >>> from lightcurve.metadata import ContextSpec
    >>> context_matrix([10.0, 200.0], [45.0, -3.0], [12.5, float("nan")], ContextSpec()).tolist()
    [[10.0, 45.0, 12.5], [200.0, -3.0, 100.0]]
    """
    sep = np.asarray(host_sep_arcsec, dtype=np.float64)
    sep = np.where(np.isfinite(sep) & (sep <= spec.max_host_sep_arcsec), sep, spec.dummy_host_sep_arcsec)
    raw = np.stack(
        [np.asarray(gal_l_deg, dtype=np.float64), np.asarray(gal_b_deg, dtype=np.float64), sep], axis=-1
    )
    return _normalise(raw, spec.normalisation).astype(np.float32)


def context_vector(
    gal_l_deg: float, gal_b_deg: float, host_sep_arcsec: float | None, spec: ContextSpec
) -> FloatArray:
    """One object's context input ``(3,)``; ``None`` separation means no catalogue match."""
    sep = float("nan") if host_sep_arcsec is None else host_sep_arcsec
    return context_matrix([gal_l_deg], [gal_b_deg], [sep], spec)[0]
