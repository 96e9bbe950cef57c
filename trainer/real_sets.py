"""The real labelled sets (``../shared/data/real_dev`` and the two real GOTO curves), as the model sees them.

Each set has a preset :class:`~lightcurve.adapters.SurveyAdapter` that turns its light curves into
what the model is trained on (GOTO: one band, detections from the transient's start, same-night
exposures as one point): CRTS curves start at the CRTS discovery date (``disc_mjd``; the years of
quiescence before it are not what a transient survey reports), ZTF curves keep the r band (GOTO's L band
is roughly g+r; r is the closer single band), both binned per night.

A set used for training is split by object with :func:`real_split`: within each class, objects are
ordered by a hash of (seed, set name, object id) and the first ``test_fraction`` go to test, the next
``validation_fraction`` to validation. The assignment of an object depends only on its own id and the
class sizes, not on row order, so the benchmark reproduces the held-out part from the rule stored in a
model's metadata.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lightcurve.adapters import SurveyAdapter

__all__ = ["REAL_SETS", "RealSet", "default_real_dir", "held_out_rows", "real_split", "split_rule"]


@dataclass(frozen=True)
class RealSet:
    """One real labelled set: where it lies and how it is adapted to the model's input."""

    name: str
    #: Path relative to the shared data folder (``../shared/data`` beside the repository).
    folder: str
    adapter: SurveyAdapter
    note: str


REAL_SETS: dict[str, RealSet] = {
    s.name: s
    for s in (
        RealSet(
            "mantra_crts",
            "real_dev/mantra_crts",
            SurveyAdapter(start_column="disc_mjd", binning="night"),
            "Catalina (CSS_V), from the CRTS discovery date, one point per night",
        ),
        RealSet(
            "ztf_bts",
            "real_dev/ztf_bts",
            SurveyAdapter(bands=("ztf_r",), binning="night"),
            "ZTF BTS, r band only, one point per night",
        ),
        RealSet(
            "real_goto_examples",
            "real_goto_examples",
            SurveyAdapter(),
            "two real GOTO L-band curves (SN 2019euw, IRAS 18547+1254), as observed",
        ),
    )
}


def default_real_dir() -> Path:
    """``../shared/data`` beside the repository root (where the workplace keeps the real sets)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def _order_key(seed: int, set_name: str, object_id: str) -> str:
    return hashlib.sha256(f"{seed}:{set_name}:{object_id}".encode()).hexdigest()


def real_split(
    object_ids: ArrayLike,
    labels: ArrayLike,
    *,
    set_name: str,
    seed: int,
    test_fraction: float = 0.3,
    validation_fraction: float = 0.15,
) -> NDArray[np.str_]:
    """``"train"``, ``"validation"`` or ``"test"`` per object, stratified by class, by id hash.

    Each class keeps ``ceil(test_fraction * n)`` objects for test (at least one) and
    ``round(validation_fraction * n)`` for validation, so even a class of 6 objects has a held-out part.

    Examples
    --------
    >>> parts = real_split([f"o{i}" for i in range(10)], ["VS"] * 6 + ["SN"] * 4, set_name="x", seed=1)
    >>> sorted(parts.tolist()).count("test"), sorted(parts.tolist()).count("validation")
    (4, 2)
    >>> bool((real_split(["o3", "o1"], ["VS", "VS"], set_name="x", seed=1) ==
    ...       real_split(["o1", "o3"], ["VS", "VS"], set_name="x", seed=1)[::-1]).all())
    True
    """
    ids = np.asarray(object_ids).astype(str)
    y = np.asarray(labels)
    if ids.shape != y.shape or ids.ndim != 1:
        raise ValueError("object_ids and labels must be 1-d and of the same length")
    out = np.full(ids.size, "train", dtype="<U10")
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        ordered = rows[np.argsort([_order_key(seed, set_name, ids[r]) for r in rows], kind="stable")]
        n_test = max(1, math.ceil(test_fraction * rows.size))
        n_val = round(validation_fraction * rows.size)
        out[ordered[:n_test]] = "test"
        out[ordered[n_test : n_test + n_val]] = "validation"
    return out


def split_rule(seed: int, test_fraction: float, validation_fraction: float) -> dict[str, Any]:
    """The JSON record of a :func:`real_split` (stored in a model's metadata for each real set used)."""
    return {
        "rule": "trainer.real_sets.real_split: per class, objects ordered by sha256(seed:set:object_id); "
        "first ceil(test_fraction*n) test, next round(validation_fraction*n) validation",
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "validation_fraction": float(validation_fraction),
    }


def held_out_rows(
    object_ids: Sequence[str], labels: Sequence[str], set_name: str, rule: dict[str, Any]
) -> NDArray[np.intp]:
    """Rows of the test part of a real set that a model trained on, from its stored ``rule``."""
    parts = real_split(
        object_ids,
        labels,
        set_name=set_name,
        seed=int(rule["seed"]),
        test_fraction=float(rule["test_fraction"]),
        validation_fraction=float(rule["validation_fraction"]),
    )
    return np.flatnonzero(parts == "test")
