"""The survey-table loader: real GOTO data, validation errors that name file/row/column, drop counts."""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import pandas as pd
import pytest

from lightcurve.types import derive_detection_id
from trainer.data import (
    DataValidationError,
    derive_detection_ids,
    host_separation_arcsec,
    load_tables,
    object_context,
    write_tables,
)

GOOD_DETECTIONS = pd.DataFrame(
    {
        "object_id": ["A1", "A1", "A1", "B2", "B2", "C3"],
        "mjd": [58600.1, 58610.2, 58620.3, 58605.5, 58606.5, 58700.0],
        "mag": [18.0, 18.3, 18.9, 15.2, 15.4, 19.5],
        "mag_err": [0.05, 0.06, 0.08, 0.02, 0.02, 0.15],
        "filter": ["L"] * 6,
    }
)
GOOD_OBJECTS = pd.DataFrame(
    {
        "object_id": ["A1", "B2", "C3"],
        "ra": [10.0, 200.0, 300.0],
        "dec": [20.0, -10.0, 45.0],
        "label": ["SN", "VS", "AGN"],
    }
)


def write_csv(tmp_path, detections=GOOD_DETECTIONS, objects=GOOD_OBJECTS, galaxies=None):
    detections.to_csv(tmp_path / "detections.csv", index=False)
    objects.to_csv(tmp_path / "objects.csv", index=False)
    if galaxies is not None:
        galaxies.to_csv(tmp_path / "galaxies.csv", index=False)
    return tmp_path


def with_value(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    out = frame.copy().astype({column: object})
    out.loc[row, column] = value
    return out


# ------------------------------------------------------------------------------------ real data


def test_real_goto_examples_load(real_goto_dir):
    tables = load_tables(real_goto_dir)
    assert list(tables.objects["object_id"]) == ["GOTO_IRAS18547+1254", "GOTO_SN2019euw"]
    assert list(tables.objects["label"]) == ["VS", "SN"]
    assert tables.objects["label_original"].tolist() == ["varstar", "sn"]  # extra column kept
    assert tables.galaxies is None
    counts = tables.detections.groupby("object_id").size()
    assert counts.to_dict() == {"GOTO_IRAS18547+1254": 7, "GOTO_SN2019euw": 8}
    assert tables.detections["mjd"].dtype == np.float64
    # Detection ids derived exactly as the service derives them.
    for row in tables.detections.itertuples():
        assert row.detection_id == derive_detection_id(row.object_id, row.mjd, row.filter)
    # Sorted by object then time.
    for _, det in tables.detections.groupby("object_id"):
        assert np.all(np.diff(det["mjd"].to_numpy()) > 0)
    assert tables.provenance["files"]["detections"]["rows_read"] == 15
    assert len(tables.provenance["files"]["objects"]["sha256"]) == 64


def test_real_goto_context_without_catalogue_is_nan_with_warning(real_goto_dir, caplog):
    tables = load_tables(real_goto_dir)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        ctx = object_context(tables)
    assert ctx["host_sep_arcsec"].isna().all()
    assert "no galaxy catalogue" in caplog.text
    # IRAS 18547+1254 lies near the Galactic plane, SN 2019euw well away from it.
    assert abs(ctx.loc[0, "gal_b_deg"]) < 10 < abs(ctx.loc[1, "gal_b_deg"])


# ------------------------------------------------------------------------------------ detection ids


def test_vectorised_detection_ids_equal_the_core_function():
    rng = np.random.default_rng(0)
    mjd = np.concatenate(
        [
            rng.uniform(30000, 100000, 5000),
            np.round(rng.uniform(58000, 60000, 2000), 6),
            np.round(rng.uniform(58000, 60000, 2000), 7),  # half-way rounding cases
            [58605.1791485, 58605.0000005, 59000.9999999, 58605.179148],
        ]
    )
    filters = rng.choice(["L", "R", "g_ztf"], mjd.size)
    got = derive_detection_ids(mjd, filters)
    expected = [derive_detection_id("X", float(t), str(f)) for t, f in zip(mjd, filters, strict=True)]
    assert got.tolist() == expected


# ------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("mag_err", -0.1, "column mag_err: must be > 0 (got -0.1)"),
        ("mag_err", 0.0, "column mag_err: must be > 0 (got 0)"),
        ("mag_err", 7.0, "column mag_err: must be <= 5 (got 7)"),
        ("mag", 99.0, "column mag: must be <= 35 (got 99)"),
        ("mag", "", "column mag: missing value"),
        ("mag", "inf", "column mag: must be finite"),
        ("mjd", "yesterday", "column mjd: not a number (got 'yesterday')"),
        ("mjd", 1200.0, "column mjd: must be >= 30000 (got 1200)"),
        ("object_id", "has space", "column object_id: must be 1-64 characters"),
        ("filter", "L band", "column filter: must be 1-16 characters"),
    ],
)
def test_bad_detection_names_file_row_and_column(tmp_path, column, value, message):
    write_csv(tmp_path, detections=with_value(GOOD_DETECTIONS, 3, column, value))
    with pytest.raises(DataValidationError) as err:
        load_tables(tmp_path)
    text = str(err.value)
    assert text.startswith(f"detections.csv row 4, {message}"), text
    assert "1 invalid rows" in text


def test_error_lists_earliest_rows_and_counts_all(tmp_path):
    det = with_value(GOOD_DETECTIONS, 4, "mag", 99.0)
    det = with_value(det, 1, "mag_err", -1.0)
    write_csv(tmp_path, detections=det)
    with pytest.raises(DataValidationError) as err:
        load_tables(tmp_path)
    text = str(err.value)
    assert text.index("row 2, column mag_err") < text.index("row 5, column mag")
    assert "2 invalid rows" in text


def test_error_at_row_17_of_a_longer_file(tmp_path):
    det = pd.DataFrame(
        {"object_id": "A1", "mjd": 58600.0 + np.arange(30), "mag": 18.0, "mag_err": 0.05, "filter": "L"}
    )
    det.loc[16, "mag_err"] = -0.1
    write_csv(tmp_path, detections=det, objects=GOOD_OBJECTS.iloc[:1])
    expected = "detections.csv row 17, column mag_err: must be > 0 (got -0.1)"
    with pytest.raises(DataValidationError, match="^" + re.escape(expected)):
        load_tables(tmp_path)


def test_missing_required_column_names_file_and_column(tmp_path):
    write_csv(tmp_path, detections=GOOD_DETECTIONS.drop(columns=["mag_err"]))
    with pytest.raises(DataValidationError, match=r"detections\.csv: missing required column\(s\) mag_err"):
        load_tables(tmp_path)
    write_csv(tmp_path, objects=GOOD_OBJECTS.drop(columns=["label"]))
    with pytest.raises(DataValidationError, match=r"objects\.csv: missing required column\(s\) label"):
        load_tables(tmp_path)


def test_unknown_label_names_row(tmp_path):
    write_csv(tmp_path, objects=with_value(GOOD_OBJECTS, 2, "label", "QSO"))
    with pytest.raises(DataValidationError, match=r"objects\.csv row 3, column label: unknown label 'QSO'"):
        load_tables(tmp_path)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("ra", 360.0, "column ra: must be < 360 (got 360)"),
        ("dec", -91.0, "column dec: must be >= -90 (got -91)"),
        ("ra", "", "column ra: missing value"),
    ],
)
def test_bad_object_position(tmp_path, column, value, message):
    write_csv(tmp_path, objects=with_value(GOOD_OBJECTS, 1, column, value))
    with pytest.raises(DataValidationError, match=rf"^objects\.csv row 2, {re.escape(message)}"):
        load_tables(tmp_path)


def test_duplicate_object_is_an_error(tmp_path):
    objects = pd.concat([GOOD_OBJECTS, GOOD_OBJECTS.iloc[[0]]], ignore_index=True)
    write_csv(tmp_path, objects=objects)
    expected = "objects.csv row 4, column object_id: duplicate object 'A1' (first at row 1)"
    with pytest.raises(DataValidationError, match=re.escape(expected)):
        load_tables(tmp_path)


def test_bad_galaxy_names_galaxy_file(tmp_path):
    galaxies = pd.DataFrame({"ra": [10.0, 11.0], "dec": [20.0, 95.0]})
    write_csv(tmp_path, galaxies=galaxies)
    expected = "galaxies.csv row 2, column dec: must be <= 90 (got 95)"
    with pytest.raises(DataValidationError, match="^" + re.escape(expected)):
        load_tables(tmp_path)


def test_drop_mode_removes_and_counts_invalid_rows(tmp_path, caplog):
    det = with_value(GOOD_DETECTIONS, 1, "mag_err", -1.0)
    det = with_value(det, 5, "mag", "")  # C3's only detection
    objects = with_value(GOOD_OBJECTS, 1, "dec", 100.0)  # B2
    write_csv(tmp_path, detections=det, objects=objects)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        tables = load_tables(tmp_path, on_invalid="drop")
    dropped = tables.provenance["dropped"]
    assert dropped["detections_invalid"] == 2
    assert dropped["objects_invalid"] == 1
    assert dropped["detections_unknown_object"] == 2  # B2's detections: B2 itself was invalid
    assert dropped["objects_without_detections"] == 1  # C3 lost its only detection
    assert tables.objects["object_id"].tolist() == ["A1"]
    assert tables.detections["mjd"].tolist() == [58600.1, 58620.3]
    assert "dropped 2 invalid rows" in caplog.text and "objects without detections" in caplog.text


def test_orphans_are_dropped_with_a_count_in_raise_mode_too(tmp_path, caplog):
    det = pd.concat([GOOD_DETECTIONS, GOOD_DETECTIONS.iloc[[0]].assign(object_id="ZZ9")], ignore_index=True)
    objects = pd.concat(
        [GOOD_OBJECTS, pd.DataFrame({"object_id": ["D4"], "ra": [1.0], "dec": [2.0], "label": ["VS"]})],
        ignore_index=True,
    )
    write_csv(tmp_path, detections=det, objects=objects)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        tables = load_tables(tmp_path)
    assert tables.provenance["dropped"]["detections_unknown_object"] == 1
    assert tables.provenance["dropped"]["objects_without_detections"] == 1
    assert "ZZ9" not in set(tables.detections["object_id"])
    assert "D4" not in set(tables.objects["object_id"])
    assert "1 detections of 1 objects not in objects.csv" in caplog.text


def test_repeated_detection_ids_keep_the_first(tmp_path):
    det = pd.concat([GOOD_DETECTIONS, GOOD_DETECTIONS.iloc[[0]].assign(mag=17.0)], ignore_index=True)
    write_csv(tmp_path, detections=det)
    tables = load_tables(tmp_path)
    assert tables.provenance["dropped"]["detections_duplicate_id"] == 1
    a1 = tables.detections[tables.detections["object_id"] == "A1"]
    assert a1["mag"].tolist() == [18.0, 18.3, 18.9]


def test_identifiers_stay_text(tmp_path):
    det = GOOD_DETECTIONS.assign(object_id=["007", "007", "007", "NA", "NA", "1e5"])
    objects = GOOD_OBJECTS.assign(object_id=["007", "NA", "1e5"])
    write_csv(tmp_path, detections=det, objects=objects)
    tables = load_tables(tmp_path)
    assert tables.objects["object_id"].tolist() == ["007", "NA", "1e5"]
    assert set(tables.detections["object_id"]) == {"007", "NA", "1e5"}


def test_given_detection_ids_are_validated_and_kept(tmp_path):
    det = GOOD_DETECTIONS.assign(detection_id=[f"d{i}" for i in range(6)])
    write_csv(tmp_path, detections=det)
    assert load_tables(tmp_path).detections["detection_id"].tolist() == [f"d{i}" for i in range(6)]
    write_csv(tmp_path, detections=with_value(det, 2, "detection_id", "bad/id"))
    with pytest.raises(DataValidationError, match=r"row 3, column detection_id"):
        load_tables(tmp_path)


def test_missing_files_and_explicit_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no detections\.parquet or detections\.csv"):
        load_tables(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    GOOD_DETECTIONS.to_csv(other / "dets.csv", index=False)
    GOOD_OBJECTS.to_csv(tmp_path / "objects.csv", index=False)
    tables = load_tables(tmp_path, detections=other / "dets.csv")
    assert len(tables.detections) == 6
    with pytest.raises(ValueError, match="on_invalid"):
        load_tables(tmp_path, detections=other / "dets.csv", on_invalid="ignore")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ context, writing


def test_host_separation_prefers_the_objects_column(tmp_path):
    objects = GOOD_OBJECTS.assign(host_sep_arcsec=[3.5, math.nan, 75.0])
    galaxies = pd.DataFrame({"ra": [10.0], "dec": [20.0]})
    write_csv(tmp_path, objects=objects, galaxies=galaxies)
    sep = host_separation_arcsec(load_tables(tmp_path))
    np.testing.assert_array_equal(sep, [3.5, np.nan, 75.0])


def test_missing_numbers_in_any_usual_spelling(tmp_path):
    (tmp_path / "detections.csv").write_text("object_id,mjd,mag,mag_err\nNA,58600.5,18.0,0.05\n")
    (tmp_path / "objects.csv").write_text("object_id,ra,dec,label,host_sep_arcsec\nNA,10.0,20.0,SN,NaN\n")
    tables = load_tables(tmp_path)
    assert tables.objects["object_id"].tolist() == ["NA"]  # an id, not a missing value
    assert np.isnan(host_separation_arcsec(tables)[0])  # a missing number: no host match
    (tmp_path / "detections.csv").write_text("object_id,mjd,mag,mag_err\nNA,58600.5,null,0.05\n")
    with pytest.raises(DataValidationError, match=r"row 1, column mag: missing value"):
        load_tables(tmp_path)


def test_host_separation_cross_matches_the_catalogue(tmp_path):
    ra_30_arcsec_east_of_b2 = 200.0 + 30.0 / 3600.0 / np.cos(np.radians(10.0))
    galaxies = pd.DataFrame({"ra": [10.0, ra_30_arcsec_east_of_b2], "dec": [20.001, -10.0]})
    write_csv(tmp_path, galaxies=galaxies)
    ctx = object_context(load_tables(tmp_path))
    assert ctx["object_id"].tolist() == ["A1", "B2", "C3"]
    assert ctx["host_sep_arcsec"].to_numpy()[:2] == pytest.approx([3.6, 30.0], abs=0.01)
    assert ctx["host_sep_arcsec"].to_numpy()[2] > 3600  # raw value; the 60" cut happens later


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_then_load_round_trip(tmp_path, fmt):
    galaxies = pd.DataFrame({"ra": [1.0, 2.0], "dec": [3.0, 4.0], "distance_mpc": [50.0, 60.0]})
    det = GOOD_DETECTIONS.assign(detection_id=derive_detection_ids(GOOD_DETECTIONS["mjd"]))
    write_tables(tmp_path, det, GOOD_OBJECTS, galaxies, fmt=fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{s}.{fmt}" for s in ("detections", "objects", "galaxies")
    )  # no temporary files left behind
    tables = load_tables(tmp_path)
    pd.testing.assert_frame_equal(
        tables.detections[list(det.columns)].reset_index(drop=True),
        det.sort_values(["object_id", "mjd"]).reset_index(drop=True),
        check_dtype=False,
    )
    assert tables.galaxies is not None and tables.galaxies["distance_mpc"].tolist() == [50.0, 60.0]


def test_write_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_tables(tmp_path, GOOD_DETECTIONS, GOOD_OBJECTS, None, fmt="xlsx")  # type: ignore[arg-type]
