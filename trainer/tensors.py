"""Survey tables -> model input arrays, through ``lightcurve.preprocessing`` only.

Every light curve goes through :func:`lightcurve.preprocessing.sequence_input` (the function the
service's full recompute uses) and every context row through
:func:`lightcurve.preprocessing.context_matrix`; this module only groups detections by object, maps
labels to class indices and fits the normalisation statistics. Normalisation is applied by
``lightcurve`` too: the trainer builds raw inputs with a spec without normalisation, fits z-score
statistics on the training split, and rebuilds with the normalised spec, so trainer and service
cannot disagree on how a value is scaled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lightcurve.metadata import ContextSpec, FeatureStats, SequenceSpec
from lightcurve.preprocessing import context_matrix, sequence_input

__all__ = [
    "ModelInputs",
    "build_inputs",
    "concat_inputs",
    "fit_context_stats",
    "fit_sequence_stats",
    "label_indices",
    "sequence_arrays",
]


@dataclass(frozen=True)
class ModelInputs:
    """Model-ready arrays for N objects, in objects-table order.

    ``series`` is ``(N, n_steps, 3)`` float32 padded with the mask value, ``context`` ``(N, 3)``
    float32, ``labels`` ``(N,)`` class indices, ``n_valid`` the number of real steps per object.
    """

    object_ids: NDArray[Any]
    series: NDArray[np.float32]
    context: NDArray[np.float32]
    labels: NDArray[np.int64]
    n_valid: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.object_ids.size)

    def subset(self, idx: NDArray[np.intp]) -> ModelInputs:
        return ModelInputs(
            object_ids=self.object_ids[idx],
            series=self.series[idx],
            context=self.context[idx],
            labels=self.labels[idx],
            n_valid=self.n_valid[idx],
        )

    def features(self, use_context: bool, series: NDArray[np.float32] | None = None) -> dict[str, Any]:
        """Keras input dict (names from ``trainer.model``); ``series`` overrides the time series."""
        from trainer.model import CONTEXT_INPUT, TIME_SERIES_INPUT

        out: dict[str, Any] = {TIME_SERIES_INPUT: self.series if series is None else series}
        if use_context:
            out[CONTEXT_INPUT] = self.context
        return out


def concat_inputs(parts: Sequence[ModelInputs]) -> ModelInputs:
    """The objects of ``parts`` one after another (an empty input of no objects if ``parts`` is empty)."""
    if not parts:
        return ModelInputs(
            object_ids=np.array([], dtype=object),
            series=np.empty((0, 0, 3), dtype=np.float32),
            context=np.empty((0, 3), dtype=np.float32),
            labels=np.array([], dtype=np.int64),
            n_valid=np.array([], dtype=np.int64),
        )
    return ModelInputs(
        object_ids=np.concatenate([p.object_ids.astype(object) for p in parts]),
        series=np.concatenate([p.series for p in parts]),
        context=np.concatenate([p.context for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        n_valid=np.concatenate([p.n_valid for p in parts]),
    )


def label_indices(labels: pd.Series, class_names: Sequence[str]) -> NDArray[np.int64]:
    """Class index of every label; raise ``ValueError`` naming the first row with an unknown label."""
    lookup = {name: i for i, name in enumerate(class_names)}
    mapped = labels.map(lookup)
    bad = mapped.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"objects table, column 'label', row {row}: {labels.iloc[row]!r} "
            f"is not one of {tuple(class_names)}"
        )
    return mapped.to_numpy(dtype=np.int64)


def sequence_arrays(
    detections: pd.DataFrame, object_ids: Sequence[str], spec: SequenceSpec
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``(N, n_steps, 3)`` series and ``(N,)`` real-step counts for ``object_ids``, in that order.

    Each object goes through :func:`lightcurve.preprocessing.sequence_input` with its detection ids,
    so duplicates are dropped and ties in time broken exactly as the service does.
    """
    groups = detections.groupby("object_id", sort=False).indices
    mjd = detections["mjd"].to_numpy(dtype=np.float64)
    mag = detections["mag"].to_numpy(dtype=np.float64)
    err = detections["mag_err"].to_numpy(dtype=np.float64)
    det_ids = detections["detection_id"].astype(str).to_numpy() if "detection_id" in detections else None
    series = np.empty((len(object_ids), spec.n_steps, len(spec.features)), dtype=np.float32)
    n_valid = np.empty(len(object_ids), dtype=np.int64)
    for row, oid in enumerate(object_ids):
        pos = groups.get(oid)
        if pos is None:
            raise ValueError(f"objects table, row {row}: object {oid!r} has no detections")
        ids = None if det_ids is None else det_ids[pos].tolist()
        try:
            x = sequence_input(mjd[pos], mag[pos], err[pos], spec, detection_ids=ids)
        except ValueError as exc:
            raise ValueError(f"detections of object {oid!r}: {exc}") from exc
        series[row] = x.values
        n_valid[row] = x.n_valid
    return series, n_valid


def build_inputs(
    tables: Any,
    context_frame: pd.DataFrame,
    sequence_spec: SequenceSpec,
    context_spec: ContextSpec,
    class_names: Sequence[str],
    rows: NDArray[np.intp] | None = None,
) -> ModelInputs:
    """Model inputs for the objects of ``tables`` (all, or the objects-table ``rows`` given).

    Parameters
    ----------
    tables
        :class:`trainer.data.SurveyTables` (detections and objects tables).
    context_frame
        :func:`trainer.data.object_context` of the same tables (objects-table order).
    sequence_spec, context_spec
        The artifact's specs; their normalisation (if any) is applied by ``lightcurve``.
    class_names
        Class order of the model output.
    rows
        Subset of objects-table rows; ``None`` for all.
    """
    objects = tables.objects if rows is None else tables.objects.iloc[rows]
    ctx = context_frame if rows is None else context_frame.iloc[rows]
    object_ids = objects["object_id"].astype(str).to_numpy()
    if not np.array_equal(ctx["object_id"].astype(str).to_numpy(), object_ids):
        raise ValueError("object_context: rows are not in objects-table order")
    series, n_valid = sequence_arrays(tables.detections, object_ids.tolist(), sequence_spec)
    context = context_matrix(
        ctx["gal_l_deg"].to_numpy(),
        ctx["gal_b_deg"].to_numpy(),
        ctx["host_sep_arcsec"].to_numpy(),
        context_spec,
    )
    return ModelInputs(
        object_ids=object_ids,
        series=series,
        context=context,
        labels=label_indices(objects["label"].reset_index(drop=True), class_names),
        n_valid=n_valid,
    )


def _stats(values: NDArray[np.float64]) -> FeatureStats:
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    # A constant feature (std 0) is left unscaled rather than divided by zero.
    std = np.where(std > 0, std, 1.0)
    return FeatureStats(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))


def fit_sequence_stats(series: NDArray[np.float32], n_valid: NDArray[np.int64]) -> FeatureStats:
    """Per-feature mean and std over the real (unpadded) steps of raw training series.

    Examples
    --------
    >>> x = np.full((2, 3, 3), -999.0, dtype=np.float32)
    >>> x[0, :2] = [[0, 18, 0.1], [2, 19, 0.1]]; x[1, :1] = [[0, 17, 0.1]]
    >>> s = fit_sequence_stats(x, np.array([2, 1]))
    >>> [round(v, 3) for v in s.mean], [round(v, 3) for v in s.std]
    ([0.667, 18.0, 0.1], [0.943, 0.816, 1.0])
    """
    real = np.arange(series.shape[1])[None, :] < np.asarray(n_valid)[:, None]
    return _stats(series[real].astype(np.float64))


def fit_context_stats(context: NDArray[np.float32]) -> FeatureStats:
    """Per-feature mean and std of raw training context rows (after the dummy-distance rule)."""
    return _stats(np.asarray(context, dtype=np.float64))
