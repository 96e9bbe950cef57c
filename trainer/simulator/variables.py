"""Variable stars: the type mix a difference-imaging survey to ~20.5 mag reports, with magnitudes
over the survey's whole range.

The paper's VS class is everything AAVSO's Variable Star Index (VSX; Watson, Henden & Price 2006)
knows. A difference-imaging survey detects a star only when it differs from its reference image,
so its VS are (i) the large-amplitude periodic and semi-regular variables of VSX (eclipsing
binaries, RR Lyrae, delta Scuti, Cepheids, Miras, semi-regulars, irregulars, rotators, YSOs) and
(ii) the eruptive variables that dominate the faint new sources of transient surveys
(cataclysmic variables with dwarf-nova outbursts, classical novae, M-dwarf flares; Drake et al.
2009, ApJ 696, 870 and Breedt et al. 2014, MNRAS 443, 3174 for CRTS). Every parameter and its
source is listed in ``docs/data.md``.

Light-curve shapes, in magnitudes (positive = fainter):

- pulsators (RRab, Cepheids, delta Scuti): a fast rise and a slow linear decline;
- RRc and rotation/ellipsoidal variables: a sinusoid;
- contact binaries (EW): two minima per orbit of unequal depth;
- detached binaries (EA): flat except for short primary and secondary eclipses;
- Miras: a large asymmetric pulsation whose maxima wander (a damped random walk on top);
- semi-regulars: two incommensurate periods plus a damped random walk;
- irregulars and YSOs: a damped random walk only (YSOs faster and larger: Cody et al. 2014);
- dwarf novae, novae, flares: :mod:`.eruptive`.

Apparent mean (quiescent) magnitudes follow number counts rising as 10^(slope m) up to ~22 mag, so
most stars are faint and only the variable enough ones are detected near the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.simulator import eruptive
from trainer.simulator.drw import DrwGrid
from trainer.simulator.events import draw_keys

__all__ = [
    "SHAPES",
    "VARIABLE_TYPES",
    "VariableType",
    "draw_variable_stars",
    "power_law_magnitudes",
    "variable_star_magnitudes",
    "variable_star_reference_magnitudes",
]

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
    #: Apparent mean (for eruptive types quiescent; for novae peak) L magnitude: number counts
    #: ~ 10^(mag_slope m) between the two limits.
    mag_range: tuple[float, float]
    mag_slope: float
    #: Period range (days, log-uniform); irregulars and YSOs: the walk's time-scale; dwarf novae:
    #: the outburst cycle; novae: t2; flare stars: the flare decay time.
    period_d: tuple[float, float]
    #: Peak-to-peak amplitude range (mag, log-uniform); irregulars and YSOs: the walk's rms;
    #: eruptive types: the eruption amplitude.
    amplitude_mag: tuple[float, float]
    #: Galactic latitude distribution: Laplace scale height of the disc part and the share spread
    #: over the whole sky (nearby disc stars, halo).
    scale_height_deg: float
    isotropic_fraction: float


VARIABLE_TYPES: tuple[VariableType, ...] = (
    VariableType("EW", 0.35, "contact", (10.0, 21.5), 0.25, (0.22, 1.0), (0.05, 0.8), 8.0, 0.35),
    VariableType("EA", 0.13, "detached", (10.0, 21.5), 0.25, (0.8, 20.0), (0.1, 2.0), 6.0, 0.3),
    VariableType("RRAB", 0.08, "pulsator", (10.5, 21.5), 0.2, (0.45, 0.8), (0.4, 1.3), 10.0, 0.7),
    VariableType("RRC", 0.03, "sinusoid", (10.5, 21.5), 0.2, (0.25, 0.42), (0.15, 0.5), 10.0, 0.7),
    VariableType("DCEP", 0.01, "pulsator", (8.0, 19.0), 0.2, (2.0, 40.0), (0.2, 1.0), 2.5, 0.05),
    VariableType("DSCT", 0.05, "pulsator", (10.0, 20.5), 0.25, (0.03, 0.25), (0.01, 0.8), 6.0, 0.3),
    VariableType("M", 0.02, "mira", (9.0, 19.5), 0.2, (150.0, 500.0), (2.0, 6.0), 4.0, 0.15),
    VariableType("SR", 0.06, "semiregular", (9.0, 19.0), 0.2, (30.0, 200.0), (0.1, 1.5), 5.0, 0.2),
    VariableType("L", 0.05, "irregular", (9.0, 19.0), 0.2, (5.0, 100.0), (0.05, 0.5), 4.0, 0.15),
    VariableType("ROT", 0.06, "sinusoid", (10.0, 21.0), 0.25, (0.3, 30.0), (0.02, 0.3), 8.0, 0.4),
    VariableType("YSO", 0.025, "irregular", (12.0, 21.0), 0.3, (2.0, 30.0), (0.15, 1.0), 2.0, 0.02),
    VariableType("UGDN", 0.05, "dwarf_nova", (15.0, 23.0), 0.3, (15.0, 400.0), (2.0, 6.0), 15.0, 0.6),
    VariableType("NOVA", 0.002, "nova", (8.0, 18.0), 0.3, (5.0, 100.0), (8.0, 13.0), 3.0, 0.05),
    VariableType("FLARE", 0.12, "flare", (13.0, 22.0), 0.3, (0.01, 0.06), (0.5, 4.5), 20.0, 0.7),
)
SHAPES = (
    "sinusoid",
    "pulsator",
    "contact",
    "detached",
    "mira",
    "semiregular",
    "irregular",
    "dwarf_nova",
    "nova",
    "flare",
)
ERUPTIVE = {
    SHAPES.index("dwarf_nova"): eruptive.dwarf_nova_offset,
    SHAPES.index("nova"): eruptive.nova_offset,
    SHAPES.index("flare"): eruptive.flare_offset,
}


def _log_uniform(rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> FloatArray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi)))


def power_law_magnitudes(
    rng: np.random.Generator, lo: FloatArray, hi: FloatArray, slope: FloatArray
) -> FloatArray:
    """Magnitudes with number counts ~ 10^(slope m) on [lo, hi] (inverse CDF, per element).

    Examples
    --------
    >>> m = power_law_magnitudes(np.random.default_rng(0), np.full(4000, 10.0), np.full(4000, 20.0),
    ...                          np.full(4000, 0.3))
    >>> bool(m.min() >= 10.0 and m.max() <= 20.0), round(float(np.mean(m > 19.0)), 1)   # half in the last mag
    (True, 0.5)
    """
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return np.log10(a + rng.random(np.shape(lo)) * (b - a)) / slope


def draw_variable_stars(
    rng: np.random.Generator, n: int, start_mjd: float = 58562.0, end_mjd: float = 59157.0
) -> dict[str, NDArray]:
    """Parameters of ``n`` variable stars (arrays keyed by name; ``subtype`` indexes VARIABLE_TYPES)."""
    types = VARIABLE_TYPES
    frac = np.array([t.fraction for t in types])
    subtype = rng.choice(len(types), size=n, p=frac / frac.sum())

    def col(get) -> FloatArray:  # per-object value of a per-type attribute
        return np.array([get(t) for t in types], dtype=np.float64)[subtype]

    shape = np.array([SHAPES.index(t.shape) for t in types])[subtype]
    p = {
        "subtype": subtype,
        "shape": shape,
        "key": draw_keys(rng, n),
        "mean_mag": power_law_magnitudes(
            rng, col(lambda t: t.mag_range[0]), col(lambda t: t.mag_range[1]), col(lambda t: t.mag_slope)
        ),
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
        # Eruptive types: epoch of the first outburst / the nova peak (before or during the survey),
        # rise time (novae) or flare decay time, nightly flare probability.
        "t0": rng.uniform(start_mjd - 150.0, end_mjd, n),
        "rise_d": rng.uniform(1.0, 5.0, n),
        "flare_night_p": _log_uniform(rng, np.full(n, 0.03), np.full(n, 0.5)),
    }
    is_flare = shape == SHAPES.index("flare")
    p["rise_d"] = np.where(is_flare, p["period_d"], p["rise_d"])
    is_nova = shape == SHAPES.index("nova")
    # A nova's magnitude column is its peak; its quiescence is ``amplitude`` fainter.
    p["mean_mag"] = np.where(is_nova, p["mean_mag"] + p["amplitude_mag"], p["mean_mag"])
    is_contact = shape == SHAPES.index("contact")
    p["secondary_ratio"] = np.where(is_contact, rng.uniform(0.7, 1.0, n), p["secondary_ratio"])
    is_mira = shape == SHAPES.index("mira")
    p["rise_fraction"] = np.where(is_mira, rng.uniform(0.35, 0.5, n), p["rise_fraction"])
    # Stochastic part: irregulars and YSOs are only a walk; Miras' maxima and semi-regulars wander.
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

    for code, offset in ERUPTIVE.items():
        m = shape == code
        if m.any():
            out[m] = offset(p, obj[m], t[m])
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
    stochastic part there is an independent draw from the walk's stationary distribution. Eruptive
    stars are quiescent in the reference: it is a deep stack, and a median rejects outbursts."""
    obj = np.arange(t_ref.size)
    ref = p["mean_mag"] + _periodic_offset(p, obj, t_ref) + p["drw_sigma"] * rng.standard_normal(t_ref.size)
    eruptive_star = np.isin(p["shape"], list(ERUPTIVE))
    return np.where(eruptive_star, p["mean_mag"], ref)
