"""Variable stars: pulsators, eclipsing binaries, long-period and irregular variables.

The paper's VS class is everything AAVSO's Variable Star Index knows (over 350 labels); the types
here are the ones that dominate a cross-match of a 20th-magnitude survey with it. Light-curve shapes
are the textbook ones, in magnitudes (positive = fainter):

- pulsators (RRab, Cepheids, delta Scuti): a fast rise and a slow linear decline;
- RRc and low-amplitude variables (rotation, ellipsoidal): a sinusoid;
- contact binaries (EW): continuous variation with two minima per orbit of unequal depth;
- detached binaries (EA): constant except for short primary and secondary eclipses;
- Miras: a large-amplitude asymmetric pulsation whose maxima wander (a damped random walk on top);
- semi-regulars: two incommensurate periods plus a damped random walk;
- irregulars: a damped random walk only (the variable stars that look most like AGN).

Periods and amplitudes are log-uniform within each type's range, so every type contains
low-amplitude members: those are detected rarely and are among the hard cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.simulator.drw import DrwGrid

__all__ = ["VARIABLE_TYPES", "VariableType", "draw_variable_stars", "variable_star_magnitudes"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
#: Epoch of phase zero (keeps phases numerically exact).
T_ZERO = 58000.0


@dataclass(frozen=True)
class VariableType:
    name: str
    #: Share of variable stars *before* detection (detection then favours large amplitudes).
    fraction: float
    shape: str
    #: Mean apparent L magnitude: normal (mean, sd).
    mean_mag: tuple[float, float]
    #: Period range (days, log-uniform); for irregulars, the damped-random-walk time-scale.
    period_d: tuple[float, float]
    #: Peak-to-peak amplitude range (mag, log-uniform); for irregulars, the walk's rms.
    amplitude_mag: tuple[float, float]
    #: Galactic latitude distribution: Laplace scale height of the disc part and the share spread
    #: over the whole sky (nearby disc stars, halo).
    scale_height_deg: float
    isotropic_fraction: float


VARIABLE_TYPES: tuple[VariableType, ...] = (
    VariableType("EW", 0.28, "contact", (15.0, 2.0), (0.22, 1.0), (0.05, 0.8), 8.0, 0.35),
    VariableType("EA", 0.16, "detached", (14.0, 2.0), (0.8, 20.0), (0.1, 2.0), 6.0, 0.3),
    VariableType("RRAB", 0.09, "pulsator", (15.8, 1.6), (0.45, 0.8), (0.4, 1.2), 10.0, 0.7),
    VariableType("RRC", 0.05, "sinusoid", (15.8, 1.6), (0.25, 0.42), (0.15, 0.5), 10.0, 0.7),
    VariableType("DCEP", 0.02, "pulsator", (12.5, 2.0), (2.0, 40.0), (0.2, 1.0), 2.5, 0.05),
    VariableType("DSCT", 0.06, "pulsator", (13.5, 2.0), (0.03, 0.25), (0.01, 0.6), 6.0, 0.3),
    VariableType("M", 0.04, "mira", (13.0, 2.0), (150.0, 500.0), (1.5, 5.0), 4.0, 0.15),
    VariableType("SR", 0.10, "semiregular", (12.8, 2.0), (30.0, 200.0), (0.1, 1.2), 5.0, 0.2),
    VariableType("L", 0.10, "irregular", (13.5, 2.0), (5.0, 100.0), (0.03, 0.4), 4.0, 0.15),
    VariableType("ROT", 0.10, "sinusoid", (14.5, 2.0), (0.3, 30.0), (0.02, 0.3), 8.0, 0.4),
)
SHAPES = ("sinusoid", "pulsator", "contact", "detached", "mira", "semiregular", "irregular")


def _log_uniform(rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> FloatArray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi)))


def draw_variable_stars(rng: np.random.Generator, n: int) -> dict[str, NDArray]:
    """Parameters of ``n`` variable stars (arrays keyed by name; ``subtype`` indexes VARIABLE_TYPES)."""
    types = VARIABLE_TYPES
    frac = np.array([t.fraction for t in types])
    subtype = rng.choice(len(types), size=n, p=frac / frac.sum())

    def col(get) -> FloatArray:  # per-object value of a per-type attribute
        return np.array([get(t) for t in types], dtype=np.float64)[subtype]

    shape = np.array([SHAPES.index(t.shape) for t in types])[subtype]
    mag_mu, mag_sd = col(lambda t: t.mean_mag[0]), col(lambda t: t.mean_mag[1])
    p = {
        "subtype": subtype,
        "shape": shape,
        "mean_mag": np.clip(rng.normal(mag_mu, mag_sd), 9.5, 21.5),
        "period_d": _log_uniform(rng, col(lambda t: t.period_d[0]), col(lambda t: t.period_d[1])),
        "amplitude_mag": _log_uniform(
            rng, col(lambda t: t.amplitude_mag[0]), col(lambda t: t.amplitude_mag[1])
        ),
        "phase0": rng.random(n),
        "rise_fraction": rng.uniform(0.12, 0.3, n),
        "secondary_ratio": rng.uniform(0.0, 0.6, n),
        "eclipse_width": rng.uniform(0.02, 0.08, n),
        "period2_ratio": np.where(rng.random(n) < 0.5, rng.uniform(0.4, 0.7, n), rng.uniform(1.5, 2.5, n)),
        "amplitude2_ratio": rng.uniform(0.1, 0.5, n),
        "scale_height_deg": col(lambda t: t.scale_height_deg),
        "isotropic_fraction": col(lambda t: t.isotropic_fraction),
    }
    is_contact = shape == SHAPES.index("contact")
    p["secondary_ratio"] = np.where(is_contact, rng.uniform(0.7, 1.0, n), p["secondary_ratio"])
    is_mira = shape == SHAPES.index("mira")
    p["rise_fraction"] = np.where(is_mira, rng.uniform(0.35, 0.5, n), p["rise_fraction"])
    # Stochastic part: irregulars are only a walk; Miras' maxima and semi-regulars wander.
    is_irr = shape == SHAPES.index("irregular")
    is_sr = shape == SHAPES.index("semiregular")
    p["drw_tau_d"] = np.select(
        [is_irr, is_sr, is_mira], [p["period_d"], p["period_d"], 2.0 * p["period_d"]], 0.0
    )
    p["drw_sigma"] = np.select(
        [is_irr, is_sr, is_mira],
        [p["amplitude_mag"], 0.3 * p["amplitude_mag"], 0.08 * p["amplitude_mag"]],
        0.0,
    )
    return p


def _periodic_offset(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """Deterministic part of the magnitude offset from the mean (positive = fainter)."""
    shape = p["shape"][obj]
    amp = p["amplitude_mag"][obj]
    phase = ((t - T_ZERO) / p["period_d"][obj] + p["phase0"][obj]) % 1.0
    out = np.zeros_like(t)

    m = shape == SHAPES.index("sinusoid")
    out[m] = 0.5 * amp[m] * np.sin(2.0 * np.pi * phase[m])

    m = np.isin(shape, [SHAPES.index("pulsator"), SHAPES.index("mira")])
    rise = p["rise_fraction"][obj][m]
    ph = phase[m]
    brightness = np.where(ph < rise, ph / rise, 1.0 - (ph - rise) / (1.0 - rise))  # 0 faint .. 1 bright
    out[m] = amp[m] * (0.5 - brightness)

    m = shape == SHAPES.index("contact")
    depth = np.where(phase[m] < 0.5, 1.0, p["secondary_ratio"][obj][m])
    out[m] = amp[m] * depth * np.sin(2.0 * np.pi * phase[m]) ** 2

    m = shape == SHAPES.index("detached")
    width = p["eclipse_width"][obj][m]
    d1 = np.minimum(phase[m], 1.0 - phase[m]) / width  # distance from primary eclipse, in widths
    d2 = np.abs(phase[m] - 0.5) / width
    out[m] = amp[m] * (
        np.clip(1.0 - d1**2, 0.0, None) + p["secondary_ratio"][obj][m] * np.clip(1.0 - d2**2, 0.0, None)
    )

    m = shape == SHAPES.index("semiregular")
    ph2 = (
        (t[m] - T_ZERO) / (p["period_d"][obj][m] * p["period2_ratio"][obj][m]) + 2 * p["phase0"][obj][m]
    ) % 1.0
    out[m] = (
        0.5
        * amp[m]
        * (np.sin(2.0 * np.pi * phase[m]) + p["amplitude2_ratio"][obj][m] * np.sin(2.0 * np.pi * ph2))
    )
    return out


def variable_star_magnitudes(
    p: dict[str, NDArray], obj: IntArray, t: FloatArray, drw: DrwGrid | None, drw_row: IntArray
) -> FloatArray:
    """True L magnitude of star ``obj[i]`` at time ``t[i]``.

    ``drw_row[k]`` is star k's row in ``drw`` (-1: no stochastic part).
    """
    mag = p["mean_mag"][obj] + _periodic_offset(p, obj, t)
    if drw is not None:
        row = drw_row[obj]
        has = row >= 0
        mag[has] += drw.at(row[has], t[has])
    return mag


def variable_star_reference_magnitudes(
    rng: np.random.Generator, p: dict[str, NDArray], t_ref: FloatArray
) -> FloatArray:
    """Magnitude of each star in its reference image, taken at ``t_ref`` (before the survey); the
    stochastic part there is an independent draw from the walk's stationary distribution."""
    obj = np.arange(t_ref.size)
    return p["mean_mag"] + _periodic_offset(p, obj, t_ref) + p["drw_sigma"] * rng.standard_normal(t_ref.size)
