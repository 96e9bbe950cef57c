"""Recurring events (dwarf-nova outbursts, stellar flares, blazar flares) evaluated at any time.

A light curve with many discrete events cannot be drawn once on a grid cheaply (flares last
minutes, the survey lasts years), so each event's random properties are a *hash* of (object key,
event slot, salt): the same exposure time always sees the same events, exposures minutes apart see
the same flare, and nothing has to be stored per event. The object keys come from the component's
seeded generator, so a seed still fixes every table.

Examples
--------
>>> a = hash_uniform(np.array([1, 1, 2], dtype=np.uint64), np.array([5, 5, 5]), 3)
>>> bool(a[0] == a[1]), bool(a[0] != a[2]), bool(((a >= 0) & (a < 1)).all())
(True, True, True)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["draw_keys", "hash_uniform"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def draw_keys(rng: np.random.Generator, n: int) -> NDArray[np.uint64]:
    """One 64-bit key per object, from the component's generator."""
    return rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).astype(np.uint64)


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    # SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective, well-mixed 64-bit hash.
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hash_uniform(key: NDArray[np.uint64], slot: NDArray[np.int64], salt: int) -> NDArray[np.float64]:
    """Uniform [0, 1) numbers fixed by (key, slot, salt): one per element of the broadcast inputs."""
    with np.errstate(over="ignore"):
        mixed = _splitmix64(
            np.asarray(key, dtype=np.uint64)
            ^ _splitmix64(np.asarray(slot).astype(np.int64).astype(np.uint64) + np.uint64(salt) * _GOLDEN)
        )
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
