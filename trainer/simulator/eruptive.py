"""Eruptive variable stars: dwarf-nova outbursts, classical novae and M-dwarf flares.

These are the variables a difference-imaging survey reports most often among its faint new
sources: quiescent near or below the limit, they appear only when they erupt, by several
magnitudes. Each function returns the magnitude offset from quiescence (negative = brighter) of
star ``obj[i]`` at time ``t[i]``; the parameters per star are drawn in :mod:`.variables`.

Dwarf novae (Warner 1995, *Cataclysmic Variable Stars*, ch. 3; Coppejans et al. 2016, MNRAS 456,
4441 for CRTS outburst amplitudes and recurrence): quasi-periodic outbursts every 10-500 d by 2-6
mag, a rise of ~1 d, a plateau of 1-5 d (superoutbursts, ~15 % here, 8-15 d and ~0.7 mag brighter)
and a decline of 0.3-1.2 mag/d.

Classical novae (Strope, Schaefer & Henden 2010, AJ 140, 34; Della Valle & Livio 1995): a rise of
1-5 d by 8-15 mag, then a decline by 2 mag in t2 = 5-100 d that halves its rate after 3 mag.

Flares (Hawley et al. 2014, ApJ 797, 121; Davenport 2014, ApJ 797, 122; CRTS flares up to
several magnitudes, Drake et al. 2009): on a given night an active M dwarf flares with probability
``flare_night_p``; the flare peaks at a random time in the observing night and decays
exponentially within ~15-90 min, so it is seen in one visit, rarely two.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from trainer.simulator.events import hash_uniform

__all__ = ["dwarf_nova_offset", "flare_offset", "nova_offset"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Share of dwarf-nova outbursts that are superoutbursts (SU UMa stars dominate short periods).
SUPEROUTBURST_P = 0.15


def _outburst_offset(
    dt: FloatArray, amp: FloatArray, rise: FloatArray, plateau: FloatArray, decline: FloatArray
) -> FloatArray:
    """One outburst ``dt`` days after it started: linear rise, plateau, linear decline (in mag)."""
    rising = np.clip(dt / rise, 0.0, 1.0) * amp
    fading = np.maximum(dt - rise - plateau, 0.0) * decline
    out = -np.maximum(np.where(dt < rise, rising, amp - fading), 0.0)
    return np.where(dt >= 0.0, out, 0.0)


def dwarf_nova_offset(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """Brightest of the two outbursts that can be under way at ``t`` (this cycle's and the last)."""
    key = p["key"][obj]
    cycle = p["period_d"][obj]
    x = (t - p["t0"][obj]) / cycle
    best = np.zeros_like(t)
    for back in (0, 1):
        k = np.floor(x).astype(np.int64) - back
        start = (k + 0.6 * (hash_uniform(key, k, 1) - 0.5)) * cycle  # +/-30 % jitter of each outburst
        super_ = hash_uniform(key, k, 2) < SUPEROUTBURST_P
        amp = p["amplitude_mag"][obj] * (0.8 + 0.2 * hash_uniform(key, k, 3)) + np.where(super_, 0.7, 0.0)
        plateau = np.where(super_, 8.0 + 7.0 * hash_uniform(key, k, 4), 1.0 + 4.0 * hash_uniform(key, k, 4))
        rise = 0.5 + hash_uniform(key, k, 5)
        decline = 0.3 + 0.9 * hash_uniform(key, k, 6)
        best = np.minimum(best, _outburst_offset(x * cycle - start, amp, rise, plateau, decline))
    return best


def nova_offset(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """Offset from quiescence of a classical nova erupting at ``peak_mjd`` (the amplitude is the
    quiescent minus the peak magnitude)."""
    dt = t - p["t0"][obj]
    amp = p["amplitude_mag"][obj]
    t2 = p["period_d"][obj]  # the time-scale column holds t2
    rise = p["rise_d"][obj]
    early = 2.0 * np.maximum(dt, 0.0) / t2  # 2 mag per t2 ...
    late = 3.0 + (2.0 * np.maximum(dt, 0.0) / t2 - 3.0) / 2.0  # ... and half that after 3 mag
    below_peak = np.where(early < 3.0, early, late)
    offset = np.where(dt < 0.0, np.clip(-dt / rise, 0.0, 1.0) * amp, below_peak) - amp
    return np.minimum(offset, 0.0)


def flare_offset(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """Offset of a flare star: a flare on the night of ``t`` with probability ``flare_night_p``."""
    key = p["key"][obj]
    night = np.floor(t - 0.5).astype(np.int64)  # a night runs from noon to noon (UT at La Palma)
    flares = hash_uniform(key, night, 11) < p["flare_night_p"][obj]
    peak = night + 0.86 + 0.30 * hash_uniform(key, night, 12)  # UT ~20:40-03:50 as the survey
    # Flare sizes follow a falling power law (small flares far more common): u^2 weights them small.
    amp = p["amplitude_mag"][obj] * (0.15 + 0.85 * hash_uniform(key, night, 13) ** 2)
    decay = p["rise_d"][obj]  # e-folding time of the decay (d)
    dt = t - peak
    shape = np.where(
        dt < 0.0, np.exp(np.minimum(dt, 0.0) / (0.1 * decay)), np.exp(-np.maximum(dt, 0.0) / decay)
    )
    ratio = np.where(flares, 10.0 ** (0.4 * amp) - 1.0, 0.0)
    return -2.5 * np.log10(1.0 + ratio * shape)
