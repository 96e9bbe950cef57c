"""The GOTO-like simulator: class counts, determinism, the table contract, the paper's statistics and
the documented per-class targets (a 20k-object sky), the literature subtypes, and the physics of its
pieces (detection, eruptive variables, supernova light curves, AGN walks and flares)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from lightcurve.context import GalaxyCatalog
from lightcurve.types import derive_detection_id
from trainer.data import load_tables
from trainer.simulator import PAPER_CLASS_COUNTS, class_counts, eruptive, simulate, simulate_command
from trainer.simulator.agn import AGN_SUBTYPES, agn_magnitudes, draw_agn
from trainer.simulator.drw import draw_drw
from trainer.simulator.events import hash_uniform
from trainer.simulator.supernovae import (
    SN_MAX_OBSERVED_D,
    SUPERNOVA_TYPES,
    bazin_magnitude,
    draw_supernovae,
    plateau_magnitude,
    supernova_magnitudes,
)
from trainer.simulator.survey import SurveyConfig, build_schedule, detect, magnitude_error
from trainer.simulator.variables import VARIABLE_TYPES
from trainer.survey_stats import (
    PROFILE_TARGETS,
    check_tolerances,
    class_profile,
    first_points_table,
    summary_statistics,
)

N_SMALL = 3000
N_LARGE = 20_000
SEED = 11


@pytest.fixture(scope="module")
def sky():
    return simulate(N_SMALL, SEED, progress=False)


@pytest.fixture(scope="module")
def stats(sky):
    sep = GalaxyCatalog(sky.galaxies["ra"], sky.galaxies["dec"]).nearest_separation_arcsec(
        sky.objects["ra"], sky.objects["dec"]
    )
    return summary_statistics(sky.detections, sky.objects, sep)


@pytest.fixture(scope="module")
def large_sky():
    return simulate(N_LARGE, SEED, progress=False)


#: The paper's fractions give a 20k sky only ~40 SNe and ~110 AGN, too few for stable medians, so
#: the per-class targets are measured on a sky with more of the rare classes.
BALANCED_COUNTS = {"VS": 8000, "SN": 1500, "AGN": 1500}


@pytest.fixture(scope="module")
def large_profile():
    sky = simulate(seed=SEED, counts=BALANCED_COUNTS, progress=False)
    table = first_points_table(sky.detections, sky.objects)
    return table, class_profile(table), class_profile(table, "true_subtype")


# ------------------------------------------------------------------------------------ class counts


def test_default_size_is_the_papers_exact_class_counts():
    assert class_counts() == {"VS": 98457, "SN": 201, "AGN": 543}
    assert class_counts(99201) == class_counts(None) == PAPER_CLASS_COUNTS


@pytest.mark.parametrize("n", [3, 4, 10, 100, 2000, 12345, 1_000_000])
def test_other_sizes_keep_the_fractions_with_one_of_each(n):
    counts = class_counts(n)
    assert sum(counts.values()) == n
    assert min(counts.values()) >= 1
    if n >= 1000:
        for c, k in counts.items():
            assert abs(k - n * PAPER_CLASS_COUNTS[c] / 99201) <= 1


def test_fewer_objects_than_classes_is_an_error():
    with pytest.raises(ValueError, match="at least 3"):
        class_counts(2)


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_tables(sky):
    again = simulate(N_SMALL, SEED, progress=False)
    for name in ("detections", "objects", "galaxies"):
        pd.testing.assert_frame_equal(getattr(sky, name), getattr(again, name))


def test_counts_override_the_papers_fractions():
    sky = simulate(seed=3, counts={"VS": 50, "SN": 20, "AGN": 30}, n_galaxies=1000, progress=False)
    assert sky.objects["label"].value_counts().to_dict() == {"VS": 50, "AGN": 30, "SN": 20}
    with pytest.raises(ValueError, match="at least one"):
        simulate(seed=3, counts={"VS": 5, "SN": 0, "AGN": 1}, progress=False)


def test_another_seed_gives_another_sky(sky):
    other = simulate(N_SMALL, SEED + 1, progress=False)
    assert not np.array_equal(other.objects["ra"].to_numpy(), sky.objects["ra"].to_numpy())
    assert len(other.detections) != len(sky.detections)


# ------------------------------------------------------------------------------------ table contract


def test_tables_follow_the_contract(sky):
    det, obj, gal = sky.detections, sky.objects, sky.galaxies
    assert list(det.columns) == ["object_id", "detection_id", "mjd", "mag", "mag_err", "filter"]
    assert {"object_id", "ra", "dec", "label"} <= set(obj.columns)
    assert "host_sep_arcsec" not in obj.columns  # the trainer must cross-match the catalogue
    assert all(c.startswith("true_") for c in obj.columns if c not in ("object_id", "ra", "dec", "label"))
    assert {"ra", "dec"} <= set(gal.columns)
    assert obj["label"].value_counts().to_dict() == class_counts(N_SMALL)
    assert obj["object_id"].is_unique and set(det["object_id"]) == set(obj["object_id"])
    assert not det.duplicated(["object_id", "detection_id"]).any()
    for row in det.sample(200, random_state=0).itertuples():
        assert row.detection_id == derive_detection_id(row.object_id, row.mjd, row.filter)
    assert (det["filter"] == "L").all()
    assert det["mjd"].between(58562.0, 59157.5).all()
    assert det["mag"].between(10.0, 21.5).all() and (det["mag_err"] > 0).all()
    assert obj["dec"].min() >= -30.0 and obj["ra"].between(0.0, 360.0, inclusive="left").all()


def test_ids_do_not_reveal_the_class(sky):
    # Ids are numbered after a shuffle: each class is spread over the whole id range.
    rank = pd.Series(np.arange(len(sky.objects)), index=sky.objects["object_id"])
    for label in ("SN", "AGN"):
        ranks = rank[sky.objects.loc[sky.objects["label"] == label, "object_id"]].to_numpy()
        assert ranks.min() < len(rank) / 3 and ranks.max() > 2 * len(rank) / 3


def test_catalogued_hosts_are_in_the_galaxy_table(sky):
    hosted = sky.objects[sky.objects["true_host_sep_arcsec"].notna()]
    assert len(hosted) > 0
    sep = GalaxyCatalog(sky.galaxies["ra"], sky.galaxies["dec"]).nearest_separation_arcsec(
        hosted["ra"], hosted["dec"]
    )
    # The nearest galaxy is the host (or a chance neighbour even closer).
    assert np.all(sep <= hosted["true_host_sep_arcsec"].to_numpy() + 1e-3)


# ------------------------------------------------------------------------------------ paper statistics


def test_statistics_match_the_paper_at_small_size(stats):
    by = stats["by_class"]
    assert abs(stats["median_points"] - 6) <= 1
    assert abs(stats["median_gap_d"] - 11) <= 3
    assert by["SN"]["duration_d"]["max"] < 100
    assert by["VS"]["duration_d"]["q75"] > 300
    # Fig. 1: VS brighter on average, SN and AGN fainter (but VS over the whole range: see below).
    assert by["VS"]["mean_of_mean_mag"] + 0.5 < min(
        by["SN"]["mean_of_mean_mag"], by["AGN"]["mean_of_mean_mag"]
    )
    # Fig. 3: VS concentrated to the plane, SN/AGN away from it and more often near a galaxy.
    assert by["VS"]["fraction_abs_b_over_10deg"] < 0.6
    assert by["SN"]["fraction_abs_b_over_10deg"] > 0.8 and by["AGN"]["fraction_abs_b_over_10deg"] > 0.8
    assert by["VS"]["fraction_host_within_60arcsec"] < 0.05
    n_sn, n_agn = by["SN"]["n"], by["AGN"]["n"]
    hosted = sum(by[c]["n"] * by[c]["fraction_host_within_60arcsec"] for c in ("SN", "AGN"))
    assert hosted / (n_sn + n_agn) > 0.3
    # Heavy-tailed numbers of points: single detections and long light curves both exist.
    assert stats["fraction_single_point"] > 0.03 and by["VS"]["points"]["max"] > 30


def test_hard_cases_are_present(large_sky):
    from lightcurve.context import galactic_lb

    obj = large_sky.objects
    per = large_sky.detections.groupby("object_id").agg(
        n=("mag", "size"), mean=("mag", "mean"), std=("mag", "std")
    )
    per = obj.join(per, on="object_id")
    _, b = galactic_lb(obj["ra"].to_numpy(), obj["dec"].to_numpy())
    vs = (obj["label"] == "VS").to_numpy()
    assert np.sum(vs & (np.abs(b) > 30)) > 0.1 * vs.sum()  # variables far from the plane
    quiet = vs & (per["n"] >= 3).to_numpy() & (per["std"] < 0.03).to_numpy()
    assert quiet.sum() > 0.02 * vs.sum()  # variables that vary little
    faint_few = (per["n"] <= 3) & per["mean"].between(18.5, 20.5)
    assert (faint_few & (obj["label"] == "SN")).any() and (faint_few & (obj["label"] == "AGN")).any()
    extragalactic = obj["label"] != "VS"
    assert (extragalactic & obj["true_host_sep_arcsec"].isna()).any()  # without a catalogued host


# ------------------------------------------------------------------------------------ the command


def test_simulate_command_writes_loadable_csv_with_provenance(tmp_path, capsys):
    args = argparse.Namespace(out=str(tmp_path / "sim"), n_objects=300, seed=5, format="csv")
    assert simulate_command(args) == 0
    out = tmp_path / "sim"
    expected = {"detections.csv", "objects.csv", "galaxies.csv", "provenance.json"}
    assert {p.name for p in out.iterdir()} == expected
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 5 and prov["n_objects"] == 300
    assert prov["class_counts"] == class_counts(300)
    assert {"simulator_model_version", "created_utc", "summary_statistics", "paper_checks"} <= set(prov)
    tables = load_tables(out)
    assert len(tables.objects) == 300 and tables.provenance["simulator"]["seed"] == 5
    assert "wrote 300 objects" in capsys.readouterr().err


def test_simulate_command_reports_bad_size(tmp_path, capsys):
    args = argparse.Namespace(out=str(tmp_path), n_objects=1, seed=5, format="parquet")
    assert simulate_command(args) == 2
    assert "at least 3" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ physics


def test_errors_grow_towards_the_limit():
    cfg = SurveyConfig()
    mags = np.linspace(12.0, 21.0, 50)
    err = magnitude_error(mags, np.full(50, 20.0), cfg)
    assert np.all(np.diff(err) > 0)
    assert err[0] == pytest.approx(cfg.sys_err_mag, abs=0.002)
    at_limit = np.hypot(2.5 / np.log(10) / cfg.snr_threshold, cfg.sys_err_mag)  # S/N 5, plus the floor
    assert float(magnitude_error(20.0, 20.0, cfg)) == pytest.approx(at_limit, rel=1e-9)


def test_detection_needs_change_from_the_reference_or_absence_from_it():
    cfg = SurveyConfig()
    rng = np.random.default_rng(0)
    n = 20000
    limit, residual = np.full(n, 20.0), np.full(n, cfg.subtraction_residual_median)
    steady = np.full(n, 15.0)
    _, _, detected = detect(rng, steady, steady, limit, residual, cfg)
    assert detected.mean() < 1e-3  # a constant star does not appear in difference images
    _, _, detected = detect(rng, steady - 0.5, steady, limit, residual, cfg)
    assert detected.mean() > 0.99  # a 0.5 mag brightening does
    _, _, detected = detect(rng, np.full(n, 18.0), np.full(n, np.inf), limit, residual, cfg)
    assert detected.mean() > 0.99  # a new source well above the limit is always seen
    _, _, detected = detect(rng, np.full(n, 21.5), np.full(n, np.inf), limit, residual, cfg)
    assert detected.mean() < 1e-3  # and one well below it never


def test_schedule_has_seasons_and_multi_exposure_visits():
    schedule = build_schedule(np.random.default_rng(3))
    t = schedule.exposure_mjd
    assert t.min() >= 58562.0 and t.max() < 59157.5
    # A field far from the Sun-avoidance boundary: observed, with a gap of months once a year.
    field = int(np.argmax(np.diff(schedule.offsets)))
    times = t[schedule.offsets[field] : schedule.offsets[field + 1]]
    gaps = np.diff(times)
    assert gaps.max() > 60  # a seasonal gap
    assert (gaps < 0.01).any()  # exposures minutes apart within a visit
    assert schedule.exposure_mag_limit.max() < 21.5 and np.median(schedule.exposure_mag_limit) > 19.5


def test_cadence_can_be_drawn_over_a_range():
    default = build_schedule(np.random.default_rng(3))
    ranged = build_schedule(np.random.default_rng(3), SurveyConfig(visit_prob_range=(0.05, 0.7)))
    per_field = np.diff(ranged.offsets)
    observed = per_field[per_field > 0]
    # From CRTS-like to ZTF-like: an order of magnitude between the sparsest and densest fields.
    assert np.quantile(observed, 0.9) > 5 * np.quantile(observed, 0.1)
    assert ranged.exposure_mjd.size > default.exposure_mjd.size


def test_supernova_light_curves_rise_to_the_peak_and_fade():
    rng = np.random.default_rng(1)
    p = draw_supernovae(rng, 20000, np.zeros(20000), 58562.0, 59157.0)
    for shape in (0, 1):  # Bazin and II-P plateau
        i = int(np.flatnonzero(p["shape"] == shape)[0])
        t = p["peak_mjd"][i] + np.array([-10.0, 0.0, 10.0, 200.0])
        m = supernova_magnitudes(p, np.full(4, i), t)
        assert m[1] == pytest.approx(p["peak_mag"][i]) and m[0] > m[1] and m[3] > m[2] >= m[1]
    # Labelled (classified) SNe are the bright ones: spectroscopic completeness falls past ~18.5 mag.
    assert np.median(p["peak_mag"][p["keep"]]) < 19.0 < np.median(p["peak_mag"])


def test_ii_p_has_a_plateau_then_a_drop():
    t = np.array([0.0, 40.0, 80.0, 130.0])
    m = plateau_magnitude(t, 0.0, 17.0, 2.0, 100.0)
    assert m[2] - m[0] < 1.0  # nearly flat for the plateau
    assert m[3] - m[2] > 1.5  # then the drop to the tail
    late = bazin_magnitude(np.array([160.0, 161.0]), 60.0, 18.0, 4.0, 25.0)
    assert late[1] - late[0] == pytest.approx(2.5 / np.log(10) / 25.0, rel=1e-3)


def test_supernova_types_cover_the_literature_mix():
    names = {t.name for t in SUPERNOVA_TYPES}
    assert {"Ia", "II-P", "II-L", "IIn", "Ibc", "SLSN"} <= names
    # Drawn in their magnitude-limited proportions (ZTF BTS): Ia about three quarters, then II.
    rng = np.random.default_rng(4)
    p = draw_supernovae(rng, 50000, np.zeros(50000), 58562.0, 59157.0)
    kept = np.array([t.name for t in SUPERNOVA_TYPES])[p["subtype"][p["keep"]]]
    share = {n: float(np.mean(kept == n)) for n in names}
    assert 0.70 < share["Ia"] < 0.85 and 0.07 < share["II-P"] < 0.15 and share["SLSN"] > 0.003
    # Distances follow from the luminosity function: SLSNe lie far beyond Ia, II-P nearer.
    dist = {n: np.median(p["distance_mpc"][p["keep"]][kept == n]) for n in ("Ia", "II-P", "SLSN")}
    assert dist["II-P"] < dist["Ia"] < dist["SLSN"]


def test_dwarf_nova_outbursts_recur_and_return_to_quiescence():
    n = 1
    p = {
        "key": np.array([12345], dtype=np.uint64),
        "period_d": np.array([50.0]),
        "t0": np.array([0.0]),
        "amplitude_mag": np.array([4.0]),
    }
    t = np.arange(0.0, 1000.0, 0.25)
    off = eruptive.dwarf_nova_offset(p, np.zeros(t.size, dtype=np.int64), t)
    assert off.min() <= -3.0 and off.max() == 0.0
    in_outburst = off < -1.0
    starts = np.flatnonzero(in_outburst[1:] & ~in_outburst[:-1])
    assert 14 <= starts.size <= 22  # ~one outburst per 50-d cycle over 1000 d
    assert in_outburst.mean() < 0.5 * n  # quiescent most of the time


def test_flares_last_minutes_and_are_seen_by_exposures_of_one_visit():
    p = {
        "key": np.arange(200, dtype=np.uint64),
        "flare_night_p": np.full(200, 0.5),
        "amplitude_mag": np.full(200, 3.0),
        "rise_d": np.full(200, 0.03),
    }
    obj = np.repeat(np.arange(200), 2)
    t = np.tile([59000.95, 59000.9512], 200)  # two exposures 100 s apart
    off = eruptive.flare_offset(p, obj, t).reshape(200, 2)
    assert np.all(off <= 0.0)
    flaring = off[:, 0] < -0.1
    assert 0.05 < flaring.mean() < 0.6
    assert np.all(off[flaring, 1] < -0.05)  # the same flare, seen by both exposures
    next_day = eruptive.flare_offset(p, obj, t + 3.0).reshape(200, 2)
    assert not np.array_equal(next_day[:, 0] < -0.1, flaring)  # another night, other flares


def test_nova_declines_two_magnitudes_in_t2():
    p = {
        "t0": np.array([100.0]),
        "amplitude_mag": np.array([11.0]),
        "period_d": np.array([20.0]),
        "rise_d": np.array([2.0]),
    }
    off = eruptive.nova_offset(p, np.zeros(4, dtype=np.int64), np.array([90.0, 100.0, 120.0, 400.0]))
    assert off[0] == 0.0 and off[1] == pytest.approx(-11.0) and off[2] == pytest.approx(-9.0)
    assert off[3] == 0.0  # back to quiescence long after


def test_event_hash_is_deterministic_and_uniform():
    key = np.arange(100000, dtype=np.uint64)
    a = hash_uniform(key, np.full(key.size, 7), 1)
    assert np.array_equal(a, hash_uniform(key, np.full(key.size, 7), 1))
    assert not np.array_equal(a, hash_uniform(key, np.full(key.size, 8), 1))
    assert abs(a.mean() - 0.5) < 0.01 and a.min() >= 0.0 and a.max() < 1.0


def test_agn_flare_brightens_and_walk_is_stationary():
    rng = np.random.default_rng(2)
    p = draw_agn(rng, 400, 58562.0, 59157.0)
    quasar = np.flatnonzero(p["subtype"] == AGN_SUBTYPES.index("QSO"))
    p["single_flare"][:] = True
    p["flare_flux_ratio"][:] = 1.0  # every AGN flares, doubling its nuclear flux at the flare peak
    drw = draw_drw(rng, p["drw_tau_d"], np.zeros(400), 58500.0, 59200.0)  # walk switched off
    at_peak = agn_magnitudes(p, quasar, p["flare_mjd"][quasar], drw)
    np.testing.assert_allclose(p["mean_mag"][quasar] - at_peak, 2.5 * np.log10(2.0), atol=1e-9)
    # MacLeod et al. (2010): median SF_inf ~0.2 mag for quasars; blazars vary more.
    sf = np.sqrt(2.0) * p["drw_sigma"]
    blazar = p["subtype"] == AGN_SUBTYPES.index("Blazar")
    assert 0.15 < np.median(sf[~blazar]) < 0.25 and np.median(sf[blazar]) > 2 * np.median(sf[~blazar])
    walk = draw_drw(rng, np.full(3000, 100.0), np.full(3000, 0.2), 0.0, 500.0)
    assert walk.values[:, -1].std() == pytest.approx(0.2, rel=0.1)
    lag = walk.values[:, 200] - walk.values[:, 0]  # 100 d apart: structure function sqrt(2(1-e^-1)) sigma
    assert lag.std() == pytest.approx(0.2 * np.sqrt(2 * (1 - np.exp(-1))), rel=0.1)


# ------------------------------------------------------------------------------------ per-class targets


@pytest.mark.parametrize("target", PROFILE_TARGETS, ids=lambda t: f"{t.label}-{t.statistic}")
def test_class_statistics_meet_the_documented_targets(large_profile, target):
    _, profile, _ = large_profile
    value = profile[target.label][target.statistic]
    assert target.holds(profile), (
        f"{target.label} {target.statistic} = {value:.2f}, want {target.low}-{target.high}"
    )


def test_paper_checks_hold_at_20k(large_sky):
    sep = GalaxyCatalog(large_sky.galaxies["ra"], large_sky.galaxies["dec"]).nearest_separation_arcsec(
        large_sky.objects["ra"], large_sky.objects["dec"]
    )
    stats = summary_statistics(large_sky.detections, large_sky.objects, sep)
    failed = [c.name for c in check_tolerances(stats) if not c.ok]
    assert not failed
    # Fig. 3: SNe and AGN each more often within 60" of a catalogue galaxy than VS.
    host = {c: stats["by_class"][c]["fraction_host_within_60arcsec"] for c in ("VS", "SN", "AGN")}
    assert host["SN"] > 0.5 and host["AGN"] > 0.15 and host["VS"] < 0.05


def test_new_subtypes_are_present(large_sky, large_profile):
    present = set(large_sky.objects["true_subtype"])
    for name in ("EW", "EA", "RRAB", "DSCT", "DCEP", "M", "SR", "L", "YSO", "UGDN", "NOVA", "FLARE"):
        assert name in present, name
    assert {"Ia", "QSO", "Blazar"} <= present
    _, _, by_subtype = large_profile  # 1,500 SNe and AGN: every type appears
    for name in ("Ia", "II-P", "II-L", "IIb", "IIn", "Ibc", "SLSN", "Seyfert", "QSO", "Blazar"):
        assert name in by_subtype, name
    assert {t.name for t in VARIABLE_TYPES} >= {"UGDN", "NOVA", "FLARE", "YSO"}


def test_eruptive_variables_are_faint_and_vary_by_magnitudes(large_profile):
    # What the model must learn from them: faint, large-amplitude new sources can be variable stars.
    table, _, by_subtype = large_profile
    assert by_subtype["UGDN"]["mean_mag"] > 18.0 and by_subtype["NOVA"]["mean_mag"] > 18.0
    vs = table[table["label"] == "VS"]
    assert (vs["amplitude_mag"] > 1.0).mean() > 0.15
    assert ((vs["mean_mag"] > 18.5) & (vs["amplitude_mag"] > 1.0)).mean() > 0.03


def test_every_labelled_supernova_is_observed_for_less_than_the_cut(large_profile):
    table, _, _ = large_profile
    assert table.loc[table["label"] == "SN", "span_d"].max() < SN_MAX_OBSERVED_D


def test_cadence_does_not_give_the_class_away(large_profile):
    # Points per light curve and gaps overlap across classes: medians within a factor of ~2.
    _, profile, _ = large_profile
    points = [profile[c]["points"] for c in ("VS", "SN", "AGN")]
    gaps = [profile[c]["median_gap_d"] for c in ("VS", "SN", "AGN")]
    assert max(points) <= 2 * min(points)
    assert max(gaps) <= 3.5 * min(gaps)
