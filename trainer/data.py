"""Survey tables on disk: load and validate (real data or the simulator's), and write.

Two tables (plus an optional galaxy catalogue), as CSV or Parquet:

- detections: ``object_id, mjd, mag, mag_err[, filter][, detection_id]`` (one row per detection);
- objects: ``object_id, ra, dec, label[, host_sep_arcsec]`` (one row per object; ``label`` one of
  VS, SN, AGN; ``host_sep_arcsec`` NaN where no galaxy matched);
- galaxies: ``ra, dec[, ...]``, the catalogue for the distance-to-nearest-galaxy feature.

Validation uses the same ranges as the service's request types (``lightcurve.types``), vectorised,
and every error names the file, the 1-based data row and the column. Nothing is dropped silently:
with ``on_invalid="drop"`` bad rows are removed and counted, and detections of unknown objects and
objects without detections are always removed with a logged count. Extra columns are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from lightcurve.context import GalaxyCatalog, galactic_lb
from lightcurve.types import (
    HOST_SEP_MAX_ARCSEC,
    ID_PATTERN,
    MAG_ERR_MAX,
    MAG_RANGE,
    MJD_RANGE,
    check_identifier,
)

__all__ = [
    "CLASS_NAMES",
    "DataValidationError",
    "SurveyTables",
    "derive_detection_ids",
    "host_separation_arcsec",
    "load_tables",
    "object_context",
    "write_tables",
]

log = logging.getLogger(__name__)

CLASS_NAMES = ("VS", "SN", "AGN")
TABLE_STEMS = ("detections", "objects", "galaxies")
FILTER_PATTERN = r"[A-Za-z0-9_.\-]{1,16}"
DEFAULT_FILTER = "L"
#: Errors beyond the first are counted, not listed; this many are listed.
MAX_LISTED_ERRORS = 5


class DataValidationError(ValueError):
    """A table failed validation; the message names the file, the row and the column."""


@dataclass(frozen=True)
class SurveyTables:
    """Validated tables. Detections are sorted by (object_id, mjd, detection_id); objects keep
    their file order and each has at least one detection."""

    detections: pd.DataFrame
    objects: pd.DataFrame
    galaxies: pd.DataFrame | None
    provenance: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Vectorised checks: each adds the rows it finds invalid, with a message, to a _Problems.


@dataclass
class _Problems:
    """Invalid cells found in one table: (row index, column, message), in row order on report."""

    file: str
    rows: list[NDArray[np.int64]] = field(default_factory=list)
    messages: list[list[str]] = field(default_factory=list)

    def add(self, bad: NDArray[np.bool_], column: str, describe) -> None:
        idx = np.flatnonzero(bad)
        if idx.size:
            self.rows.append(idx)
            self.messages.append([f"column {column}: {describe(i)}" for i in idx[:MAX_LISTED_ERRORS]])

    def bad_rows(self, n: int) -> NDArray[np.bool_]:
        mask = np.zeros(n, dtype=bool)
        for idx in self.rows:
            mask[idx] = True
        return mask

    def error(self, n: int) -> DataValidationError:
        # The earliest rows first, across all columns.
        listed = sorted(
            (int(i), msg)
            for idx, msgs in zip(self.rows, self.messages, strict=True)
            for i, msg in zip(idx[:MAX_LISTED_ERRORS], msgs, strict=False)
        )
        n_bad = int(self.bad_rows(n).sum())
        lines = [f"{self.file} row {i + 1}, {msg}" for i, msg in listed[:MAX_LISTED_ERRORS]]
        more = f" ({n_bad} invalid rows in all; fix them or load with on_invalid='drop')"
        return DataValidationError("; ".join(lines) + more)


def _got(values: pd.Series, i: int) -> str:
    return f"got {values.iloc[i]!r}"


def _numeric(
    frame: pd.DataFrame, column: str, problems: _Problems
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The column as float64 (NaN where empty) and the mask of cells that are not numbers, which are
    reported here."""
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=np.float64)
        return values, np.zeros(values.size, dtype=bool)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    missing = (raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy()
    not_number = np.isnan(values) & ~missing
    problems.add(not_number, column, lambda i: f"not a number ({_got(raw, i)})")
    return values, not_number


def _check_range(
    values: NDArray[np.float64],
    column: str,
    problems: _Problems,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_nan: bool = False,
    already_reported: NDArray[np.bool_] | None = None,
) -> None:
    nan = np.isnan(values)
    if not allow_nan:
        skip = already_reported if already_reported is not None else np.zeros_like(nan)
        problems.add(nan & ~skip, column, lambda i: "missing value")
    finite = np.isfinite(values)
    problems.add(~nan & ~finite, column, lambda i: f"must be finite (got {values[i]!r})")
    with np.errstate(invalid="ignore"):
        below = (values <= lo) if lo_open else (values < lo)
        above = (values >= hi) if hi_open else (values > hi)
    lo_rule = f"must be {'>' if lo_open else '>='} {lo:g}"
    hi_rule = f"must be {'<' if hi_open else '<='} {hi:g}"
    problems.add(finite & below, column, lambda i: f"{lo_rule} (got {values[i]:g})")
    problems.add(finite & above, column, lambda i: f"{hi_rule} (got {values[i]:g})")


def _strings(frame: pd.DataFrame, column: str) -> pd.Series:
    """String column with missing cells as empty strings (ids are never numbers: '007' stays)."""
    col = frame[column]
    return col.where(col.notna(), "").astype(str).str.strip()


def _check_pattern(values: pd.Series, column: str, pattern: str, what: str, problems: _Problems) -> None:
    bad = ~values.str.fullmatch(pattern).to_numpy(dtype=bool)
    problems.add(bad, column, lambda i: f"{what} ({_got(values, i)})")


def _require_columns(frame: pd.DataFrame, required: Sequence[str], file: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise DataValidationError(f"{file}: missing required column(s) {', '.join(missing)} (found: {found})")


def _identifier_rule() -> str:
    """The identifier rule's wording, from the core's own check (one source of truth)."""
    try:
        check_identifier("")
    except ValueError as err:
        return str(err)
    raise AssertionError("the empty string must not be a valid identifier")


ID_RULE = _identifier_rule()


# ----------------------------------------------------------------------------------------------
# Files


def _find(data_dir: Path | None, stem: str, explicit: str | Path | None, required: bool) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{stem} table not found: {path}")
        return path
    if data_dir is None:
        if required:
            raise FileNotFoundError(f"no data directory and no {stem} path given")
        return None
    found = [
        data_dir / f"{stem}{ext}" for ext in (".parquet", ".csv") if (data_dir / f"{stem}{ext}").is_file()
    ]
    if not found:
        if required:
            raise FileNotFoundError(f"{data_dir}: no {stem}.parquet or {stem}.csv")
        return None
    if len(found) > 1:
        log.warning(
            "%s: both %s and %s exist; reading %s", data_dir, found[0].name, found[1].name, found[0].name
        )
    return found[0]


STRING_COLUMNS = ("object_id", "detection_id", "label", "filter", "galaxy_id")
#: Spellings of a missing number in CSV files (only numeric columns: 'NA' is a valid object id).
NUMERIC_NA_STRINGS = (
    *("", "NaN", "nan", "NAN", "-NaN", "-nan"),
    *("NA", "N/A", "n/a", "#N/A", "null", "NULL", "None"),
)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        # Ids and labels as text: '007' must not become 7, and 'NA' is a valid object name.
        header = pd.read_csv(path, nrows=0).columns
        dtypes = {c: str for c in header if c in STRING_COLUMNS}
        return pd.read_csv(
            path,
            dtype=dtypes,
            keep_default_na=False,
            na_values={c: list(NUMERIC_NA_STRINGS) for c in header if c not in STRING_COLUMNS},
        )
    raise ValueError(f"{path}: unsupported table format (use .csv or .parquet)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Detection ids


def derive_detection_ids(mjd: ArrayLike, filter: str | ArrayLike = DEFAULT_FILTER) -> NDArray[np.object_]:
    """Vectorised :func:`lightcurve.types.derive_detection_id`: identical strings, ``mjd{mjd:.6f}{filter}``.

    Examples
    --------
    >>> derive_detection_ids([58605.179148, 58611.1323194], "L").tolist()
    ['mjd58605.179148L', 'mjd58611.132319L']
    """
    t = np.asarray(mjd, dtype=np.float64)
    text = np.char.mod("%.6f", t) if t.size else np.array([], dtype=str)
    filt = np.broadcast_to(np.asarray(filter, dtype=str), t.shape)
    return np.char.add(np.char.add("mjd", text), filt).astype(object)


# ----------------------------------------------------------------------------------------------
# Table validation


def _validate_detections(frame: pd.DataFrame, file: str) -> tuple[pd.DataFrame, _Problems]:
    _require_columns(frame, ("object_id", "mjd", "mag", "mag_err"), file)
    p = _Problems(file)
    n = len(frame)
    object_id = _strings(frame, "object_id")
    _check_pattern(object_id, "object_id", ID_PATTERN.pattern, ID_RULE, p)
    out = {"object_id": object_id.to_numpy(dtype=object)}
    for column, (lo, hi), lo_open in (
        ("mjd", MJD_RANGE, False),
        ("mag", MAG_RANGE, False),
        ("mag_err", (0.0, MAG_ERR_MAX), True),
    ):
        values, unparsable = _numeric(frame, column, p)
        _check_range(values, column, p, lo, hi, lo_open=lo_open, already_reported=unparsable)
        out[column] = values
    if "filter" in frame.columns:
        filt = _strings(frame, "filter")
        _check_pattern(
            filt, "filter", FILTER_PATTERN, "must be 1-16 characters from letters, digits and _.-", p
        )
        out["filter"] = filt.to_numpy(dtype=object)
    else:
        out["filter"] = np.full(n, DEFAULT_FILTER, dtype=object)
    if "detection_id" in frame.columns:
        det_id = _strings(frame, "detection_id")
        _check_pattern(det_id, "detection_id", ID_PATTERN.pattern, ID_RULE, p)
        out["detection_id"] = det_id.to_numpy(dtype=object)
    else:
        out["detection_id"] = None  # derived after invalid rows are gone
    extra = [c for c in frame.columns if c not in out]
    order = ["object_id", "detection_id", "mjd", "mag", "mag_err", "filter"]
    result = pd.DataFrame({k: out[k] for k in order if out[k] is not None}, index=frame.index)
    for c in extra:
        result[c] = frame[c].to_numpy()
    return result, p


def _validate_objects(frame: pd.DataFrame, file: str) -> tuple[pd.DataFrame, _Problems]:
    _require_columns(frame, ("object_id", "ra", "dec", "label"), file)
    p = _Problems(file)
    object_id = _strings(frame, "object_id")
    _check_pattern(object_id, "object_id", ID_PATTERN.pattern, ID_RULE, p)
    dup = object_id.duplicated(keep="first").to_numpy() & (object_id != "").to_numpy()
    first_row = {v: i for i, v in reversed(list(enumerate(object_id)))}
    p.add(
        dup,
        "object_id",
        lambda i: f"duplicate object {object_id.iloc[i]!r} (first at row {first_row[object_id.iloc[i]] + 1})",
    )
    out: dict[str, NDArray] = {"object_id": object_id.to_numpy(dtype=object)}
    ranges = {
        "ra": ((0.0, 360.0), False, True, False),
        "dec": ((-90.0, 90.0), False, False, False),
        "host_sep_arcsec": ((0.0, HOST_SEP_MAX_ARCSEC), False, False, True),
    }
    for column, ((lo, hi), lo_open, hi_open, allow_nan) in ranges.items():
        if column not in frame.columns:
            continue
        values, unparsable = _numeric(frame, column, p)
        _check_range(
            values,
            column,
            p,
            lo,
            hi,
            lo_open=lo_open,
            hi_open=hi_open,
            allow_nan=allow_nan,
            already_reported=unparsable,
        )
        out[column] = values
    label = _strings(frame, "label")
    bad_label = ~label.isin(CLASS_NAMES).to_numpy()
    p.add(
        bad_label,
        "label",
        lambda i: f"unknown label {label.iloc[i]!r} (expected one of {', '.join(CLASS_NAMES)})",
    )
    out["label"] = label.to_numpy(dtype=object)
    columns = ["object_id", "ra", "dec", "label"] + (["host_sep_arcsec"] if "host_sep_arcsec" in out else [])
    result = pd.DataFrame({c: out[c] for c in columns}, index=frame.index)
    for c in frame.columns:
        if c not in result.columns:
            result[c] = frame[c].to_numpy()
    return result, p


def _validate_galaxies(frame: pd.DataFrame, file: str) -> tuple[pd.DataFrame, _Problems]:
    _require_columns(frame, ("ra", "dec"), file)
    p = _Problems(file)
    result = frame.copy()
    for column, (lo, hi), hi_open in (("ra", (0.0, 360.0), True), ("dec", (-90.0, 90.0), False)):
        values, unparsable = _numeric(frame, column, p)
        _check_range(values, column, p, lo, hi, hi_open=hi_open, already_reported=unparsable)
        result[column] = values
    return result, p


def _apply(
    frame: pd.DataFrame, problems: _Problems, on_invalid: str, dropped: dict, key: str
) -> pd.DataFrame:
    bad = problems.bad_rows(len(frame))
    if not bad.any():
        dropped[key] = 0
        return frame
    if on_invalid == "raise":
        raise problems.error(len(frame))
    dropped[key] = int(bad.sum())
    log.warning(
        "%s: dropped %d invalid rows; first: %s",
        problems.file,
        int(bad.sum()),
        str(problems.error(len(frame))).split("; ")[0],
    )
    return frame.loc[~bad]


def _member(values: pd.Series, pool: pd.Series) -> NDArray[np.bool_]:
    """``values.isin(pool)`` through a hash index (pandas' Arrow-string ``isin`` is slow at 1e6 rows)."""
    index = pd.Index(pd.unique(pool.to_numpy(dtype=object)))
    return index.get_indexer(values.to_numpy(dtype=object)) >= 0


def load_tables(
    data_dir: str | Path | None = None,
    *,
    detections: str | Path | None = None,
    objects: str | Path | None = None,
    galaxies: str | Path | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
) -> SurveyTables:
    """Load and validate the survey tables.

    Parameters
    ----------
    data_dir
        Directory holding ``detections``, ``objects`` and (optionally) ``galaxies`` as ``.parquet``
        or ``.csv``; explicit paths override it. A simulator ``provenance.json`` there is recorded.
    on_invalid
        ``"raise"``: the first invalid rows raise :class:`DataValidationError` naming file, row and
        column. ``"drop"``: invalid rows are removed, counted in ``provenance["dropped"]`` and logged.

    Detections of objects missing from the objects table, and objects with no detections, are
    removed and counted in either mode; repeated detection ids of one object keep the first row.
    """
    if on_invalid not in ("raise", "drop"):
        raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
    base = Path(data_dir) if data_dir is not None else None
    det_path = _find(base, "detections", detections, required=True)
    obj_path = _find(base, "objects", objects, required=True)
    gal_path = _find(base, "galaxies", galaxies, required=False)
    assert det_path is not None and obj_path is not None
    dropped: dict[str, int] = {}
    files: dict[str, dict] = {}

    det_raw = _read(det_path)
    det, problems = _validate_detections(det_raw, det_path.name)
    det = _apply(det, problems, on_invalid, dropped, "detections_invalid")
    obj_raw = _read(obj_path)
    obj, problems = _validate_objects(obj_raw, obj_path.name)
    obj = _apply(obj, problems, on_invalid, dropped, "objects_invalid")

    if "detection_id" not in det.columns:
        det.insert(
            1, "detection_id", derive_detection_ids(det["mjd"].to_numpy(), det["filter"].to_numpy(dtype=str))
        )
    dup = det.duplicated(["object_id", "detection_id"], keep="first").to_numpy()
    dropped["detections_duplicate_id"] = int(dup.sum())
    if dup.any():
        log.warning(
            "%s: dropped %d repeated detection ids (first occurrence kept)", det_path.name, int(dup.sum())
        )
        det = det.loc[~dup]

    known = _member(det["object_id"], obj["object_id"])
    dropped["detections_unknown_object"] = int((~known).sum())
    if not known.all():
        log.warning(
            "%s: dropped %d detections of %d objects not in %s",
            det_path.name,
            int((~known).sum()),
            det.loc[~known, "object_id"].nunique(),
            obj_path.name,
        )
        det = det.loc[known]
    seen = _member(obj["object_id"], det["object_id"])
    dropped["objects_without_detections"] = int((~seen).sum())
    if not seen.all():
        log.warning("%s: dropped %d objects without detections", obj_path.name, int((~seen).sum()))
        obj = obj.loc[seen]

    det = det.sort_values(["object_id", "mjd", "detection_id"], kind="stable").reset_index(drop=True)
    obj = obj.reset_index(drop=True)
    files["detections"] = {
        "path": str(det_path),
        "sha256": _sha256(det_path),
        "rows_read": len(det_raw),
        "rows_kept": len(det),
    }
    files["objects"] = {
        "path": str(obj_path),
        "sha256": _sha256(obj_path),
        "rows_read": len(obj_raw),
        "rows_kept": len(obj),
    }

    gal = None
    if gal_path is not None:
        gal_raw = _read(gal_path)
        gal, problems = _validate_galaxies(gal_raw, gal_path.name)
        gal = _apply(gal, problems, on_invalid, dropped, "galaxies_invalid").reset_index(drop=True)
        files["galaxies"] = {
            "path": str(gal_path),
            "sha256": _sha256(gal_path),
            "rows_read": len(gal_raw),
            "rows_kept": len(gal),
        }

    provenance: dict = {
        "files": files,
        "dropped": dropped,
        "class_counts": {c: int((obj["label"] == c).sum()) for c in CLASS_NAMES},
    }
    sim = (base / "provenance.json") if base is not None else None
    if sim is not None and sim.is_file():
        provenance["simulator"] = json.loads(sim.read_text())
    log.info(
        "loaded %d detections of %d objects (%s)%s",
        len(det),
        len(obj),
        ", ".join(f"{c} {n}" for c, n in provenance["class_counts"].items()),
        f", {len(gal)} galaxies" if gal is not None else ", no galaxy catalogue",
    )
    return SurveyTables(detections=det, objects=obj, galaxies=gal, provenance=provenance)


# ----------------------------------------------------------------------------------------------
# Context


def host_separation_arcsec(tables: SurveyTables) -> NDArray[np.float64]:
    """Distance (arcsec) from each object to its nearest catalogue galaxy, in objects-table order.

    The objects table's ``host_sep_arcsec`` if present (NaN = no match); otherwise a cross-match
    with ``tables.galaxies``; otherwise all NaN, with a warning. Values are raw: separations beyond
    60 arcsec are replaced by the dummy only in ``lightcurve.preprocessing.context_matrix``.
    """
    obj = tables.objects
    if "host_sep_arcsec" in obj.columns:
        return obj["host_sep_arcsec"].to_numpy(dtype=np.float64)
    if tables.galaxies is None or len(tables.galaxies) == 0:
        log.warning("no host_sep_arcsec column and no galaxy catalogue: every object has no host match")
        return np.full(len(obj), np.nan)
    catalog = GalaxyCatalog(tables.galaxies["ra"].to_numpy(), tables.galaxies["dec"].to_numpy())
    sep = catalog.nearest_separation_arcsec(obj["ra"].to_numpy(), obj["dec"].to_numpy())
    return np.where(np.isfinite(sep), sep, np.nan)


def object_context(tables: SurveyTables) -> pd.DataFrame:
    """Per object (objects-table order): ``object_id, gal_l_deg, gal_b_deg, host_sep_arcsec``."""
    l_deg, b_deg = galactic_lb(tables.objects["ra"].to_numpy(), tables.objects["dec"].to_numpy())
    return pd.DataFrame(
        {
            "object_id": tables.objects["object_id"].to_numpy(),
            "gal_l_deg": np.asarray(l_deg, dtype=np.float64),
            "gal_b_deg": np.asarray(b_deg, dtype=np.float64),
            "host_sep_arcsec": host_separation_arcsec(tables),
        }
    )


# ----------------------------------------------------------------------------------------------
# Writing


def write_tables(
    out_dir: str | Path,
    detections: pd.DataFrame,
    objects: pd.DataFrame,
    galaxies: pd.DataFrame | None,
    fmt: Literal["parquet", "csv"] = "parquet",
) -> dict[str, Path]:
    """Write the tables as ``OUT/detections.FMT`` etc. Each file is written under a temporary name
    and renamed, so a reader never sees half a table. Returns the paths written."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for stem, frame in (("detections", detections), ("objects", objects), ("galaxies", galaxies)):
        if frame is None:
            continue
        path = out / f"{stem}.{fmt}"
        tmp = out / f".{stem}.{fmt}.tmp"
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
        written[stem] = path
    return written
