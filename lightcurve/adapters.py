"""Survey adapters: how another survey's light curves are made to look like the ones the model reads.

Real labelled tables differ from GOTO's stream of single-band difference-imaging detections:

- several bands (ZTF ``ztf_g`` and ``ztf_r``): keep some (``bands``);
- years of quiescent photometry before the transient was found (CRTS ``disc_mjd``): start each light
  curve at a date taken from a column of the objects table (``start_column``);
- several exposures per visit (CRTS takes four in ~30 min), so that 30 steps would cover a week
  instead of months: combine the detections of one visit or one night into one (``binning``).

An adapter is data, recorded wherever it is used (the evaluation's output, the real-data benchmark,
the training metadata). The functions here are pure numpy on one light curve; the trainer applies
them to whole tables (:func:`trainer.data.adapt_tables`).

Examples
--------
>>> adapter = SurveyAdapter(bands=("ztf_r",), binning="night")
>>> adapter.describe()
'bands ztf_r; one point per night (detections < 0.5 d apart combined)'
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BINNING_GAP_DAYS", "SurveyAdapter", "bin_light_curve", "group_starts", "training_input_adapter"]

#: Detections closer in time than this (to the previous detection of the same object) are combined.
#: A visit: GOTO takes its exposures of a field within minutes, CRTS its four within ~30 min, so 1.5 h
#: separates visits; a night: ground-based nights are < 0.5 d apart only within one night.
BINNING_GAP_DAYS = {"visit": 0.0625, "night": 0.5}


class SurveyAdapter(BaseModel):
    """Which detections of a foreign survey's table reach the model, and how they are combined."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Filters to keep (``None``: all); several bands are merged in time order.
    bands: tuple[str, ...] | None = None
    #: Objects-table column with an MJD: detections before it (plus ``start_offset_days``) are dropped.
    start_column: str | None = None
    start_offset_days: float = 0.0
    #: ``visit`` or ``night``: detections closer than ``BINNING_GAP_DAYS`` become one point.
    binning: Literal["none", "visit", "night"] = "none"
    #: Overrides the gap of the chosen binning (days).
    gap_days: float | None = Field(None, gt=0)

    @property
    def is_identity(self) -> bool:
        return self.bands is None and self.start_column is None and self.binning == "none"

    @property
    def binning_gap_days(self) -> float | None:
        if self.binning == "none":
            return None
        return self.gap_days if self.gap_days is not None else BINNING_GAP_DAYS[self.binning]

    def describe(self) -> str:
        """One line for reports."""
        parts = []
        if self.bands is not None:
            parts.append("bands " + "+".join(self.bands))
        if self.start_column is not None:
            offset = f" {self.start_offset_days:+g} d" if self.start_offset_days else ""
            parts.append(f"from objects.{self.start_column}{offset}")
        if self.binning != "none":
            parts.append(
                f"one point per {self.binning} (detections < {self.binning_gap_days:g} d apart combined)"
            )
        return "; ".join(parts) if parts else "as recorded (no adapter)"


def group_starts(mjd_sorted: ArrayLike, gap_days: float) -> NDArray[np.bool_]:
    """True where a detection starts a new group: more than ``gap_days`` after the previous one.

    Examples
    --------
    >>> group_starts([0.0, 0.01, 0.02, 1.0, 1.01, 5.0], 0.0625).tolist()
    [True, False, False, True, False, True]
    """
    t = np.asarray(mjd_sorted, dtype=np.float64)
    starts = np.ones(t.size, dtype=bool)
    starts[1:] = np.diff(t) > gap_days
    return starts


def bin_light_curve(
    mjd: ArrayLike, mag: ArrayLike, mag_err: ArrayLike, gap_days: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Combine detections closer than ``gap_days`` (in time order) into one point each.

    Each point is the inverse-variance weighted mean of its magnitudes, at the weighted mean time,
    with error ``1 / sqrt(sum w)``: four exposures of 0.08 mag give one point of 0.04 mag, as a
    stack of them would.

    Examples
    --------
    >>> t, m, e = bin_light_curve([0.0, 0.01, 3.0], [18.0, 18.2, 17.0], [0.1, 0.1, 0.05], 0.0625)
    >>> t.round(3).tolist(), m.round(3).tolist(), e.round(4).tolist()
    ([0.005, 3.0], [18.1, 17.0], [0.0707, 0.05])
    """
    t = np.asarray(mjd, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    m = np.asarray(mag, dtype=np.float64)[order]
    e = np.asarray(mag_err, dtype=np.float64)[order]
    group = np.cumsum(group_starts(t, gap_days)) - 1
    n = int(group[-1]) + 1 if group.size else 0
    w = 1.0 / e**2
    w_sum = np.bincount(group, weights=w, minlength=n)
    t_out = np.bincount(group, weights=w * t, minlength=n) / w_sum
    m_out = np.bincount(group, weights=w * m, minlength=n) / w_sum
    return t_out, m_out, 1.0 / np.sqrt(w_sum)


def training_input_adapter(data_provenance: dict) -> SurveyAdapter:
    """The adapter applied to a model's main training data (an artifact's ``metadata.data``).

    The service feeds the model GOTO detections as they arrive, one per step, every band; a model whose
    main training data was adapted (bands kept, light curves started late, detections binned) reads
    another input than the one the service builds, so the service refuses it (real sets mixed into
    training with their own presets, ``training.real_sets``, do not change the model's input).

    >>> training_input_adapter({}).is_identity
    True
    >>> training_input_adapter({"adapter": {"adapter": {"binning": "night"}}}).binning
    'night'
    """
    record = (data_provenance or {}).get("adapter") or {}
    return SurveyAdapter.model_validate(record.get("adapter") or {})
