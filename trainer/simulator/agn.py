"""Active galactic nuclei: Seyferts and quasars as damped random walks, blazars with larger walks and
repeated flares, all in galaxy nuclei.

- Damped random walk (Kelly et al. 2009; MacLeod et al. 2010, ApJ 721, 1014, SDSS Stripe 82
  quasars): rest-frame time-scale log10(tau / d) ~ N(2.4, 0.3) (median ~250 d; MacLeod et al.'s
  tau distribution peaks at log tau ~ 2.4-2.6) and asymptotic structure function
  log10(SF_inf / mag) ~ N(-0.7, 0.2) (median 0.2 mag); the walk's rms is SF_inf / sqrt(2), and the
  observed time-scale is (1 + z) tau.
- Seyferts: nuclei of nearby galaxies (20-500 Mpc) whose host light dilutes the nuclear variability
  (host share of the flux 30-80 %), so a difference image sees only the nucleus change. Quasars and
  blazars are in the galaxy catalogue with probability ``QSO_IN_CATALOGUE_P`` (GLADE includes the
  SDSS quasar catalogue), at their own position.
- Blazars (about half of the CRTS AGN; Ruan et al. 2012, ApJ 760, 51 for their larger Stripe 82
  walks; Drake et al. 2009 for CRTS blazar outbursts): SF_inf ~0.5 mag, tau ~30-300 d, and
  repeated flares (1-4 per year, x1.5-6 in flux, rise 3-20 d, decay 10-50 d).
- A few Seyferts and quasars (5 %) have one flare (a tidal disruption or an accretion event), which
  looks like a supernova in a nucleus.
- Apparent mean magnitudes: number counts rising as 10^(0.3 m) from 16 to 21.5 mag (blazars from
  14), so detection favours bright, strongly varying nuclei.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from trainer.simulator.drw import DrwGrid
from trainer.simulator.events import draw_keys, hash_uniform
from trainer.simulator.supernovae import luminosity_distance_mpc, redshift_of_distance
from trainer.simulator.variables import power_law_magnitudes

__all__ = ["AGN_SUBTYPES", "agn_magnitudes", "agn_reference_magnitudes", "draw_agn"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

AGN_SUBTYPES = ("Seyfert", "QSO", "Blazar")
#: Shares before detection (detection then favours blazars, whose variability is largest).
AGN_SUBTYPE_FRACTIONS = (0.45, 0.45, 0.10)
AGN_SINGLE_FLARE_FRACTION = 0.05
#: Share of quasars and blazars in the galaxy catalogue: GLADE includes the SDSS DR12 quasar
#: catalogue (Dalya et al. 2018; Paris et al. 2017), ~9,400 deg^2 of the ~30,000 the survey sees.
QSO_IN_CATALOGUE_P = 0.3
LOG_TAU_REST = (2.4, 0.3)
LOG_SF_INF = (-0.7, 0.2)
BLAZAR_LOG_SF_INF = (-0.3, 0.2)
BLAZAR_TAU_REST_D = (30.0, 300.0)
BLAZAR_FLARES_PER_YEAR = (1.0, 4.0)


def draw_agn(rng: np.random.Generator, n: int, start_mjd: float, end_mjd: float) -> dict[str, NDArray]:
    """Parameters of ``n`` candidate AGN (``subtype`` indexes :data:`AGN_SUBTYPES`)."""
    subtype = rng.choice(3, size=n, p=np.asarray(AGN_SUBTYPE_FRACTIONS))
    seyfert, blazar = subtype == 0, subtype == 2
    distance = np.where(seyfert, 20.0 + 480.0 * rng.random(n) ** (1.0 / 3.0), np.nan)
    z = np.where(seyfert, redshift_of_distance(np.nan_to_num(distance)), rng.uniform(0.1, 2.5, n))
    distance = np.where(seyfert, distance, luminosity_distance_mpc(z))
    mean_mag = power_law_magnitudes(rng, np.where(blazar, 14.0, 16.0), np.full(n, 21.5), np.full(n, 0.3))
    tau_rest = np.where(
        blazar,
        np.exp(rng.uniform(np.log(BLAZAR_TAU_REST_D[0]), np.log(BLAZAR_TAU_REST_D[1]), n)),
        10.0 ** rng.normal(*LOG_TAU_REST, n),
    )
    sf_inf = 10.0 ** np.where(blazar, rng.normal(*BLAZAR_LOG_SF_INF, n), rng.normal(*LOG_SF_INF, n))
    sigma = np.minimum(sf_inf / np.sqrt(2.0), 1.5)
    single_flare = ~blazar & (rng.random(n) < AGN_SINGLE_FLARE_FRACTION)
    flares_per_year = np.where(
        blazar, rng.uniform(*BLAZAR_FLARES_PER_YEAR, n), np.where(single_flare, 1.0, 0.0)
    )
    return {
        "subtype": subtype,
        "key": draw_keys(rng, n),
        "distance_mpc": distance,
        "redshift": z,
        "mean_mag": mean_mag,
        "host_fraction": np.where(seyfert, rng.uniform(0.3, 0.8, n), 0.0),
        "drw_tau_d": np.clip((1.0 + z) * tau_rest, 10.0, 5000.0),
        "drw_sigma": sigma,
        "single_flare": single_flare,
        "flare_mjd": rng.uniform(start_mjd - 30.0, end_mjd, n),
        "flare_slot_d": 365.25 / np.maximum(flares_per_year, 1e-9),
        "flare_flux_ratio": np.where(single_flare, rng.uniform(0.5, 3.0, n), np.where(blazar, 5.0, 0.0)),
        "flare_rise_d": np.where(blazar, rng.uniform(3.0, 20.0, n), rng.uniform(8.0, 25.0, n)),
        "flare_decay_d": np.where(blazar, rng.uniform(10.0, 50.0, n), rng.uniform(20.0, 80.0, n)),
        "nucleus_offset_arcsec": rng.rayleigh(0.3, n),  # astrometric scatter about the nucleus
        "host_position_angle": rng.uniform(0.0, 2.0 * np.pi, n),
    }


def _flare_shape(dt: FloatArray, rise: FloatArray, decay: FloatArray) -> FloatArray:
    return np.where(dt < 0.0, np.exp(-0.5 * (dt / rise) ** 2), np.exp(-np.maximum(dt, 0.0) / decay))


def _flare_flux(p: dict[str, NDArray], obj: IntArray, t: FloatArray) -> FloatArray:
    """Flux of flares relative to the mean nuclear flux."""
    rise, decay = p["flare_rise_d"][obj], p["flare_decay_d"][obj]
    single = p["single_flare"][obj]
    out = np.where(
        single, p["flare_flux_ratio"][obj] * _flare_shape(t - p["flare_mjd"][obj], rise, decay), 0.0
    )
    blazar = p["subtype"][obj] == AGN_SUBTYPES.index("Blazar")
    if blazar.any():
        b = np.flatnonzero(blazar)
        key, slot_d, tb = p["key"][obj[b]], p["flare_slot_d"][obj[b]], t[b]
        k0 = np.floor(tb / slot_d).astype(np.int64)
        flux = np.zeros(b.size)
        for k in (k0 - 1, k0, k0 + 1):  # a flare's wings reach into the neighbouring slots
            peak = (k + hash_uniform(key, k, 21)) * slot_d
            ratio = 0.5 + (p["flare_flux_ratio"][obj[b]] - 0.5) * hash_uniform(key, k, 22) ** 2
            flux += ratio * _flare_shape(tb - peak, rise[b], decay[b])
        out[b] = flux
    return out


def agn_magnitudes(p: dict[str, NDArray], obj: IntArray, t: FloatArray, drw: DrwGrid) -> FloatArray:
    """True L magnitude of AGN ``obj[i]`` at ``t[i]``: host + nucleus (walk and flares, in flux)."""
    host = p["host_fraction"][obj]
    nucleus = 10.0 ** (-0.4 * drw.at(obj, t)) + _flare_flux(p, obj, t)
    return p["mean_mag"][obj] - 2.5 * np.log10(host + (1.0 - host) * nucleus)


def agn_reference_magnitudes(rng: np.random.Generator, p: dict[str, NDArray]) -> FloatArray:
    """Magnitude in the reference image, taken long before: an independent draw from the walk's
    stationary distribution, diluted by the host, without flares."""
    host = p["host_fraction"]
    nucleus = 10.0 ** (-0.4 * p["drw_sigma"] * rng.standard_normal(host.size))
    return p["mean_mag"] - 2.5 * np.log10(host + (1.0 - host) * nucleus)
