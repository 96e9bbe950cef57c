"""Assemble the simulated sky: draw objects class by class, observe them with the survey, keep the
detected ones, and build the detections / objects / galaxies tables.

An object enters the data set only if the survey detected it at least once (as in the paper, whose
objects are GOTO detections cross-matched with catalogues), so candidates are drawn in chunks and
the detected ones kept, in draw order, until each class has its exact count. Every random number
comes from one seeded ``numpy`` generator per component (survey, galaxies, VS, SN, AGN, ids), so a
seed fixes every table exactly, and changing one component's model does not reshuffle the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lightcurve.context import galactic_lb
from trainer.simulator import agn, sky, supernovae, variables
from trainer.simulator.drw import draw_drw
from trainer.simulator.survey import SurveyConfig, SurveySchedule, build_schedule, detect, expand_exposures

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_N_GALAXIES",
    "DEFAULT_SEED",
    "PAPER_CLASS_COUNTS",
    "SIMULATOR_MODEL_VERSION",
    "SimulatedSky",
    "class_counts",
    "simulate",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

CLASS_NAMES = ("VS", "SN", "AGN")
#: The paper's data set (section 2.2): 99,201 labelled objects.
PAPER_CLASS_COUNTS = {"VS": 98457, "SN": 201, "AGN": 543}
DEFAULT_SEED = 2021
#: Version of the simulated-sky model: bump it whenever a change alters the tables a seed produces.
SIMULATOR_MODEL_VERSION = "2.3"
#: Background galaxies in the GLADE-like catalogue (hosts of SNe and AGN are added to these).
DEFAULT_N_GALAXIES = 400_000
MAX_CHUNK = 8000
FIRST_ACCEPTANCE_GUESS = {"VS": 0.3, "SN": 0.02, "AGN": 0.1}


def class_counts(n_objects: int | None = None) -> dict[str, int]:
    """Objects per class: the paper's exact counts by default, else its class fractions.

    Largest-remainder rounding, with at least one object per class.

    Examples
    --------
    >>> class_counts()
    {'VS': 98457, 'SN': 201, 'AGN': 543}
    >>> class_counts(2000)
    {'VS': 1985, 'SN': 4, 'AGN': 11}
    >>> class_counts(3)
    {'VS': 1, 'SN': 1, 'AGN': 1}
    """
    total = sum(PAPER_CLASS_COUNTS.values())
    if n_objects is None or n_objects == total:
        return dict(PAPER_CLASS_COUNTS)
    if n_objects < len(CLASS_NAMES):
        raise ValueError(f"n_objects must be at least {len(CLASS_NAMES)} (one per class), got {n_objects}")
    exact = np.array([PAPER_CLASS_COUNTS[c] for c in CLASS_NAMES], dtype=np.float64) * n_objects / total
    counts = np.maximum(np.floor(exact).astype(np.int64), 1)
    while counts.sum() < n_objects:  # hand out the remainder by largest fractional part
        counts[int(np.argmax(exact - counts))] += 1
    while counts.sum() > n_objects:  # only after the at-least-one floor: take from the largest class
        counts[int(np.argmax(counts))] -= 1
    return {c: int(k) for c, k in zip(CLASS_NAMES, counts, strict=True)}


@dataclass
class _Chunk:
    """Candidates of one class: per-object columns, host galaxies, and their detections."""

    columns: dict[str, NDArray]
    host_ra: FloatArray
    host_dec: FloatArray
    host_distance: FloatArray
    host_catalogued: NDArray[np.bool_]
    det_obj: IntArray
    det_mjd: FloatArray
    det_mag: FloatArray
    det_err: FloatArray


@dataclass
class _ClassSample:
    parts: list[_Chunk] = field(default_factory=list)
    n: int = 0


@dataclass(frozen=True)
class SimulatedSky:
    """The three tables, plus what the simulator knows about how they were made."""

    detections: pd.DataFrame
    objects: pd.DataFrame
    galaxies: pd.DataFrame
    provenance: dict


def _observe(
    rng: np.random.Generator,
    schedule: SurveySchedule,
    ra: FloatArray,
    dec: FloatArray,
    true_mag: Callable[[IntArray, FloatArray], FloatArray],
    reference_mag: FloatArray,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    obj, ex = expand_exposures(schedule, schedule.field_of(ra, dec))
    t = schedule.exposure_mjd[ex]
    mag, err, detected = detect(
        rng,
        true_mag(obj, t),
        reference_mag[obj],
        schedule.exposure_mag_limit[ex],
        schedule.exposure_residual[ex],
        schedule.config,
    )
    return obj[detected], t[detected], mag[detected], err[detected]


def _no_hosts(n: int) -> dict[str, NDArray]:
    return {
        "host_ra": np.full(n, np.nan),
        "host_dec": np.full(n, np.nan),
        "host_distance": np.full(n, np.nan),
        "host_catalogued": np.zeros(n, dtype=bool),
    }


def _variable_star_chunk(rng: np.random.Generator, n: int, schedule: SurveySchedule) -> _Chunk:
    cfg = schedule.config
    p = variables.draw_variable_stars(rng, n, cfg.start_mjd, cfg.end_mjd)
    ra, dec = sky.draw_galactic_positions(
        rng, p["scale_height_deg"], p["isotropic_fraction"], cfg.dec_min_deg
    )
    stochastic = np.flatnonzero(p["drw_sigma"] > 0)
    drw_row = np.full(n, -1, dtype=np.int64)
    drw_row[stochastic] = np.arange(stochastic.size)
    drw = draw_drw(
        rng, p["drw_tau_d"][stochastic], p["drw_sigma"][stochastic], cfg.start_mjd - 1, cfg.end_mjd + 2
    )
    t_ref = rng.uniform(cfg.start_mjd - 365.0, cfg.start_mjd - 30.0, n)
    ref = variables.variable_star_reference_magnitudes(rng, p, t_ref)
    det = _observe(
        rng,
        schedule,
        ra,
        dec,
        lambda obj, t: variables.variable_star_magnitudes(p, obj, t, drw, drw_row),
        ref,
    )
    shape_name = np.array(variables.SHAPES)[p["shape"]]
    periodic = ~np.isin(shape_name, ["irregular", "dwarf_nova", "nova", "flare"])
    columns = {
        "ra": ra,
        "dec": dec,
        "true_subtype": np.array([t.name for t in variables.VARIABLE_TYPES])[p["subtype"]],
        "true_mag": p["mean_mag"],
        "true_period_d": np.where(periodic, p["period_d"], np.nan),
        "true_amplitude_mag": p["amplitude_mag"],
        # Walk time-scale (irregular, YSO, SR, Mira), outburst cycle, nova t2 or flare decay.
        "true_timescale_d": np.where(
            p["drw_tau_d"] > 0, p["drw_tau_d"], np.where(periodic, np.nan, p["period_d"])
        ),
    }
    return _Chunk(columns, **_no_hosts(n), det_obj=det[0], det_mjd=det[1], det_mag=det[2], det_err=det[3])


def _first_detection(obj: IntArray, t: FloatArray, n: int) -> FloatArray:
    first = np.full(n, np.inf)
    np.minimum.at(first, obj, t)
    return first


def _supernova_chunk(rng: np.random.Generator, n: int, schedule: SurveySchedule) -> _Chunk:
    cfg = schedule.config
    host_ra, host_dec = sky.draw_extragalactic_positions(rng, n, cfg.dec_min_deg)
    _, b = galactic_lb(host_ra, host_dec)
    p = supernovae.draw_supernovae(rng, n, sky.galactic_extinction_mag(b), cfg.start_mjd, cfg.end_mjd)
    ra, dec = sky.offset_position(host_ra, host_dec, p["host_offset_arcsec"], p["host_position_angle"])
    catalogued = rng.random(n) < p["host_catalogue_factor"] * sky.catalogue_completeness(p["distance_mpc"])
    det = _observe(
        rng, schedule, ra, dec, lambda obj, t: supernovae.supernova_magnitudes(p, obj, t), np.full(n, np.inf)
    )
    # Unclassified candidates are not labelled: their detections are dropped, so they are never
    # accepted. A labelled SN's light curve ends SN_MAX_OBSERVED_D after its first detection (the
    # paper's SNe are observed < 100 d); cutting, rather than rejecting the long ones, keeps the
    # slow types (II-P plateaus, IIn) in the mix with the early light curve the model reads.
    first = _first_detection(det[0], det[1], n)
    det_keep = p["keep"][det[0]] & (det[1] - first[det[0]] < supernovae.SN_MAX_OBSERVED_D)
    columns = {
        "ra": ra,
        "dec": dec,
        "true_subtype": np.array([t.name for t in supernovae.SUPERNOVA_TYPES])[p["subtype"]],
        "true_mag": p["peak_mag"],
        "true_peak_mjd": p["peak_mjd"],
        "true_distance_mpc": p["distance_mpc"],
        "true_redshift": p["redshift"],
        "true_timescale_d": p["tau_fall_d"],
        "true_host_sep_arcsec": np.where(catalogued, p["host_offset_arcsec"], np.nan),
    }
    return _Chunk(columns, host_ra, host_dec, p["distance_mpc"], catalogued, *(a[det_keep] for a in det))


def _agn_chunk(rng: np.random.Generator, n: int, schedule: SurveySchedule) -> _Chunk:
    cfg = schedule.config
    host_ra, host_dec = sky.draw_extragalactic_positions(rng, n, cfg.dec_min_deg)
    p = agn.draw_agn(rng, n, cfg.start_mjd, cfg.end_mjd)
    ra, dec = sky.offset_position(host_ra, host_dec, p["nucleus_offset_arcsec"], p["host_position_angle"])
    seyfert = p["subtype"] == agn.AGN_SUBTYPES.index("Seyfert")
    catalogued = rng.random(n) < np.where(
        seyfert, sky.catalogue_completeness(p["distance_mpc"]), agn.QSO_IN_CATALOGUE_P
    )
    drw = draw_drw(rng, p["drw_tau_d"], p["drw_sigma"], cfg.start_mjd - 1, cfg.end_mjd + 2)
    reference = agn.agn_reference_magnitudes(rng, p)
    det = _observe(rng, schedule, ra, dec, lambda obj, t: agn.agn_magnitudes(p, obj, t, drw), reference)
    names = np.array(agn.AGN_SUBTYPES)[p["subtype"]]
    columns = {
        "ra": ra,
        "dec": dec,
        "true_subtype": np.where(p["single_flare"], np.char.add(names, "+flare"), names),
        "true_mag": p["mean_mag"],
        "true_amplitude_mag": p["drw_sigma"],
        "true_timescale_d": p["drw_tau_d"],
        "true_distance_mpc": p["distance_mpc"],
        "true_redshift": p["redshift"],
        "true_host_sep_arcsec": np.where(catalogued, p["nucleus_offset_arcsec"], np.nan),
    }
    return _Chunk(columns, host_ra, host_dec, p["distance_mpc"], catalogued, *det)


CHUNK_MAKERS: dict[str, Callable[[np.random.Generator, int, SurveySchedule], _Chunk]] = {
    "VS": _variable_star_chunk,
    "SN": _supernova_chunk,
    "AGN": _agn_chunk,
}


def _accept(chunk: _Chunk, want: int) -> tuple[_Chunk, int]:
    """Keep the first ``want`` candidates (in draw order) that have at least one detection."""
    n_det = np.bincount(chunk.det_obj, minlength=chunk.host_ra.size)
    kept = np.flatnonzero(n_det > 0)[:want]
    new_index = np.full(chunk.host_ra.size, -1, dtype=np.int64)
    new_index[kept] = np.arange(kept.size)
    rows = new_index[chunk.det_obj] >= 0
    return _Chunk(
        {k: v[kept] for k, v in chunk.columns.items()},
        chunk.host_ra[kept],
        chunk.host_dec[kept],
        chunk.host_distance[kept],
        chunk.host_catalogued[kept],
        new_index[chunk.det_obj[rows]],
        chunk.det_mjd[rows],
        chunk.det_mag[rows],
        chunk.det_err[rows],
    ), int(np.count_nonzero(n_det))


def _simulate_class(
    label: str, n: int, rng: np.random.Generator, schedule: SurveySchedule, progress: tqdm
) -> tuple[_ClassSample, int]:
    """Draw candidates of one class in chunks (sized from the acceptance so far) until ``n`` are
    detected; returns them and the number of candidates drawn."""
    sample = _ClassSample()
    acceptance = FIRST_ACCEPTANCE_GUESS[label]
    drawn = 0
    detected = 0
    while sample.n < n:
        size = int(np.clip(np.ceil((n - sample.n) / acceptance * 1.1) + 8, 16, MAX_CHUNK))
        part, n_detected = _accept(CHUNK_MAKERS[label](rng, size, schedule), n - sample.n)
        drawn += size
        detected += n_detected
        acceptance = max(detected / drawn, 1e-3)
        sample.parts.append(part)
        sample.n += part.host_ra.size
        progress.update(part.host_ra.size)
    return sample, drawn


def derive_ids(prefix: str, n: int) -> NDArray[np.str_]:
    width = max(6, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def simulate(
    n_objects: int | None = None,
    seed: int = DEFAULT_SEED,
    *,
    n_galaxies: int = DEFAULT_N_GALAXIES,
    survey: SurveyConfig | None = None,
    progress: bool = True,
    counts: dict[str, int] | None = None,
) -> SimulatedSky:
    """Simulate a GOTO-like labelled sky (see ``docs/data.md`` for the model and its statistics).

    Parameters
    ----------
    n_objects
        Total labelled objects; ``None`` gives the paper's 99,201 (98,457 VS, 201 SN, 543 AGN).
    seed
        Seed of every random number: the same seed gives identical tables.
    n_galaxies
        Background galaxies in the catalogue (the SN and AGN hosts that are catalogued are added).
    counts
        Objects per class instead of the paper's fractions (e.g. many SNe and AGN, to study the
        rare classes); ``n_objects`` is then ignored.
    """
    from tqdm import tqdm

    from trainer.data import derive_detection_ids

    if counts is None:
        counts = class_counts(n_objects)
    elif set(counts) != set(CLASS_NAMES) or min(counts.values()) < 1:
        raise ValueError(f"counts must give at least one object of each of {CLASS_NAMES}, got {counts}")
    counts = {c: int(counts[c]) for c in CLASS_NAMES}
    survey = survey or SurveyConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    rng_survey, rng_galaxies, rng_ids = streams[0], streams[1], streams[5]
    class_rng = dict(zip(CLASS_NAMES, streams[2:5], strict=True))

    schedule = build_schedule(rng_survey, survey)
    bg_ra, bg_dec, bg_dist = sky.draw_galaxy_catalogue(rng_galaxies, n_galaxies)

    samples: dict[str, _ClassSample] = {}
    candidates: dict[str, int] = {}
    with tqdm(
        total=sum(counts.values()),
        unit="obj",
        desc="simulate",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        for label in CLASS_NAMES:
            bar.set_description(f"simulate {label}")
            samples[label], candidates[label] = _simulate_class(
                label, counts[label], class_rng[label], schedule, bar
            )

    objects, det = _assemble_objects(samples)
    n_total = len(objects)
    # Ids carry no class information: objects are shuffled before numbering.
    order = rng_ids.permutation(n_total)
    objects = objects.iloc[order].reset_index(drop=True)
    rank = np.empty(n_total, dtype=np.int64)
    rank[order] = np.arange(n_total)
    objects.insert(0, "object_id", derive_ids("SIM", n_total))

    det_rank = rank[det["obj"]]
    sort = np.lexsort((det["mjd"], det_rank))
    mjd = np.round(det["mjd"][sort], 6)
    detections = pd.DataFrame(
        {
            "object_id": objects["object_id"].to_numpy()[det_rank[sort]],
            "detection_id": derive_detection_ids(mjd, "L"),
            "mjd": mjd,
            "mag": np.round(det["mag"][sort], 4),
            "mag_err": np.round(det["err"][sort], 4),
            "filter": "L",
        }
    )

    hosts = [
        (s.host_ra[s.host_catalogued], s.host_dec[s.host_catalogued], s.host_distance[s.host_catalogued])
        for part in samples.values()
        for s in part.parts
    ]
    g_ra = np.concatenate([bg_ra, *(h[0] for h in hosts)])
    g_dec = np.concatenate([bg_dec, *(h[1] for h in hosts)])
    g_dist = np.concatenate([bg_dist, *(h[2] for h in hosts)])
    g_order = rng_ids.permutation(g_ra.size)  # hosts must not be recognisable by position in the table
    galaxies = pd.DataFrame(
        {
            "galaxy_id": derive_ids("GAL", g_ra.size),
            "ra": np.round(g_ra[g_order], 7),
            "dec": np.round(g_dec[g_order], 7),
            "distance_mpc": np.round(g_dist[g_order], 2),
        }
    )
    provenance = {
        "simulator": "trainer.simulator",
        "simulator_model_version": SIMULATOR_MODEL_VERSION,
        "package_version": _package_version(),
        "seed": seed,
        "n_objects": n_total,
        "class_counts": counts,
        "candidates_drawn": candidates,
        "n_detections": len(detections),
        "n_galaxies": len(galaxies),
        "n_background_galaxies": int(n_galaxies),
        "survey": asdict(survey),
        "n_exposures": int(schedule.exposure_mjd.size),
    }
    return SimulatedSky(detections=detections, objects=objects, galaxies=galaxies, provenance=provenance)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("goto-classifier")
    except PackageNotFoundError:
        return "unknown"


def _assemble_objects(samples: dict[str, _ClassSample]) -> tuple[pd.DataFrame, dict[str, NDArray]]:
    frames = []
    det_obj, det_mjd, det_mag, det_err = [], [], [], []
    offset = 0
    for label, sample in samples.items():
        for part in sample.parts:
            frame = pd.DataFrame(part.columns)
            frame.insert(2, "label", label)
            frames.append(frame)
            det_obj.append(part.det_obj + offset)
            det_mjd.append(part.det_mjd)
            det_mag.append(part.det_mag)
            det_err.append(part.det_err)
            offset += len(frame)
    objects = pd.concat(frames, ignore_index=True)
    objects["ra"] = np.round(objects["ra"].to_numpy(), 7)
    objects["dec"] = np.round(objects["dec"].to_numpy(), 7)
    if "true_host_sep_arcsec" not in objects:
        objects["true_host_sep_arcsec"] = np.nan
    return objects, {
        "obj": np.concatenate(det_obj),
        "mjd": np.concatenate(det_mjd),
        "mag": np.concatenate(det_mag),
        "err": np.concatenate(det_err),
    }
