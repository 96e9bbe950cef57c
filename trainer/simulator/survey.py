"""A GOTO-like survey: nights, weather, Moon, fields, visits, exposures, errors and detection.

The paper's data come from the GOTO prototype on La Palma between 2019 March 20 and 2020 November 4,
in the single wide L band, with a depth of up to 20.5 mag in a 60 s exposure under dark skies. The
survey here reproduces what shapes a light curve in such data:

- the sky is tiled into ~30 deg^2 fields; a field is observable for ~8 months a year (while it is
  within ``season_half_width_deg`` of the anti-Sun in right ascension) and only north of dec -30;
- nights are lost to weather (a two-state Markov chain, so bad nights come in runs) and to
  technical downtime; the Moon makes the limiting magnitude brighter;
- each field has its own visit rate (the scheduler serves some fields more often than others), a
  visit takes 1-3 exposures about 100 s apart, and sometimes the field is revisited later that night;
- photometric errors grow towards the visit's limiting magnitude, and magnitudes scatter by them;
- a *detection* is an exposure whose difference image shows the source at >= 5 sigma: the source
  must be above the limit and its flux must differ from the reference image's flux by 5 sigma of the
  difference (photometric noise of both images plus a subtraction residual that scales with the
  reference flux). A supernova is absent from the reference, so it is detected whenever it is above
  the limit; a variable star or AGN is detected only when it differs enough from its reference state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SurveyConfig",
    "SurveySchedule",
    "build_schedule",
    "detect",
    "expand_exposures",
    "magnitude_error",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: 1.0857 = 2.5 / ln(10): a fractional flux error of x is a magnitude error of 1.0857 x.
MAG_PER_FRACTIONAL_FLUX = 2.5 / np.log(10.0)
#: Known new Moon (2019-03-06 16:04 UT) for the lunar phase.
NEW_MOON_MJD = 58548.669
SYNODIC_MONTH_D = 29.530589
#: March equinox 2019 (2019-03-20 21:58 UT): Sun at RA 0.
EQUINOX_MJD = 58562.915
TROPICAL_YEAR_D = 365.2422
OBLIQUITY_RAD = np.radians(23.439)
#: GOTO-North site latitude (Roque de los Muchachos), for the airmass at transit.
SITE_LATITUDE_DEG = 28.76


@dataclass(frozen=True)
class SurveyConfig:
    """Survey parameters. Defaults describe the GOTO prototype data set of the paper."""

    start_mjd: float = 58562.0  # 2019-03-20
    end_mjd: float = 59157.0  # 2020-11-04
    dec_min_deg: float = -30.0
    field_size_deg: float = 5.5
    #: A field is observable while its RA is within this angle of the anti-Sun's RA (~8 months a year).
    season_half_width_deg: float = 120.0
    #: Weather as a Markov chain: P(bad tonight | good last night), P(bad | bad). ~21 % of nights lost.
    p_bad_after_good: float = 0.12
    p_bad_after_bad: float = 0.55
    #: Technical downtime: this many blocks of 7-30 nights at random times.
    n_downtime_blocks: int = 2
    #: Per-field probability of a visit on an observable night: log-normal across fields, so the
    #: cadence ranges from a visit every ~6 to every ~25 nights in season (median ~15 with weather).
    #: Every class is drawn on the same fields, so no class has a cadence of its own.
    visit_prob_median: float = 0.085
    visit_prob_sigma_ln: float = 0.35
    visit_prob_max: float = 0.7
    #: If set, per-field visit probabilities are instead log-uniform over this range, e.g.
    #: (0.05, 0.7) for skies from CRTS-like (a visit every ~3 weeks) to ZTF-like (nightly) cadences.
    visit_prob_range: tuple[float, float] | None = None
    #: Exposures per visit 1, 2, 3, minutes apart (as in the real data). Mostly one: more same-night
    #: pairs would pull the pooled median gap below the paper's ~11 d (see docs/data.md).
    exposures_per_visit_p: tuple[float, float, float] = (0.85, 0.12, 0.03)
    exposure_spacing_d: tuple[float, float] = (0.0010, 0.0014)
    second_visit_p: float = 0.03
    #: Limiting magnitude (5 sigma) in a dark, clear, zenith exposure; Moon and airmass make it brighter.
    depth_dark_mag: float = 20.6
    depth_full_moon_penalty_mag: float = 1.1
    depth_night_scatter_mag: float = 0.2
    depth_visit_scatter_mag: float = 0.15
    extinction_mag_per_airmass: float = 0.15
    #: Calibration floor of the magnitude error; fraction of the error budget at the limit from source
    #: Poisson noise (the rest is sky noise).
    sys_err_mag: float = 0.02
    source_noise_fraction_at_limit: float = 0.2
    snr_threshold: float = 5.0
    #: Subtraction residual as a fraction of the reference flux: log-normal per visit (PSF matching,
    #: zero point); it is why a bright star must change by a few per cent to be detected.
    subtraction_residual_median: float = 0.025
    subtraction_residual_sigma_ln: float = 0.5
    #: The reference image is a deeper stack.
    reference_depth_gain_mag: float = 1.0
    #: Brighter than this a star saturates and its detections are flagged and not used.
    saturation_mag: float = 10.0


@dataclass(frozen=True)
class SurveySchedule:
    """All exposures of all fields, grouped by field (CSR layout) and in time order within a field.

    Exposures of field ``f`` are ``[offsets[f], offsets[f + 1])`` of the ``exposure_*`` arrays.
    """

    config: SurveyConfig
    band_dec_edges: FloatArray
    band_n_ra: IntArray
    band_first_field: IntArray
    offsets: IntArray
    exposure_mjd: FloatArray
    exposure_mag_limit: FloatArray
    exposure_residual: FloatArray

    @property
    def n_fields(self) -> int:
        return int(self.offsets.size - 1)

    def field_of(self, ra_deg: FloatArray, dec_deg: FloatArray) -> IntArray:
        """Field index of each position (equal-declination bands, RA cells of ~equal area)."""
        band = np.clip(
            np.searchsorted(self.band_dec_edges, dec_deg, side="right") - 1, 0, self.band_n_ra.size - 1
        )
        n_ra = self.band_n_ra[band]
        cell = np.minimum((np.asarray(ra_deg) % 360.0 / 360.0 * n_ra).astype(np.int64), n_ra - 1)
        return self.band_first_field[band] + cell


def _tiling(cfg: SurveyConfig) -> tuple[FloatArray, IntArray, IntArray, FloatArray, FloatArray]:
    n_bands = int(np.ceil(180.0 / cfg.field_size_deg))
    edges = np.linspace(-90.0, 90.0, n_bands + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    n_ra = np.maximum(1, np.round(360.0 * np.cos(np.radians(centres)) / cfg.field_size_deg)).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(n_ra)[:-1]]).astype(np.int64)
    field_dec = np.repeat(centres, n_ra)
    field_ra = np.concatenate([(np.arange(n) + 0.5) * 360.0 / n for n in n_ra])
    return edges, n_ra, first, field_ra, field_dec


def _weather_good(rng: np.random.Generator, n_nights: int, cfg: SurveyConfig) -> NDArray[np.bool_]:
    u = rng.random(n_nights)
    good = np.empty(n_nights, dtype=bool)
    bad = False
    for i in range(n_nights):  # a Markov chain: runs of bad weather
        bad = u[i] < (cfg.p_bad_after_bad if bad else cfg.p_bad_after_good)
        good[i] = not bad
    for _ in range(cfg.n_downtime_blocks):
        start = int(rng.integers(0, n_nights))
        good[start : start + int(rng.integers(7, 31))] = False
    return good


def _anti_sun_ra_deg(night_mjd: FloatArray) -> FloatArray:
    ecl_lon = 2.0 * np.pi * (night_mjd + 1.0 - EQUINOX_MJD) / TROPICAL_YEAR_D  # Sun's ecliptic longitude
    sun_ra = np.degrees(np.arctan2(np.cos(OBLIQUITY_RAD) * np.sin(ecl_lon), np.cos(ecl_lon)))
    return (sun_ra + 180.0) % 360.0


def build_schedule(rng: np.random.Generator, cfg: SurveyConfig | None = None) -> SurveySchedule:
    """Draw the whole survey: which fields were observed when, how deep, with how many exposures."""
    cfg = cfg or SurveyConfig()
    edges, n_ra, first, field_ra, field_dec = _tiling(cfg)
    n_fields = field_ra.size
    # Night N runs from the evening of MJD N to the morning of N + 1; the last night ends at end_mjd.
    nights = np.arange(np.floor(cfg.start_mjd), np.floor(cfg.end_mjd))
    good = _weather_good(rng, nights.size, cfg)
    moon = 0.5 * (1.0 - np.cos(2.0 * np.pi * (nights + 1.0 - NEW_MOON_MJD) / SYNODIC_MONTH_D))
    night_depth = (
        cfg.depth_dark_mag
        - cfg.depth_full_moon_penalty_mag * moon
        + rng.normal(0.0, cfg.depth_night_scatter_mag, nights.size)
    )

    d_ra = np.abs((field_ra[:, None] - _anti_sun_ra_deg(nights)[None, :] + 180.0) % 360.0 - 180.0)
    observable = (d_ra < cfg.season_half_width_deg) & good[None, :]
    observable &= (field_dec >= cfg.dec_min_deg - cfg.field_size_deg / 2)[:, None]
    if cfg.visit_prob_range is None:
        visit_p = np.minimum(
            cfg.visit_prob_median * np.exp(rng.normal(0.0, cfg.visit_prob_sigma_ln, n_fields)),
            cfg.visit_prob_max,
        )
    else:
        lo, hi = np.log(np.asarray(cfg.visit_prob_range, dtype=np.float64))
        visit_p = np.exp(rng.uniform(lo, hi, n_fields))
    visited = observable & (rng.random(observable.shape) < visit_p[:, None])
    field_idx, night_idx = np.nonzero(visited)  # row-major: grouped by field, nights increasing

    # Optional second visit the same night, 30-90 min later.
    twice = rng.random(field_idx.size) < cfg.second_visit_p
    v_field = np.concatenate([field_idx, field_idx[twice]])
    v_night = np.concatenate([night_idx, night_idx[twice]])
    v_time = nights[v_night] + rng.uniform(0.86, 1.16, v_night.size)  # local night, UT ~20:40-03:50
    v_time[field_idx.size :] = v_time[: field_idx.size][twice] + rng.uniform(0.02, 0.06, int(twice.sum()))
    airmass = 1.0 / np.cos(np.radians(np.abs(field_dec[v_field] - SITE_LATITUDE_DEG)))
    v_limit = (
        night_depth[v_night]
        - cfg.extinction_mag_per_airmass * (airmass - 1.0)
        + rng.normal(0.0, cfg.depth_visit_scatter_mag, v_night.size)
    )
    v_residual = cfg.subtraction_residual_median * np.exp(
        rng.normal(0.0, cfg.subtraction_residual_sigma_ln, v_night.size)
    )
    v_nexp = rng.choice(np.arange(1, 4), size=v_night.size, p=np.asarray(cfg.exposures_per_visit_p))

    # Exposures: each visit expanded to its 1-3 exposures ~100 s apart.
    e_visit = np.repeat(np.arange(v_night.size), v_nexp)
    e_rank = np.arange(e_visit.size) - np.repeat(np.cumsum(v_nexp) - v_nexp, v_nexp)
    spacing = rng.uniform(*cfg.exposure_spacing_d, e_visit.size)
    e_time = v_time[e_visit] + e_rank * spacing
    order = np.lexsort((e_time, v_field[e_visit]))
    e_visit, e_time = e_visit[order], e_time[order]
    counts = np.bincount(v_field[e_visit], minlength=n_fields)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SurveySchedule(
        config=cfg,
        band_dec_edges=edges,
        band_n_ra=n_ra,
        band_first_field=first,
        offsets=offsets,
        exposure_mjd=np.round(e_time, 6),
        exposure_mag_limit=v_limit[e_visit],
        exposure_residual=v_residual[e_visit],
    )


def expand_exposures(schedule: SurveySchedule, field: IntArray) -> tuple[IntArray, IntArray]:
    """Long format: for objects in ``field``, (object index, exposure index) of every exposure of
    their field, objects in order and exposures in time order within each object."""
    starts = schedule.offsets[field]
    counts = schedule.offsets[field + 1] - starts
    obj = np.repeat(np.arange(field.size), counts)
    within = np.arange(obj.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return obj, np.repeat(starts, counts) + within


def magnitude_error(mag: FloatArray, mag_limit: FloatArray, cfg: SurveyConfig) -> FloatArray:
    """1-sigma magnitude error of a source of magnitude ``mag`` in an exposure with 5-sigma limit
    ``mag_limit``: sky noise (error ~ 10^(0.4 dm)), source Poisson noise (~ 10^(0.2 dm)) and a floor.

    Examples
    --------
    >>> cfg = SurveyConfig()
    >>> round(float(magnitude_error(20.0, 20.0, cfg)), 3)   # at the limit: S/N = 5
    0.218
    >>> round(float(magnitude_error(13.0, 20.0, cfg)), 3)   # bright: the calibration floor
    0.02
    """
    sigma_at_limit = MAG_PER_FRACTIONAL_FLUX / cfg.snr_threshold
    dm = np.asarray(mag) - np.asarray(mag_limit)
    var = sigma_at_limit**2 * (
        cfg.source_noise_fraction_at_limit * 10.0 ** (0.4 * dm)
        + (1.0 - cfg.source_noise_fraction_at_limit) * 10.0 ** (0.8 * dm)
    )
    return np.sqrt(cfg.sys_err_mag**2 + var)


def detect(
    rng: np.random.Generator,
    true_mag: FloatArray,
    reference_mag: FloatArray,
    mag_limit: FloatArray,
    residual: FloatArray,
    cfg: SurveyConfig,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Observe sources: measured magnitude, reported error and whether the exposure is a detection.

    Parameters
    ----------
    true_mag
        The source's magnitude at the exposure.
    reference_mag
        The source's magnitude in the reference image; ``inf`` where it was absent (a supernova).
    mag_limit, residual
        The exposure's 5-sigma limit and subtraction residual (fraction of the reference flux).

    Returns
    -------
    mag, mag_err, detected
        ``mag`` is scattered by the error; ``mag_err`` is the error the pipeline reports (evaluated
        at the measured magnitude); ``detected`` is the 5-sigma difference-image detection.
    """
    # Noise is Gaussian in flux (in units of the exposure's limiting flux, so numbers stay O(1)):
    # a faint source scatters above the limit only as often as its true S/N allows.
    dm = np.minimum(true_mag - mag_limit, 15.0)
    flux_true = 10.0 ** (-0.4 * dm)
    flux = flux_true * (
        1.0
        + magnitude_error(mag_limit + dm, mag_limit, cfg)
        / MAG_PER_FRACTIONAL_FLUX
        * rng.standard_normal(dm.shape)
    )
    above_limit = flux >= 1.0  # measured S/N >= 5
    mag = mag_limit - 2.5 * np.log10(np.maximum(flux, 1e-6))
    mag_err = magnitude_error(mag, mag_limit, cfg)
    in_reference = np.isfinite(reference_mag)
    ref_dm = np.where(in_reference, reference_mag - mag_limit, 0.0)  # placeholder where absent
    ref_flux = np.where(in_reference, 10.0 ** (-0.4 * ref_dm), 0.0)
    ref_err = magnitude_error(mag_limit + ref_dm, mag_limit + cfg.reference_depth_gain_mag, cfg)
    var = ((flux * mag_err) ** 2 + (ref_flux * ref_err) ** 2) / MAG_PER_FRACTIONAL_FLUX**2 + (
        residual * ref_flux
    ) ** 2
    significant = np.abs(flux - ref_flux) >= cfg.snr_threshold * np.sqrt(var)
    detected = significant & above_limit & (mag > cfg.saturation_mag)
    return mag, mag_err, detected
