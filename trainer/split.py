"""Train / validation / test split by object (paper section 4).

Stratified 70/30 train/test, then 30 per cent of train held out for validation, so the three sets
keep the class proportions. The split is over objects: every detection of an object goes with it.
A split is reproduced from its seed and fractions; its per-set SHA-256 digests (stored in the model
directory) prove that a re-run produced exactly the same object sets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["SPLIT_NAMES", "Split", "ids_digest", "stratified_split"]

SPLIT_NAMES = ("train", "validation", "test")


def ids_digest(object_ids: Sequence[str] | NDArray[Any]) -> str:
    """SHA-256 of the sorted object ids (order-independent fingerprint of a set of objects)."""
    h = hashlib.sha256()
    for oid in sorted(str(o) for o in object_ids):
        h.update(oid.encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class Split:
    """Row indices (into the objects table) of each set, plus how the split was made."""

    train: NDArray[np.intp]
    validation: NDArray[np.intp]
    test: NDArray[np.intp]
    seed: int
    test_fraction: float
    validation_fraction: float

    def indices(self, name: str) -> NDArray[np.intp]:
        if name not in SPLIT_NAMES:
            raise ValueError(f"split name must be one of {SPLIT_NAMES}, got {name!r}")
        return getattr(self, name)  # type: ignore[no-any-return]

    def describe(self, object_ids: NDArray[Any], labels: NDArray[Any], class_names: Sequence[str]) -> dict:
        """JSON-ready record: seed, fractions, and per set the size, class counts and id digest."""
        out: dict[str, Any] = {
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "validation_fraction": self.validation_fraction,
            "method": "sklearn.model_selection.train_test_split(stratify=label), test first, then validation",
        }
        for name in SPLIT_NAMES:
            idx = self.indices(name)
            counts = np.bincount(labels[idx], minlength=len(class_names))
            out[name] = {
                "n_objects": int(idx.size),
                "class_counts": {c: int(n) for c, n in zip(class_names, counts, strict=True)},
                "ids_sha256": ids_digest(object_ids[idx]),
            }
        return out


def stratified_split(
    object_ids: ArrayLike,
    labels: ArrayLike,
    *,
    seed: int,
    test_fraction: float = 0.3,
    validation_fraction: float = 0.3,
) -> Split:
    """Stratified split by object: test first, then validation out of the remaining training objects.

    Parameters
    ----------
    object_ids
        One id per object (unique).
    labels
        Integer class of each object; every class needs at least 2 objects per split step.
    seed
        Seed of both random draws; the same inputs and seed give the same split.
    test_fraction, validation_fraction
        Fraction of all objects in test; fraction of the *training* objects held out for validation.

    Examples
    --------
    >>> s = stratified_split([f"o{i}" for i in range(20)], [0] * 10 + [1] * 10, seed=1)
    >>> len(s.train), len(s.validation), len(s.test)
    (9, 5, 6)
    """
    from sklearn.model_selection import train_test_split

    ids = np.asarray(object_ids)
    y = np.asarray(labels)
    if ids.shape != y.shape or ids.ndim != 1:
        raise ValueError("object_ids and labels must be 1-d and of the same length")
    if len(np.unique(ids)) != ids.size:
        raise ValueError("object_ids: duplicated object ids; a split by object needs unique ids")
    for name, frac in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not 0.0 < frac < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {frac}")
    _, class_counts = np.unique(y, return_counts=True)
    if np.any(class_counts < 4):
        raise ValueError("labels: every class needs at least 4 objects for a stratified 3-way split")

    all_idx = np.arange(ids.size)
    rest, test = train_test_split(all_idx, test_size=test_fraction, stratify=y, random_state=seed)
    train, validation = train_test_split(
        rest, test_size=validation_fraction, stratify=y[rest], random_state=seed + 1
    )
    return Split(
        train=np.sort(train).astype(np.intp),
        validation=np.sort(validation).astype(np.intp),
        test=np.sort(test).astype(np.intp),
        seed=seed,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
    )
