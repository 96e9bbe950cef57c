"""Damped random walk (Ornstein-Uhlenbeck process): the standard model of AGN optical variability
(Kelly, Bechtold & Siemiginowska 2009; MacLeod et al. 2010), also used here for the stochastic part
of irregular and semi-regular variable stars.

The walk is drawn exactly on a regular grid (the OU transition is Gaussian for any step) and read at
the exposure times by linear interpolation; the grid step is far below every time-scale used
(>= 5 d), so the interpolation changes nothing that a light curve can show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["DrwGrid", "draw_drw"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DrwGrid:
    """Walks of several objects on one time grid: ``values[k, j]`` at ``t0 + j * step``."""

    t0: float
    step: float
    values: FloatArray

    def at(self, row: NDArray[np.int64], t: FloatArray) -> FloatArray:
        """Value of walk ``row[i]`` at time ``t[i]`` (times outside the grid are clamped to it)."""
        x = np.clip((t - self.t0) / self.step, 0.0, self.values.shape[1] - 1.000001)
        j = x.astype(np.int64)
        frac = x - j
        return self.values[row, j] * (1.0 - frac) + self.values[row, j + 1] * frac


def draw_drw(
    rng: np.random.Generator, tau_d: FloatArray, sigma: FloatArray, t0: float, t1: float, step: float = 0.5
) -> DrwGrid:
    """Stationary damped random walks with time-scales ``tau_d`` and asymptotic rms ``sigma``.

    Examples
    --------
    >>> g = draw_drw(np.random.default_rng(1), np.full(2000, 50.0), np.full(2000, 0.2), 0.0, 100.0)
    >>> round(float(g.values[:, -1].std()), 1)   # stationary: rms sigma at every time
    0.2
    """
    n_steps = int(np.ceil((t1 - t0) / step)) + 2
    decay = np.exp(-step / tau_d)
    kick = sigma * np.sqrt(1.0 - decay**2)
    noise = rng.standard_normal((n_steps, tau_d.size))
    values = np.empty((n_steps, tau_d.size))
    values[0] = sigma * noise[0]
    for j in range(1, n_steps):
        values[j] = decay * values[j - 1] + kick * noise[j]
    return DrwGrid(t0=t0, step=step, values=np.ascontiguousarray(values.T))
