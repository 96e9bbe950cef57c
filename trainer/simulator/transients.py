"""Extragalactic sources: supernovae in (mostly catalogued) host galaxies and AGN in galaxy nuclei.

Supernovae
    Type drawn with volumetric rates (core collapse three times as common as Ia per volume); peak
    absolute magnitude from the type's luminosity function (Ia -19.3 +/- 0.3; II -17.0 +/- 1.0;
    Ibc -17.5 +/- 0.9); distance uniform in volume, so the survey's depth, not a chosen magnitude
    distribution, sets the apparent peaks; extinction from the host and the Milky Way. The light
    curve is the Bazin et al. (2009) form (exponential rise and decline), with time-scales stretched
    by (1 + z). The paper reports SNe observed for less than 100 d; the sample is drawn conditioned on
    that, i.e. on being brighter than 21.0 mag for less than ``SN_MAX_VISIBLE_D`` (bright, slow,
    nearby events are rejected and redrawn). SNe sit a few kpc from their host's centre (exponential
    disc); the host is in the galaxy catalogue with a probability that falls with distance.

AGN
    Damped random walk in magnitude (time-scale ~100-500 d, rms ~0.1-0.3 mag; MacLeod et al. 2010),
    apparent mean magnitudes rising in number towards the survey limit, and for a minority a flare
    (a rise of weeks and a decay of months) that looks like a supernova. Seyferts sit in the nuclei
    of nearby galaxies (within ~1 arcsec of the catalogue position when the host is catalogued);
    quasars have no catalogued host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.simulator.drw import DrwGrid

__all__ = [
    "AGN_FLARE_FRACTION",
    "SN_MAX_VISIBLE_D",
    "SUPERNOVA_TYPES",
    "SupernovaType",
    "agn_magnitudes",
    "bazin_magnitude",
    "draw_agn",
    "draw_supernovae",
    "supernova_visible_days",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Hubble constant for the small redshifts involved (z <= 0.3): z ~ d H0 / c.
H0_KM_S_MPC = 70.0
C_KM_S = 299792.458
#: Kpc per arcsec per Mpc of distance (small angles).
KPC_PER_ARCSEC_PER_MPC = 1e3 / (180.0 / np.pi * 3600.0)
#: Supernovae are kept only if brighter than SN_VISIBILITY_MAG for less than this many days.
SN_MAX_VISIBLE_D = 95.0
SN_VISIBILITY_MAG = 20.8
SN_MAX_DISTANCE_MPC = 1200.0
SN_CLASSIFICATION_MAG = 18.5
AGN_FLARE_FRACTION = 0.08
AGN_SEYFERT_FRACTION = 0.75
AGN_TAU_REST_MEDIAN_D = 120.0
AGN_SIGMA_MEDIAN_MAG = 0.25


@dataclass(frozen=True)
class SupernovaType:
    name: str
    volumetric_fraction: float
    abs_mag: tuple[float, float]
    rise_tau_d: tuple[float, float]
    fall_tau_d: tuple[float, float]
    host_extinction_scale_mag: float


SUPERNOVA_TYPES: tuple[SupernovaType, ...] = (
    SupernovaType("Ia", 0.25, (-19.3, 0.3), (3.5, 5.5), (18.0, 32.0), 0.1),
    SupernovaType("II", 0.60, (-17.0, 1.0), (3.0, 8.0), (20.0, 50.0), 0.3),
    SupernovaType("Ibc", 0.15, (-17.5, 0.9), (2.5, 5.0), (15.0, 30.0), 0.4),
)


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


def supernova_visible_days(
    m_peak: FloatArray, tau_rise: FloatArray, tau_fall: FloatArray, limit_mag: float = SN_VISIBILITY_MAG
) -> FloatArray:
    """Days each supernova spends brighter than ``limit_mag`` (0 if it never gets there)."""
    grid = np.arange(-150.0, 400.0, 0.5)
    mags = bazin_magnitude(grid[None, :], 0.0, m_peak[:, None], tau_rise[:, None], tau_fall[:, None])
    return (mags < limit_mag).sum(axis=1) * 0.5


def draw_supernovae(
    rng: np.random.Generator, n: int, extinction_mag: FloatArray, start_mjd: float, end_mjd: float
) -> dict[str, NDArray]:
    """Parameters of ``n`` candidate supernovae, given the Milky Way extinction along their lines of
    sight. ``keep`` is False for candidates outside the labelled sample: not spectroscopically
    classified, or visible for ``SN_MAX_VISIBLE_D`` or longer."""
    types = SUPERNOVA_TYPES
    frac = np.array([t.volumetric_fraction for t in types])
    subtype = rng.choice(len(types), size=n, p=frac / frac.sum())

    def col(get) -> FloatArray:
        return np.array([get(t) for t in types], dtype=np.float64)[subtype]

    distance = SN_MAX_DISTANCE_MPC * rng.random(n) ** (1.0 / 3.0)
    stretch = 1.0 + distance * H0_KM_S_MPC / C_KM_S
    abs_mag = rng.normal(col(lambda t: t.abs_mag[0]), col(lambda t: t.abs_mag[1]))
    host_ext = rng.exponential(col(lambda t: t.host_extinction_scale_mag))
    m_peak = abs_mag + 5.0 * np.log10(distance) + 25.0 + host_ext + extinction_mag
    tau_rise = stretch * rng.uniform(col(lambda t: t.rise_tau_d[0]), col(lambda t: t.rise_tau_d[1]))
    tau_fall = stretch * rng.uniform(col(lambda t: t.fall_tau_d[0]), col(lambda t: t.fall_tau_d[1]))
    t_peak = rng.uniform(start_mjd - 40.0, end_mjd + 15.0, n)
    # Host: exponential disc (surface density ~ r exp(-r/h)), projected by a random inclination.
    r_kpc = rng.gamma(2.0, rng.uniform(1.5, 4.0, n)) * rng.uniform(0.3, 1.0, n)
    offset_arcsec = r_kpc / (distance * KPC_PER_ARCSEC_PER_MPC)
    visible = np.zeros(n)
    # Labels come from spectroscopic classifications (TNS), which reach ~19 mag: fainter SNe are
    # found but rarely classified, so they are not in a labelled set.
    classified = rng.random(n) < spectroscopic_completeness(m_peak)
    could_see = (m_peak < SN_VISIBILITY_MAG) & classified
    visible[could_see] = supernova_visible_days(m_peak[could_see], tau_rise[could_see], tau_fall[could_see])
    return {
        "subtype": subtype,
        "distance_mpc": distance,
        "peak_mag": m_peak,
        "peak_mjd": t_peak,
        "tau_rise_d": tau_rise,
        "tau_fall_d": tau_fall,
        "host_offset_arcsec": offset_arcsec,
        "host_position_angle": rng.uniform(0.0, 2.0 * np.pi, n),
        "visible_days": visible,
        "keep": could_see & (visible < SN_MAX_VISIBLE_D),
    }


def spectroscopic_completeness(peak_mag: FloatArray) -> FloatArray:
    """Probability that a supernova peaking at ``peak_mag`` gets a spectroscopic classification
    (half at 19.0 mag, almost all brighter than 18)."""
    return 1.0 / (1.0 + np.exp((np.asarray(peak_mag) - SN_CLASSIFICATION_MAG) / 0.3))


def supernova_magnitudes(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """True L magnitude of supernova ``obj[i]`` at ``t[i]``."""
    return bazin_magnitude(
        t, p["peak_mjd"][obj], p["peak_mag"][obj], p["tau_rise_d"][obj], p["tau_fall_d"][obj]
    )


def _power_law_magnitudes(rng: np.random.Generator, n: int, lo: float, hi: float, slope: float) -> FloatArray:
    """Magnitudes with number counts ~ 10^(slope m) on [lo, hi] (inverse CDF)."""
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def draw_agn(rng: np.random.Generator, n: int, start_mjd: float, end_mjd: float) -> dict[str, NDArray]:
    """Parameters of ``n`` candidate AGN (Seyferts in nearby galaxies and quasars)."""
    seyfert = rng.random(n) < AGN_SEYFERT_FRACTION
    distance = np.where(seyfert, 20.0 + 480.0 * rng.random(n) ** (1.0 / 3.0), np.nan)
    stretch = 1.0 + np.where(seyfert, distance * H0_KM_S_MPC / C_KM_S, rng.uniform(0.3, 2.0, n))
    mean_mag = _power_law_magnitudes(rng, n, 16.0, 21.0, 0.3)
    tau = np.clip(stretch * AGN_TAU_REST_MEDIAN_D * np.exp(rng.normal(0.0, 0.6, n)), 30.0, 1500.0)
    sigma = np.clip(AGN_SIGMA_MEDIAN_MAG * np.exp(rng.normal(0.0, 0.4, n)), 0.06, 0.6)
    flare = rng.random(n) < AGN_FLARE_FRACTION
    return {
        "subtype": np.where(seyfert, 0, 1),  # AGN_SUBTYPES order
        "distance_mpc": distance,
        "mean_mag": mean_mag,
        "drw_tau_d": tau,
        "drw_sigma": sigma,
        # Reference image taken long before: an independent draw from the walk's distribution.
        "reference_mag": mean_mag + sigma * rng.standard_normal(n),
        "flare": flare,
        "flare_mjd": rng.uniform(start_mjd - 30.0, end_mjd, n),
        "flare_flux_ratio": np.where(flare, rng.uniform(0.5, 3.0, n), 0.0),
        "flare_rise_d": rng.uniform(8.0, 25.0, n),
        "flare_decay_d": rng.uniform(20.0, 80.0, n),
        "nucleus_offset_arcsec": rng.rayleigh(0.3, n),  # astrometric scatter about the nucleus
        "host_position_angle": rng.uniform(0.0, 2.0 * np.pi, n),
    }


AGN_SUBTYPES = ("Seyfert", "QSO")


def agn_magnitudes(p: dict[str, NDArray], obj: IntArray, t: FloatArray, drw: DrwGrid) -> FloatArray:
    """True L magnitude of AGN ``obj[i]`` at ``t[i]``: walk plus, for some, a flare (in flux)."""
    mag = p["mean_mag"][obj] + drw.at(obj, t)
    dt = t - p["flare_mjd"][obj]
    shape = np.where(
        dt < 0.0,
        np.exp(-0.5 * (dt / p["flare_rise_d"][obj]) ** 2),
        np.exp(-np.maximum(dt, 0.0) / p["flare_decay_d"][obj]),
    )
    return mag - 2.5 * np.log10(1.0 + p["flare_flux_ratio"][obj] * shape)
