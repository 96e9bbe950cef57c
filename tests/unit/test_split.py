"""Stratified 70/30 train/test and 30 per cent of train for validation, by object, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.split import ids_digest, stratified_split

# Paper-like imbalance: 99.25 per cent VS, 0.55 per cent AGN, 0.2 per cent SN.
COUNTS = {0: 9_000, 1: 60, 2: 150}


def _objects() -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.full(n, c) for c, n in COUNTS.items()])
    rng = np.random.default_rng(0)
    rng.shuffle(labels)
    ids = np.array([f"GOTO_{i:06d}" for i in range(labels.size)])
    return ids, labels


def test_sets_are_disjoint_and_cover_every_object():
    ids, labels = _objects()
    s = stratified_split(ids, labels, seed=42)
    sets = [set(ids[s.train]), set(ids[s.validation]), set(ids[s.test])]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert set().union(*sets) == set(ids)


def test_sizes_follow_70_30_then_30_of_train():
    ids, labels = _objects()
    s = stratified_split(ids, labels, seed=42)
    n = ids.size
    assert s.test.size == pytest.approx(0.3 * n, abs=2)
    assert s.validation.size == pytest.approx(0.3 * 0.7 * n, abs=2)
    assert s.train.size == n - s.test.size - s.validation.size


def test_every_set_keeps_the_class_proportions():
    ids, labels = _objects()
    s = stratified_split(ids, labels, seed=7)
    overall = np.bincount(labels) / labels.size
    for idx in (s.train, s.validation, s.test):
        frac = np.bincount(labels[idx], minlength=3) / idx.size
        np.testing.assert_allclose(frac, overall, atol=0.002)
        assert np.all(np.bincount(labels[idx], minlength=3) > 0)


def test_same_seed_same_split_other_seed_other_split():
    ids, labels = _objects()
    a, b, c = (stratified_split(ids, labels, seed=s) for s in (1, 1, 2))
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(a.indices(name), b.indices(name))
    assert ids_digest(ids[a.test]) != ids_digest(ids[c.test])


def test_describe_records_digests_that_identify_the_sets():
    ids, labels = _objects()
    s = stratified_split(ids, labels, seed=3)
    record = s.describe(ids, labels, ("VS", "SN", "AGN"))
    assert record["seed"] == 3
    assert record["test"]["ids_sha256"] == ids_digest(ids[s.test])
    assert record["test"]["ids_sha256"] == ids_digest(list(reversed(ids[s.test])))  # order-independent
    assert sum(record[k]["n_objects"] for k in ("train", "validation", "test")) == ids.size
    assert record["train"]["class_counts"]["SN"] == int(np.sum(labels[s.train] == 1))


def test_duplicate_ids_and_tiny_classes_rejected():
    with pytest.raises(ValueError, match="duplicated"):
        stratified_split(["a", "a", "b", "c"], [0, 0, 1, 1], seed=0)
    with pytest.raises(ValueError, match="at least 4"):
        stratified_split([f"o{i}" for i in range(12)], [0] * 10 + [1] * 2, seed=0)
