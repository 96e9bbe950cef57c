"""Summary statistics of a labelled light-curve data set, and the paper's published values.

Used for the simulator's ``provenance.json``, ``docs/data.md`` and the tests, on simulated or real
tables alike. Definitions (the paper does not spell them out; these are the readings used here):

- points: detections per object;
- gap: time between successive detections of one object, pooled over all objects (so an object
  with many detections contributes many gaps), same-night exposures included;
- duration: last minus first detection of an object;
- d_G: distance to the nearest catalogue galaxy, a match when <= 60 arcsec (the paper's cut).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lightcurve.context import galactic_lb

__all__ = [
    "FIRST_POINTS",
    "PAPER_STATISTICS",
    "PROFILE_COLUMNS",
    "PROFILE_TARGETS",
    "TOLERANCE_CHECKS",
    "ProfileTarget",
    "ToleranceCheck",
    "check_tolerances",
    "class_profile",
    "first_points_table",
    "per_object_table",
    "pooled_gaps",
    "sn_type_group",
    "summary_statistics",
]

CLASS_NAMES = ("VS", "SN", "AGN")
MATCH_RADIUS_ARCSEC = 60.0

#: What the paper states (section 2.2 and Figs 1-3), as numbers where it gives numbers.
PAPER_STATISTICS = {
    "class_counts": {"VS": 98457, "SN": 201, "AGN": 543},
    "median_points": 6,
    "median_gap_d": 11,
    "sn_duration": "typically no longer than 100 d",
    "vs_agn_duration": "observed over longer time-scales (> 300 d)",
    "mean_mag": "VS broad range, brighter on average; SN and AGN fainter (Fig. 1)",
    "latitude": "VS mostly close to the Galactic plane; SN and AGN usually >~ 10 deg away (Fig. 3)",
    "host": "SN and AGN more commonly have a GLADE galaxy within 60 arcsec than VS (Fig. 3)",
}


def per_object_table(detections: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """One row per object (objects-table order): label, n_points, duration_d, mean_mag, std_mag."""
    grouped = detections.groupby("object_id", sort=False)
    agg = grouped.agg(
        n_points=("mjd", "size"),
        first=("mjd", "min"),
        last=("mjd", "max"),
        mean_mag=("mag", "mean"),
        std_mag=("mag", "std"),
    )
    table = objects[["object_id", "label"]].join(agg, on="object_id")
    table["duration_d"] = table["last"] - table["first"]
    table["std_mag"] = table["std_mag"].fillna(0.0)
    return table.drop(columns=["first", "last"]).reset_index(drop=True)


def pooled_gaps(detections: pd.DataFrame, labels: pd.Series | None = None) -> tuple[NDArray, NDArray | None]:
    """All gaps between successive detections of the same object (days) and, if ``labels`` (indexed
    by object_id) is given, each gap's class."""
    det = detections.sort_values(["object_id", "mjd"], kind="stable")
    obj = det["object_id"].to_numpy()
    t = det["mjd"].to_numpy(dtype=np.float64)
    same = obj[1:] == obj[:-1]
    gaps = np.diff(t)[same]
    gap_labels = labels.reindex(obj[1:][same]).to_numpy() if labels is not None else None
    return gaps, gap_labels


def _quantiles(x: NDArray, qs=(0.1, 0.25, 0.5, 0.75, 0.9, 0.95)) -> dict[str, float]:
    if x.size == 0:
        return {}
    return {f"q{int(q * 100):02d}": float(np.quantile(x, q)) for q in qs} | {"max": float(x.max())}


def summary_statistics(
    detections: pd.DataFrame, objects: pd.DataFrame, host_sep_arcsec: NDArray | None = None
) -> dict:
    """The statistics of ``docs/data.md`` (overall and by class), as plain JSON-able numbers."""
    per = per_object_table(detections, objects)
    labels = objects.set_index("object_id")["label"]
    gaps, gap_labels = pooled_gaps(detections, labels)
    _, b = galactic_lb(objects["ra"].to_numpy(), objects["dec"].to_numpy())
    abs_b = np.abs(np.asarray(b))
    stats: dict = {
        "n_objects": len(objects),
        "n_detections": len(detections),
        "class_counts": {c: int((objects["label"] == c).sum()) for c in CLASS_NAMES},
        "median_points": float(per["n_points"].median()),
        "median_gap_d": float(np.median(gaps)) if gaps.size else float("nan"),
        "fraction_gaps_same_night": float(np.mean(gaps < 0.5)) if gaps.size else float("nan"),
        "fraction_single_point": float(np.mean(per["n_points"] == 1)),
        "fraction_over_30_points": float(np.mean(per["n_points"] > 30)),
        "by_class": {},
    }
    for c in CLASS_NAMES:
        sel = (per["label"] == c).to_numpy()
        if not sel.any():
            continue
        g = gaps[gap_labels == c]
        dur = per.loc[sel, "duration_d"].to_numpy()
        many = sel & (per["n_points"] >= 10).to_numpy()
        entry = {
            "n": int(sel.sum()),
            "median_points": float(per.loc[sel, "n_points"].median()),
            "points": _quantiles(per.loc[sel, "n_points"].to_numpy(dtype=np.float64)),
            "median_gap_d": float(np.median(g)) if g.size else float("nan"),
            "duration_d": _quantiles(dur),
            "fraction_duration_over_100d": float(np.mean(dur > 100)),
            "fraction_duration_over_300d": float(np.mean(dur > 300)),
            "median_duration_d_10plus_points": float(np.median(per.loc[many, "duration_d"]))
            if many.any()
            else float("nan"),
            "mean_of_mean_mag": float(per.loc[sel, "mean_mag"].mean()),
            "median_mean_mag": float(per.loc[sel, "mean_mag"].median()),
            "median_std_mag": float(per.loc[sel, "std_mag"].median()),
            "fraction_abs_b_over_10deg": float(np.mean(abs_b[sel] > 10)),
            "median_abs_b_deg": float(np.median(abs_b[sel])),
        }
        if host_sep_arcsec is not None:
            entry["fraction_host_within_60arcsec"] = float(
                np.mean(host_sep_arcsec[sel] <= MATCH_RADIUS_ARCSEC)
            )
        stats["by_class"][c] = entry
    return stats


@dataclass(frozen=True)
class ToleranceCheck:
    """One acceptance criterion against the paper: what is measured, the target, and whether it holds."""

    name: str
    paper: str
    criterion: str
    value: float | str
    ok: bool


def _get(stats: dict, *keys: str) -> float:
    value = stats
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return float("nan")
        value = value[k]
    return float(value)  # type: ignore[arg-type]


#: (name, paper statement, criterion text, statistic path, test)
TOLERANCE_CHECKS = (
    ("median points", "6", "6 +/- 1", ("median_points",), lambda v: abs(v - 6) <= 1),
    ("median gap (d)", "~11", "11 +/- 3", ("median_gap_d",), lambda v: abs(v - 11) <= 3),
    (
        "SN longest duration (d)",
        "typically < 100 d",
        "every SN < 100 d",
        ("by_class", "SN", "duration_d", "max"),
        lambda v: v < 100,
    ),
    (
        "VS 75th-percentile duration (d)",
        "> 300 d",
        "> 300 d",
        ("by_class", "VS", "duration_d", "q75"),
        lambda v: v > 300,
    ),
    (
        "AGN 75th-percentile duration (d)",
        "> 300 d",
        "> 300 d",
        ("by_class", "AGN", "duration_d", "q75"),
        lambda v: v > 300,
    ),
    (
        "VS median duration, >= 10 points (d)",
        "> 300 d",
        "> 300 d",
        ("by_class", "VS", "median_duration_d_10plus_points"),
        lambda v: v > 300,
    ),
    (
        "AGN median duration, >= 10 points (d)",
        "> 300 d",
        "> 300 d",
        ("by_class", "AGN", "median_duration_d_10plus_points"),
        lambda v: v > 300,
    ),
)


def check_tolerances(stats: dict) -> list[ToleranceCheck]:
    """Evaluate :data:`TOLERANCE_CHECKS` (plus exact class counts for the paper-sized data set)."""
    out = [
        ToleranceCheck(name, paper, criterion, _get(stats, *path), bool(test(_get(stats, *path))))
        for name, paper, criterion, path, test in TOLERANCE_CHECKS
    ]
    if stats["n_objects"] == sum(PAPER_STATISTICS["class_counts"].values()):
        counts = stats["class_counts"]
        out.append(
            ToleranceCheck(
                "class counts",
                "98457 / 201 / 543",
                "exact",
                " / ".join(str(counts[c]) for c in CLASS_NAMES),
                counts == PAPER_STATISTICS["class_counts"],
            )
        )
    return out


#: Light-curve length the model reads (paper section 2.3): profiles are computed on these points.
FIRST_POINTS = 30


def first_points_table(
    detections: pd.DataFrame, objects: pd.DataFrame, n_first: int = FIRST_POINTS
) -> pd.DataFrame:
    """One row per object over its first ``n_first`` detections in time (what the model reads):
    label, points, span_d, mean_mag, amplitude_mag (max - min), median_err, median_gap_d."""
    det = detections.sort_values(["object_id", "mjd"], kind="stable")
    det = det[det.groupby("object_id", sort=False).cumcount() < n_first]
    t = det["mjd"].to_numpy(dtype=np.float64)
    same = det["object_id"].to_numpy()[1:] == det["object_id"].to_numpy()[:-1]
    gaps = pd.Series(np.where(same, np.diff(t), np.nan), index=det.index[1:])
    det = det.assign(gap=gaps)
    agg = det.groupby("object_id", sort=False).agg(
        points=("mjd", "size"),
        first=("mjd", "min"),
        last=("mjd", "max"),
        mean_mag=("mag", "mean"),
        max_mag=("mag", "max"),
        min_mag=("mag", "min"),
        median_err=("mag_err", "median"),
        median_gap_d=("gap", "median"),
    )
    keep = ["object_id", "label"] + (["true_subtype"] if "true_subtype" in objects.columns else [])
    table = objects[keep].join(agg, on="object_id", how="inner")
    table["span_d"] = table["last"] - table["first"]
    table["amplitude_mag"] = table["max_mag"] - table["min_mag"]
    return table.drop(columns=["first", "last", "max_mag", "min_mag"]).reset_index(drop=True)


PROFILE_COLUMNS = ("mean_mag", "amplitude_mag", "points", "span_d", "median_gap_d", "median_err")


def class_profile(table: pd.DataFrame, by: str = "label") -> dict[str, dict[str, float]]:
    """Median of each :data:`PROFILE_COLUMNS` per group (class or subtype), plus the group size and
    the share of light curves fainter than 18 mag on average."""
    out: dict[str, dict[str, float]] = {}
    for name, group in table.groupby(by, sort=True):
        entry = {"n": float(len(group))}
        entry |= {c: float(group[c].median()) for c in PROFILE_COLUMNS}
        entry["fraction_mean_mag_over_18"] = float(np.mean(group["mean_mag"] > 18.0))
        out[str(name)] = entry
    return out


@dataclass(frozen=True)
class ProfileTarget:
    """A documented target for one class statistic of the simulated sky (first 30 points)."""

    label: str
    statistic: str
    low: float
    high: float
    source: str

    def holds(self, profile: dict[str, dict[str, float]]) -> bool:
        value = profile.get(self.label, {}).get(self.statistic, float("nan"))
        return bool(self.low <= value <= self.high)


#: Per-class targets the simulator is held to (tests/unit/test_simulator.py; docs/data.md). Real
#: values are the medians of ``../shared/data/real_dev`` through the trainer's adapters (CRTS from
#: discovery, one point per night; ZTF r band), the paper's are section 2.2.
PROFILE_TARGETS = (
    ProfileTarget("VS", "mean_mag", 17.0, 18.6, "real CRTS VS 18.0; whole survey range, not only bright"),
    ProfileTarget("VS", "fraction_mean_mag_over_18", 0.3, 0.7, "CRTS VS: half fainter than 18 mag"),
    ProfileTarget("SN", "mean_mag", 18.3, 19.5, "real SN 18.5 (CRTS) / 18.9 (ZTF r)"),
    ProfileTarget("AGN", "mean_mag", 18.0, 19.3, "real AGN 18.5 (CRTS)"),
    ProfileTarget("SN", "amplitude_mag", 0.5, 2.0, "real SN 1.8 (CRTS) / 1.6 (ZTF r)"),
    ProfileTarget("VS", "points", 5.0, 8.0, "paper: median 6 points, similar across classes"),
    ProfileTarget("SN", "points", 3.0, 8.0, "paper: points 'fairly similar' across classes"),
    ProfileTarget("AGN", "points", 4.0, 8.0, "paper: points 'fairly similar' across classes"),
    ProfileTarget("VS", "span_d", 300.0, 600.0, "paper: VS observed > 300 d"),
    ProfileTarget("SN", "span_d", 10.0, 99.0, "paper: SN < 100 d; ZTF SN 50 d"),
    ProfileTarget(
        "AGN", "span_d", 120.0, 600.0, "paper: AGN > 300 d (read as the 75th percentile: paper checks)"
    ),
)


SN_TYPE_GROUPS = ("Ia", "II", "IIn", "Ibc", "SLSN", "other")


def sn_type_group(name: str) -> str:
    """Broad supernova group of a simulator subtype or a TNS/BTS type ("SN Ia-91T" -> "Ia").

    Examples
    --------
    >>> [sn_type_group(n) for n in ("SN Ia-91T", "II-P", "SN IIb", "SN IIn", "SN Ic-BL", "SLSN-I", "Ca-rich")]
    ['Ia', 'II', 'II', 'IIn', 'Ibc', 'SLSN', 'other']
    """
    core = name.removeprefix("SN ").strip()
    if core.startswith("SLSN"):
        return "SLSN"
    if core.startswith("Ia"):
        return "Ia"
    if core.startswith("IIn"):
        return "IIn"
    if core.startswith("II"):
        return "II"
    if core.startswith(("Ib", "Ic")):
        return "Ibc"
    return "other"
