"""Augmented copies of training light curves (an option beyond the paper; off by default).

A model trained on one survey's simulator learns its cadence, its calibration and its error model.
Each copy of a training object perturbs exactly those, so that they stop being shortcuts:

- **cadence thinning**: each detection is dropped with a probability drawn per copy from
  ``U(0, thin_max)`` (at least one detection is kept), so dense real curves and sparse GOTO-like ones
  look alike to the model;
- **truncation to an early prefix**: a share ``truncate_fraction`` of the copies keeps only its first
  ``k`` detections, ``k`` uniform in 1..min(n, 30): the model sees young light curves as often as the
  service does;
- **zero-point shift**: every magnitude of a copy moves by one draw of ``N(0, zero_point_sigma)``
  (surveys' bands and calibrations differ by tenths of a magnitude);
- **error rescaling**: every ``mag_err`` of a copy is multiplied by ``exp(N(0, error_scale_sigma))``
  (pipelines' error models differ by tens of per cent).

Everything is drawn from ``numpy.random.default_rng([seed, copy])``: the same tables, seed and options
give the same copies. Copies are named ``<object_id>~a<copy>`` and carry their parent's label and
position; they are only ever added to the training split, next to their parent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AugmentOptions", "augmented_copies"]

#: Longest prefix the model reads (the paper's 30 steps); truncation draws k in 1..min(n, this).
MAX_STEPS = 30


@dataclass(frozen=True)
class AugmentOptions:
    """How many augmented copies of each training object, and how strongly each is perturbed."""

    copies: int = 0
    thin_max: float = 0.5
    truncate_fraction: float = 0.5
    zero_point_sigma: float = 0.15
    error_scale_sigma: float = 0.25

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ValueError(f"augment copies must be >= 0, got {self.copies}")
        if not 0.0 <= self.thin_max < 1.0:
            raise ValueError(f"augment thin_max must lie in [0, 1), got {self.thin_max}")
        if not 0.0 <= self.truncate_fraction <= 1.0:
            raise ValueError(f"augment truncate_fraction must lie in [0, 1], got {self.truncate_fraction}")
        if self.zero_point_sigma < 0 or self.error_scale_sigma < 0:
            raise ValueError("augment sigmas must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def augmented_copies(tables: Any, object_ids: Any, options: AugmentOptions, seed: int) -> Any:
    """``options.copies`` perturbed copies of each of ``object_ids`` (tables of the copies only).

    ``tables`` is a :class:`trainer.data.SurveyTables` whose detections are sorted by object and time
    (as the loader leaves them). The result has the same columns, the copies' objects in the order
    copy 0 of every object, copy 1 of every object, ...
    """
    wanted = pd.Index(pd.unique(np.asarray(object_ids).astype(str)))
    det = tables.detections.loc[tables.detections["object_id"].astype(str).isin(wanted)]
    objects = tables.objects.loc[tables.objects["object_id"].astype(str).isin(wanted)]
    codes, uniques = pd.factorize(det["object_id"].astype(str), sort=False)
    n_obj, n_det = len(uniques), len(det)
    sizes = np.bincount(codes, minlength=n_obj)
    mag = det["mag"].to_numpy(dtype=np.float64)
    err = det["mag_err"].to_numpy(dtype=np.float64)
    det_parts, obj_parts = [], []
    for copy in range(options.copies):
        rng = np.random.default_rng([seed, copy])
        keep = rng.random(n_det) >= rng.uniform(0.0, options.thin_max, n_obj)[codes]
        # an object left without detections keeps its first one
        kept_per_obj = np.bincount(codes, weights=keep, minlength=n_obj)
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        keep[first[kept_per_obj == 0]] = True
        kept_rank = _rank_within(codes, keep)
        n_kept = np.bincount(codes, weights=keep, minlength=n_obj).astype(np.int64)
        cut = rng.random(n_obj) < options.truncate_fraction
        limit = np.where(cut, rng.integers(1, np.minimum(n_kept, MAX_STEPS) + 1), np.iinfo(np.int64).max)
        keep &= kept_rank < limit[codes]
        zero_point = rng.normal(0.0, options.zero_point_sigma, n_obj)
        error_scale = np.exp(rng.normal(0.0, options.error_scale_sigma, n_obj))
        suffix = f"~a{copy}"
        part = det.loc[keep].copy()
        part["mag"] = (mag + zero_point[codes])[keep]
        part["mag_err"] = (err * error_scale[codes])[keep]
        part["object_id"] = part["object_id"].astype(str) + suffix
        det_parts.append(part)
        obj = objects.copy()
        obj["object_id"] = obj["object_id"].astype(str) + suffix
        obj_parts.append(obj)
    empty_det, empty_obj = det.iloc[:0], objects.iloc[:0]
    return dataclasses.replace(
        tables,
        detections=pd.concat(det_parts or [empty_det], ignore_index=True),
        objects=pd.concat(obj_parts or [empty_obj], ignore_index=True),
        provenance={"augmented_copies_of": int(n_obj), "options": options.to_dict(), "seed": int(seed)},
    )


def _rank_within(codes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """0-based rank of each kept detection among its object's kept ones (detections in object order)."""
    counts = np.cumsum(keep) - 1  # running count over all objects
    sizes = np.bincount(codes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    before = np.r_[0, np.cumsum(keep)][starts]  # kept detections of earlier objects
    return counts - before[codes]
