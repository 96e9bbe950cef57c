"""Supernovae: types in their magnitude-limited proportions, peak magnitudes from published
luminosity functions, distances from a volume, light curves with per-type rise and decline, host
offsets.

- Type shares in a magnitude-limited survey: the ZTF Bright Transient Survey (Fremling et al. 2020,
  ApJ 895, 32; Perley et al. 2020, ApJ 904, 35), as measured on its 1,505 typed SNe in
  ``../shared/data/real_dev/ztf_bts``: Ia 77.6 %, II 13.6 %, Ibc 5.3 %, IIn 2.3 %, SLSN 1.1 %. The
  II are split II-P : II-L : IIb as 70 : 17 : 13 from the LOSS sample (Li et al. 2011, MNRAS 412,
  1441; II-L doubled for their brighter peaks in a magnitude-limited sample).
- Peak absolute magnitudes (B, Gaussian, extinction-corrected): Richardson et al. (2014, AJ 147,
  118); SLSN -21.5 +/- 0.7 (Gal-Yam 2012, Science 337, 927). In a magnitude-limited sample the
  observed absolute magnitudes are these shifted brighter by the Malmquist bias 0.6 ln(10) sigma^2
  (at most 1 mag). Only distances (time dilation, host offsets, catalogued hosts) depend on it.
- Distances from a volume: in Euclidean space a magnitude-limited sample has apparent peak
  magnitudes distributed as 10^(0.6 m) whatever the luminosity function, so the apparent peak is
  drawn from that law and the distance follows from it, the absolute magnitude and the extinction
  (host: exponential per type; Milky Way: cosecant law in b). Time-scales stretch by (1 + z).
- Light curves: Bazin et al. (2009) rise and decline with rest-frame time-scales per type (rise to
  peak: Ia ~18 d, Firth et al. 2015; CC ~7-15 d, Gall et al. 2015; SLSN 25-50 d, Nicholl et al. 2015),
  and for II-P a plateau of 80-120 d and a drop to the radioactive tail (Anderson et al. 2014,
  ApJ 786, 67).
- Labels come from spectroscopic classifications (TNS), complete to ~18 mag and rare beyond 19
  (Fremling et al. 2020), so fainter SNe are found but not labelled.
- Hosts: an exponential disc (offsets of a few kpc); SLSN hosts are compact dwarfs, rarely
  catalogued.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.simulator.variables import power_law_magnitudes

__all__ = [
    "SN_MAX_OBSERVED_D",
    "SUPERNOVA_TYPES",
    "SupernovaType",
    "bazin_magnitude",
    "draw_supernovae",
    "luminosity_distance_mpc",
    "plateau_magnitude",
    "redshift_of_distance",
    "spectroscopic_completeness",
    "supernova_magnitudes",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

C_KM_S = 299792.458
H0_KM_S_MPC = 70.0
#: Kpc per arcsec per Mpc of distance (small angles).
KPC_PER_ARCSEC_PER_MPC = 1e3 / (180.0 / np.pi * 3600.0)
#: The paper: SNe "are typically observed no longer than 100 d": a labelled SN's light curve ends
#: this many days after its first detection (applied after observation, in ``generate``).
SN_MAX_OBSERVED_D = 99.0
SN_CLASSIFICATION_MAG = 18.2
SN_CLASSIFICATION_WIDTH_MAG = 0.3


@dataclass(frozen=True)
class SupernovaType:
    name: str
    #: Share of SNe in a magnitude-limited survey (ZTF BTS).
    magnitude_limited_share: float
    #: Peak absolute magnitude: Gaussian (mean, sd) of the volume-limited population (Richardson
    #: et al. 2014).
    abs_mag: tuple[float, float]
    #: Rest-frame Bazin time-scales (uniform ranges, d).
    rise_tau_d: tuple[float, float]
    fall_tau_d: tuple[float, float]
    host_extinction_scale_mag: float
    shape: str = "bazin"
    #: Probability that the host is in the galaxy catalogue when at a catalogued distance.
    host_catalogue_factor: float = 1.0


SUPERNOVA_TYPES: tuple[SupernovaType, ...] = (
    SupernovaType("Ia", 0.776, (-19.25, 0.51), (3.5, 5.5), (18.0, 32.0), 0.1),
    SupernovaType("II-P", 0.095, (-16.75, 0.98), (1.5, 3.0), (80.0, 120.0), 0.3, "plateau"),
    SupernovaType("II-L", 0.023, (-17.98, 0.90), (2.0, 4.0), (25.0, 40.0), 0.3),
    SupernovaType("IIb", 0.018, (-16.99, 0.92), (2.5, 4.5), (15.0, 30.0), 0.3),
    SupernovaType("IIn", 0.023, (-18.53, 1.36), (4.0, 10.0), (40.0, 120.0), 0.2),
    SupernovaType("Ibc", 0.053, (-17.45, 1.12), (2.5, 5.0), (15.0, 30.0), 0.4),
    SupernovaType("SLSN", 0.011, (-21.5, 0.7), (8.0, 16.0), (30.0, 70.0), 0.1, "bazin", 0.2),
)
#: Apparent peak magnitudes (after extinction) are drawn on this range with counts ~ 10^(0.6 m);
#: the faint end is past the survey limit, the bright end rarer than one SN per survey.
SN_APPARENT_PEAK_RANGE = (12.0, 21.0)
MALMQUIST_FACTOR = 0.6 * np.log(10.0)
#: The shift is capped: the broad sigmas of IIn and Ibc come from tails of the volume sample, and a
#: magnitude-limited IIn sample peaks at -19.2 (Nyholm et al. 2020, A&A 637, A73), not -21.
MALMQUIST_MAX_SHIFT_MAG = 1.0
SHAPES = ("bazin", "plateau")


def redshift_of_distance(distance_mpc: FloatArray) -> FloatArray:
    """Redshift of a luminosity distance, to second order (q0 = -0.55): d_L = cz/H0 (1 + 0.775 z).

    Examples
    --------
    >>> [round(float(z), 3) for z in redshift_of_distance(np.array([100.0, 1000.0, 4000.0]))]
    [0.023, 0.202, 0.628]
    """
    a = 0.5 * (1.0 + 0.55)  # (1 - q0) / 2
    x = np.asarray(distance_mpc) * H0_KM_S_MPC / C_KM_S
    return (np.sqrt(1.0 + 4.0 * a * x) - 1.0) / (2.0 * a)


def luminosity_distance_mpc(z: FloatArray) -> FloatArray:
    """Inverse of :func:`redshift_of_distance`.

    Examples
    --------
    >>> round(float(redshift_of_distance(luminosity_distance_mpc(np.array([1.5])))[0]), 6)
    1.5
    """
    return C_KM_S / H0_KM_S_MPC * np.asarray(z) * (1.0 + 0.5 * (1.0 + 0.55) * np.asarray(z))


def bazin_magnitude(
    t: FloatArray, t_peak: FloatArray, m_peak: FloatArray, tau_rise: FloatArray, tau_fall: FloatArray
) -> FloatArray:
    """Bazin et al. (2009) light curve in magnitudes, normalised to ``m_peak`` at ``t_peak``.

    Flux ~ exp(-(t - t0)/tau_fall) / (1 + exp(-(t - t0)/tau_rise)), whose maximum is at
    t0 + tau_rise ln(tau_fall/tau_rise - 1). Evaluated in logs so that no exponential overflows.

    Examples
    --------
    >>> float(bazin_magnitude(np.array([60.0]), 60.0, 18.0, 4.0, 25.0)[0])
    18.0
    >>> late = bazin_magnitude(np.array([160.0, 161.0]), 60.0, 18.0, 4.0, 25.0)
    >>> round(float(late[1] - late[0]), 4)   # the tail declines at 2.5/ln(10)/tau_fall mag per day
    0.0434
    """
    t0 = t_peak - tau_rise * np.log(tau_fall / tau_rise - 1.0)

    def log_flux(x: FloatArray) -> FloatArray:
        return -(x - t0) / tau_fall - np.logaddexp(0.0, -(x - t0) / tau_rise)

    return m_peak - 2.5 / np.log(10.0) * (log_flux(t) - log_flux(t_peak))


def plateau_magnitude(
    t: FloatArray, t_peak: FloatArray, m_peak: FloatArray, tau_rise: FloatArray, plateau_d: FloatArray
) -> FloatArray:
    """A II-P light curve: a rise (time-scale ``tau_rise``), a plateau declining 0.008 mag/d for
    ``plateau_d`` days after peak, a 2 mag drop over ~2 weeks, then the Co-56 tail (0.0098 mag/d).

    Examples
    --------
    >>> m = plateau_magnitude(np.array([0.0, 50.0, 150.0]), 0.0, 17.0, 2.0, 100.0)
    >>> [round(float(x), 2) for x in m]
    [17.0, 17.4, 20.29]
    """
    dt = np.asarray(t) - t_peak
    rise = np.where(
        dt < 0.0, 2.5 / np.log(10.0) * np.logaddexp(0.0, -dt / tau_rise) - 2.5 * np.log10(2.0), 0.0
    )
    after = np.maximum(dt, 0.0)
    drop = 2.0 / (1.0 + np.exp(-(after - plateau_d) / 3.0)) - 2.0 / (1.0 + np.exp(plateau_d / 3.0))
    tail = 0.0098 * np.maximum(after - plateau_d, 0.0)
    plateau = 0.008 * np.minimum(after, plateau_d)
    return m_peak + rise + plateau + drop + tail


def spectroscopic_completeness(peak_mag: FloatArray) -> FloatArray:
    """Probability that a supernova peaking at ``peak_mag`` gets a spectroscopic classification
    (half at 18.7 mag, almost all brighter than 18, few fainter than 19.5)."""
    return 1.0 / (1.0 + np.exp((np.asarray(peak_mag) - SN_CLASSIFICATION_MAG) / SN_CLASSIFICATION_WIDTH_MAG))


def draw_supernovae(
    rng: np.random.Generator, n: int, extinction_mag: FloatArray, start_mjd: float, end_mjd: float
) -> dict[str, NDArray]:
    """Parameters of ``n`` candidate supernovae, given the Milky Way extinction along their lines of
    sight. ``keep`` is False for candidates that would not be labelled (not classified)."""
    types = SUPERNOVA_TYPES
    share = np.array([t.magnitude_limited_share for t in types])
    subtype = rng.choice(len(types), size=n, p=share / share.sum())

    def col(get) -> FloatArray:
        return np.array([get(t) for t in types], dtype=np.float64)[subtype]

    lo, hi = SN_APPARENT_PEAK_RANGE
    m_peak = power_law_magnitudes(rng, np.full(n, lo), np.full(n, hi), np.full(n, 0.6))
    sigma = col(lambda t: t.abs_mag[1])
    shift = np.minimum(MALMQUIST_FACTOR * sigma**2, MALMQUIST_MAX_SHIFT_MAG)
    abs_mag = rng.normal(col(lambda t: t.abs_mag[0]) - shift, sigma)
    host_ext = rng.exponential(col(lambda t: t.host_extinction_scale_mag))
    # K-correction is ignored: L (400-700 nm) is wide and z is mostly < 0.2.
    distance = np.maximum(10.0 ** ((m_peak - abs_mag - host_ext - extinction_mag - 25.0) / 5.0), 1.0)
    z = redshift_of_distance(distance)
    stretch = 1.0 + z
    tau_rise = stretch * rng.uniform(col(lambda t: t.rise_tau_d[0]), col(lambda t: t.rise_tau_d[1]))
    tau_fall = stretch * rng.uniform(col(lambda t: t.fall_tau_d[0]), col(lambda t: t.fall_tau_d[1]))
    t_peak = rng.uniform(start_mjd - 60.0, end_mjd + 20.0, n)
    # Host: exponential disc (surface density ~ r exp(-r/h)), projected by a random inclination.
    r_kpc = rng.gamma(2.0, rng.uniform(1.5, 4.0, n)) * rng.uniform(0.3, 1.0, n)
    slsn = subtype == [t.name for t in types].index("SLSN")
    r_kpc = np.where(slsn, r_kpc * 0.3, r_kpc)  # compact dwarf hosts
    offset_arcsec = r_kpc / (distance * KPC_PER_ARCSEC_PER_MPC)
    classified = rng.random(n) < spectroscopic_completeness(m_peak)
    return {
        "subtype": subtype,
        "shape": np.array([SHAPES.index(t.shape) for t in types])[subtype],
        "distance_mpc": distance,
        "redshift": z,
        "peak_mag": m_peak,
        "peak_mjd": t_peak,
        "tau_rise_d": tau_rise,
        "tau_fall_d": tau_fall,
        "host_offset_arcsec": offset_arcsec,
        "host_position_angle": rng.uniform(0.0, 2.0 * np.pi, n),
        "host_catalogue_factor": col(lambda t: t.host_catalogue_factor),
        "keep": classified,
    }


def supernova_magnitudes(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """True L magnitude of supernova ``obj[i]`` at ``t[i]``."""
    args = (t, p["peak_mjd"][obj], p["peak_mag"][obj], p["tau_rise_d"][obj], p["tau_fall_d"][obj])
    plateau = p["shape"][obj] == SHAPES.index("plateau")
    out = bazin_magnitude(*args)
    if plateau.any():
        # For II-P the "fall" time-scale column holds the plateau length.
        out[plateau] = plateau_magnitude(*(a[plateau] for a in args))
    return out
