"""Describe a data set next to the paper's and the real labelled sets: tables and figures for
``docs/data.md``.

Regenerate (after ``goto-classifier simulate --out data/sim``)::

    python -m trainer.data_report --data data/sim --doc docs/data.md --img docs/img

The figures mirror the paper's Figs 1-3 (mean magnitude vs scatter; duration, number of points and
gaps; distance to the nearest galaxy and Galactic latitude), plus example light curves with the two
real GOTO light curves beside simulated ones, and each class against the real sets of
``../shared/data/real_dev`` (read through the trainer's adapters, ``trainer.real_sets``): magnitude,
amplitude, points, span, and error against magnitude. Only the text between the
``<!-- generated:NAME -->`` markers of the document is replaced, so its prose is edited by hand.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.data import SurveyTables, host_separation_arcsec, load_tables
from trainer.survey_stats import (
    CLASS_NAMES,
    MATCH_RADIUS_ARCSEC,
    PROFILE_TARGETS,
    SN_TYPE_GROUPS,
    check_tolerances,
    class_profile,
    first_points_table,
    per_object_table,
    pooled_gaps,
    sn_type_group,
    summary_statistics,
)

__all__ = [
    "load_real_tables",
    "main",
    "render_composition",
    "render_real_comparison",
    "render_sn_mix",
    "render_tables",
    "render_targets",
    "write_comparison_figures",
    "write_figures",
]

COLOURS = {"VS": "0.45", "SN": "tab:red", "AGN": "tab:blue"}
REAL_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_goto_examples"


def _fmt(x: float, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _fmt_value(value: float | str) -> str:
    return value if isinstance(value, str) else _fmt(value)


def render_tables(stats: dict) -> dict[str, str]:
    """Markdown for each generated section: ``summary`` (simulator vs paper), ``checks``."""
    by = stats["by_class"]
    rows = [
        ("Objects", "98,457 / 201 / 543", " / ".join(f"{by[c]['n']:,}" for c in CLASS_NAMES)),
        ("Detections", "not given", f"{stats['n_detections']:,}"),
        ("Median points per light curve (all)", "6", _fmt(stats["median_points"], 0)),
        (
            "Median points, VS / SN / AGN",
            '"fairly similar"',
            " / ".join(_fmt(by[c]["median_points"], 0) for c in CLASS_NAMES),
        ),
        (
            "Light curves with 1 point / > 30 points",
            "not given",
            f"{stats['fraction_single_point']:.1%} / {stats['fraction_over_30_points']:.1%}",
        ),
        ("Median gap between successive detections (all, d)", "~11", _fmt(stats["median_gap_d"])),
        (
            "Median gap, VS / SN / AGN (d)",
            '"fairly similar"',
            " / ".join(_fmt(by[c]["median_gap_d"]) for c in CLASS_NAMES),
        ),
        ("Gaps within one night", "not given", f"{stats['fraction_gaps_same_night']:.0%}"),
        (
            "Duration median, VS / SN / AGN (d)",
            "-",
            " / ".join(_fmt(by[c]["duration_d"]["q50"], 0) for c in CLASS_NAMES),
        ),
        (
            "Duration 75th percentile, VS / SN / AGN (d)",
            "VS, AGN > 300; SN < 100",
            " / ".join(_fmt(by[c]["duration_d"]["q75"], 0) for c in CLASS_NAMES),
        ),
        (
            "Duration maximum, VS / SN / AGN (d)",
            "SN typically < 100",
            " / ".join(_fmt(by[c]["duration_d"]["max"], 0) for c in CLASS_NAMES),
        ),
        (
            "Median duration of light curves with >= 10 points, VS / SN / AGN (d)",
            "VS, AGN > 300",
            " / ".join(_fmt(by[c]["median_duration_d_10plus_points"], 0) for c in CLASS_NAMES),
        ),
        (
            "Duration > 300 d, VS / SN / AGN",
            "-",
            " / ".join(f"{by[c]['fraction_duration_over_300d']:.0%}" for c in CLASS_NAMES),
        ),
        (
            "Mean magnitude (mean over objects), VS / SN / AGN",
            "VS brighter; SN, AGN fainter",
            " / ".join(_fmt(by[c]["mean_of_mean_mag"], 2) for c in CLASS_NAMES),
        ),
        (
            "Median magnitude scatter (std), VS / SN / AGN",
            "Fig. 1",
            " / ".join(_fmt(by[c]["median_std_mag"], 3) for c in CLASS_NAMES),
        ),
        (
            "\\|b\\| > 10 deg, VS / SN / AGN",
            "VS mostly near the plane; SN, AGN mostly > 10 deg",
            " / ".join(f"{by[c]['fraction_abs_b_over_10deg']:.0%}" for c in CLASS_NAMES),
        ),
        (
            "Median \\|b\\|, VS / SN / AGN (deg)",
            "Fig. 3",
            " / ".join(_fmt(by[c]["median_abs_b_deg"]) for c in CLASS_NAMES),
        ),
    ]
    if "fraction_host_within_60arcsec" in by["VS"]:
        rows.append(
            (
                'Galaxy within 60", VS / SN / AGN',
                "SN, AGN more often than VS",
                " / ".join(f"{by[c]['fraction_host_within_60arcsec']:.1%}" for c in CLASS_NAMES),
            )
        )
    summary = "| Statistic | Paper | This data set |\n|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} |" for a, b, c in rows
    )
    checks = "| Criterion | Paper | Tolerance | Measured | Holds |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {c.name} | {c.paper} | {c.criterion} | {_fmt_value(c.value)} | {'yes' if c.ok else '**no**'} |"
        for c in check_tolerances(stats)
    )
    return {"summary": summary, "checks": checks}


def render_composition(tables: SurveyTables) -> str:
    """Markdown table of the simulator's true subtypes (empty note for data without them), over
    each light curve's first 30 points as the model reads them."""
    obj = tables.objects
    if "true_subtype" not in obj.columns:
        return "(no `true_subtype` column: not simulated data)"
    per = first_points_table(tables.detections, obj)
    rows = []
    for c in CLASS_NAMES:
        sel = per[per["label"] == c]
        for name, group in sel.groupby("true_subtype"):
            rows.append(
                f"| {c} | {name} | {len(group):,} | {len(group) / len(sel):.1%} | "
                f"{group['mean_mag'].median():.2f} | {np.mean(group['mean_mag'] > 18):.0%} | "
                f"{group['amplitude_mag'].median():.2f} | {group['points'].median():.0f} | "
                f"{group['span_d'].median():.0f} |"
            )
    header = (
        "| Class | Subtype | Objects | Share of class | Mean magnitude | Fainter than 18 "
        "| Amplitude (mag) | Points | Span (d) |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    return header + "\n".join(rows)


#: Real sets compared with the simulator: (set name, class, column title).
REAL_COLUMNS = (
    ("mantra_crts", "VS", "CRTS VS"),
    ("ztf_bts", "VS", "ZTF novae (VS)"),
    ("mantra_crts", "SN", "CRTS SN"),
    ("ztf_bts", "SN", "ZTF SN"),
    ("mantra_crts", "AGN", "CRTS AGN"),
)
PROFILE_ROWS = (
    ("objects", "n", 0),
    ("mean magnitude", "mean_mag", 2),
    ("light curves fainter than 18 mag", "fraction_mean_mag_over_18", -1),
    ("amplitude, max - min (mag)", "amplitude_mag", 2),
    ("points (of the first 30)", "points", 0),
    ("span (d)", "span_d", 0),
    ("gap between points (d)", "median_gap_d", 1),
    ("magnitude error", "median_err", 3),
)


def load_real_tables(real_dir: Path) -> dict[str, SurveyTables]:
    """The real sets of ``real_dir`` that exist, each through its preset adapter (as the model sees
    them: CRTS from the discovery date, ZTF r band, one point per night)."""
    from trainer.adapt import adapt_tables
    from trainer.real_sets import REAL_SETS

    out = {}
    for name in {name for name, _, _ in REAL_COLUMNS}:
        folder = real_dir / REAL_SETS[name].folder
        if (folder / "objects.csv").is_file() or (folder / "objects.parquet").is_file():
            out[name] = adapt_tables(load_tables(folder), REAL_SETS[name].adapter)
    return out


def _cell(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if digits < 0 else (f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}")


def render_real_comparison(sim: SurveyTables, real: dict[str, SurveyTables]) -> str:
    """Markdown: medians per class, simulator next to each real set (first 30 points per object)."""
    sim_profile = class_profile(first_points_table(sim.detections, sim.objects))
    real_profile = {k: class_profile(first_points_table(t.detections, t.objects)) for k, t in real.items()}
    columns: list[tuple[str, dict[str, float] | None]] = []
    for c in CLASS_NAMES:
        columns.append((f"**sim {c}**", sim_profile.get(c)))
        for name, label, title in REAL_COLUMNS:
            if label == c and name in real_profile:
                columns.append((title, real_profile[name].get(label)))
    header = "| median per object | " + " | ".join(t for t, _ in columns) + " |\n"
    header += "|---" * (len(columns) + 1) + "|\n"
    rows = [
        f"| {title} | " + " | ".join(_cell(None if p is None else p[key], digits) for _, p in columns) + " |"
        for title, key, digits in PROFILE_ROWS
    ]
    return header + "\n".join(rows)


def render_targets(sim: SurveyTables) -> str:
    """Markdown: each documented per-class target (``PROFILE_TARGETS``), measured on ``sim``."""
    profile = class_profile(first_points_table(sim.detections, sim.objects))
    rows = [
        f"| {t.label} | {t.statistic} | {t.low:g} - {t.high:g} | "
        f"{profile.get(t.label, {}).get(t.statistic, float('nan')):.2f} | "
        f"{'yes' if t.holds(profile) else '**no**'} | {t.source} |"
        for t in PROFILE_TARGETS
    ]
    return (
        "| Class | Statistic | Target | Measured | Holds | Source |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )


def render_sn_mix(sim: SurveyTables, real: dict[str, SurveyTables]) -> str:
    """Markdown: shares of supernova groups, simulator against the ZTF Bright Transient Survey."""
    shares = {}
    obj = sim.objects
    if "true_subtype" in obj.columns:
        sn = obj.loc[obj["label"] == "SN", "true_subtype"].map(sn_type_group)
        shares["simulator"] = sn.value_counts(normalize=True)
    if "ztf_bts" in real and "label_original" in real["ztf_bts"].objects.columns:
        bts = real["ztf_bts"].objects
        shares["ZTF BTS"] = (
            bts.loc[bts["label"] == "SN", "label_original"].map(sn_type_group).value_counts(normalize=True)
        )
    if not shares:
        return "(no supernova subtypes)"
    header = "| SN group | " + " | ".join(shares) + " |\n" + "|---" * (len(shares) + 1) + "|\n"
    rows = [
        f"| {g} | " + " | ".join(f"{share.get(g, 0.0):.1%}" for share in shares.values()) + " |"
        for g in SN_TYPE_GROUPS
    ]
    return header + "\n".join(rows)


def _class_hist(ax, values_by_class: dict[str, np.ndarray], bins, **kw) -> None:
    """Step histograms normalised per class (each sums to 1), as in the paper's figures."""
    for c in CLASS_NAMES:
        v = values_by_class[c]
        if v.size:
            weights = np.full(v.size, 1.0 / v.size)
            ax.hist(
                v,
                bins=bins,
                weights=weights,
                histtype="step",
                color=COLOURS[c],
                lw=1.6,
                label=f"{c} ({v.size:,})",
                **kw,
            )


def write_figures(tables: SurveyTables, host_sep: np.ndarray, img_dir: Path, seed: int = 0) -> list[Path]:
    """Draw the four figures as PNGs into ``img_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lightcurve.context import galactic_lb

    img_dir.mkdir(parents=True, exist_ok=True)
    per = per_object_table(tables.detections, tables.objects)
    by_class = {c: (per["label"] == c).to_numpy() for c in CLASS_NAMES}
    rng = np.random.default_rng(seed)
    paths = []

    # Fig. 1 analogue: mean magnitude against scatter, with marginal histograms.
    fig = plt.figure(figsize=(7.5, 6.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 4), height_ratios=(1, 4), hspace=0.05, wspace=0.05)
    ax = fig.add_subplot(grid[1, 1])
    top = fig.add_subplot(grid[0, 1], sharex=ax)
    left = fig.add_subplot(grid[1, 0], sharey=ax)
    several = (per["n_points"] >= 2).to_numpy()
    for c in CLASS_NAMES:
        sel = np.flatnonzero(by_class[c] & several)
        shown = rng.choice(sel, size=min(sel.size, 4000), replace=False) if sel.size else sel
        ax.scatter(
            per["mean_mag"].to_numpy()[shown],
            per["std_mag"].to_numpy()[shown],
            s=3 if c == "VS" else 8,
            alpha=0.35 if c == "VS" else 0.8,
            color=COLOURS[c],
            label=f"{c}",
            rasterized=True,
        )
    mag = {c: per["mean_mag"].to_numpy()[by_class[c] & several] for c in CLASS_NAMES}
    std = {c: per["std_mag"].to_numpy()[by_class[c] & several] for c in CLASS_NAMES}
    _class_hist(top, mag, np.linspace(9, 21.5, 51))
    _class_hist(left, std, np.logspace(-3, 1, 41), orientation="horizontal")
    ax.set_yscale("log")
    ax.set_xlabel("mean magnitude (L)")
    left.set_ylabel("standard deviation of magnitudes")
    left.invert_xaxis()
    top.legend(fontsize=8)
    plt.setp(top.get_xticklabels(), visible=False)
    plt.setp(ax.get_yticklabels(), visible=False)
    top.set_title("Mean magnitude and scatter (light curves with >= 2 points; cf. paper Fig. 1)", fontsize=9)
    paths.append(img_dir / "data_mag_std.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    # Fig. 2 analogue: duration, number of points, gaps.
    labels = tables.objects.set_index("object_id")["label"]
    gaps, gap_labels = pooled_gaps(tables.detections, labels)
    fig, axes = plt.subplots(3, 1, figsize=(7, 9))
    _class_hist(
        axes[0], {c: per["duration_d"].to_numpy()[by_class[c]] for c in CLASS_NAMES}, np.linspace(0, 600, 41)
    )
    axes[0].set_xlabel("duration: last - first detection (d)")
    _class_hist(
        axes[1], {c: per["n_points"].to_numpy()[by_class[c]] for c in CLASS_NAMES}, np.arange(0.5, 60.5, 1.0)
    )
    axes[1].set_xlabel("number of detections")
    _class_hist(
        axes[2], {c: np.maximum(gaps[gap_labels == c], 1e-3) for c in CLASS_NAMES}, np.logspace(-3, 3, 61)
    )
    axes[2].set_xscale("log")
    axes[2].set_xlabel("time between successive detections (d; same-night exposures at 1e-3 - 1e-1)")
    for a in axes:
        a.set_ylabel("fraction of class")
        a.legend(fontsize=8)
    axes[0].set_title("Light-curve properties by class (cf. paper Fig. 2)", fontsize=9)
    fig.tight_layout()
    paths.append(img_dir / "data_lightcurve_properties.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # Fig. 3 analogue: distance to the nearest galaxy, Galactic latitude.
    _, b = galactic_lb(tables.objects["ra"].to_numpy(), tables.objects["dec"].to_numpy())
    fig, axes = plt.subplots(2, 1, figsize=(7, 6.5))
    no_match = 70.0  # "no galaxy within 60 arcsec" drawn as one bar at 70
    sep = np.where(np.isfinite(host_sep) & (host_sep <= MATCH_RADIUS_ARCSEC), host_sep, no_match)
    _class_hist(
        axes[0], {c: sep[by_class[c]] for c in CLASS_NAMES}, np.concatenate([np.arange(0, 62, 2), [65, 75]])
    )
    axes[0].set_xlabel('distance to nearest catalogue galaxy d_G (arcsec); bar at 70 = none within 60"')
    _class_hist(axes[1], {c: np.asarray(b)[by_class[c]] for c in CLASS_NAMES}, np.linspace(-90, 90, 61))
    axes[1].set_xlabel("Galactic latitude b (deg)")
    for a in axes:
        a.set_ylabel("fraction of class")
        a.legend(fontsize=8)
    axes[0].set_title("Sky context by class (cf. paper Fig. 3)", fontsize=9)
    fig.tight_layout()
    paths.append(img_dir / "data_context.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    paths.append(_example_light_curves(tables, per, img_dir, rng, plt))
    return paths


def _example_light_curves(tables: SurveyTables, per: pd.DataFrame, img_dir: Path, rng, plt) -> Path:
    """Real GOTO light curves (if available) and random simulated ones of each class with >= 5 points."""
    panels: list[tuple[str, pd.DataFrame]] = []
    if (REAL_EXAMPLES / "detections.csv").is_file():
        real = load_tables(REAL_EXAMPLES)
        for _, row in real.objects.iterrows():
            panels.append(
                (
                    f"REAL GOTO {row['label']}: {row['object_id']}",
                    real.detections[real.detections["object_id"] == row["object_id"]],
                )
            )
    det_by_obj = tables.detections.groupby("object_id", sort=False)
    subtype = tables.objects.set_index("object_id").get("true_subtype")
    for c in CLASS_NAMES:
        pool = per.loc[(per["label"] == c) & (per["n_points"] >= 5), "object_id"].to_numpy()
        for oid in rng.choice(pool, size=min(len(pool), 3 if c != "VS" else 4), replace=False):
            kind = f" ({subtype[oid]})" if subtype is not None else ""
            panels.append((f"simulated {c}{kind}: {oid}", det_by_obj.get_group(oid)))
    n_cols = 3
    n_rows = int(np.ceil(len(panels) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(11, 2.6 * n_rows), squeeze=False)
    for ax, (title, det) in zip(axes.ravel(), panels, strict=False):
        t = det["mjd"].to_numpy()
        ax.errorbar(
            t - t.min(),
            det["mag"],
            yerr=det["mag_err"],
            fmt="o",
            ms=3,
            lw=0.8,
            color="k" if title.startswith("REAL") else "tab:purple",
        )
        ax.invert_yaxis()
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("days since first detection", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path = img_dir / "data_examples.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_comparison_figures(sim: SurveyTables, real: dict[str, SurveyTables], img_dir: Path) -> list[Path]:
    """Per class, simulator against the real sets: distributions of mean magnitude, amplitude,
    points and span (first 30 points), and the magnitude error against magnitude."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    sim_tab = first_points_table(sim.detections, sim.objects)
    real_tab = {k: first_points_table(t.detections, t.objects) for k, t in real.items()}
    stats = (
        ("mean_mag", "mean magnitude", np.linspace(10, 21.5, 47)),
        ("amplitude_mag", "amplitude, max - min (mag)", np.linspace(0, 8, 41)),
        ("points", "points (of the first 30)", np.arange(0.5, 31.5, 1.0)),
        ("span_d", "span (d)", np.linspace(0, 1200, 49)),
    )
    fig, axes = plt.subplots(len(CLASS_NAMES), len(stats), figsize=(14, 8.5), squeeze=False)
    for i, c in enumerate(CLASS_NAMES):
        for j, (col, title, bins) in enumerate(stats):
            ax = axes[i, j]
            curves = [(f"sim {c}", sim_tab.loc[sim_tab["label"] == c, col], "k")]
            for (name, label, ctitle), colour in zip(
                REAL_COLUMNS, ("tab:red", "tab:orange", "tab:red", "tab:blue", "tab:red"), strict=True
            ):
                if label == c and name in real_tab:
                    curves.append((ctitle, real_tab[name].loc[real_tab[name]["label"] == c, col], colour))
            for lab, values, colour in curves:
                v = values.to_numpy(dtype=np.float64)
                if v.size:
                    ax.hist(
                        np.clip(v, bins[0], bins[-1]),
                        bins=bins,
                        weights=np.full(v.size, 1 / v.size),
                        histtype="step",
                        lw=1.5,
                        color=colour,
                        label=f"{lab} ({v.size:,})",
                    )
            ax.set_xlabel(title, fontsize=8)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel(f"{c}: fraction", fontsize=8)
            ax.legend(fontsize=6)
    fig.suptitle(
        "Simulated classes against real labelled light curves (first 30 points per object)", fontsize=10
    )
    fig.tight_layout()
    paths = [img_dir / "data_sim_vs_real.png"]
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.arange(10.0, 21.6, 0.5)
    sets = [("simulator (L)", sim.detections, "k")] + [
        (name, t.detections, colour)
        for (name, t), colour in zip(sorted(real.items()), ("tab:red", "tab:blue"), strict=False)
    ]
    for lab, det, colour in sets:
        m, e = det["mag"].to_numpy(), det["mag_err"].to_numpy()
        idx = np.digitize(m, bins)
        centres, med, lo, hi = [], [], [], []
        for k in range(1, bins.size):
            sel = e[idx == k]
            if sel.size >= 20:
                centres.append(0.5 * (bins[k - 1] + bins[k]))
                med.append(np.median(sel))
                lo.append(np.quantile(sel, 0.16))
                hi.append(np.quantile(sel, 0.84))
        ax.plot(centres, med, color=colour, label=lab)
        ax.fill_between(centres, lo, hi, color=colour, alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("magnitude")
    ax.set_ylabel("magnitude error (median, 16-84 %)")
    ax.legend(fontsize=8)
    ax.set_title("Error against magnitude: simulator and real sets", fontsize=9)
    fig.tight_layout()
    paths.append(img_dir / "data_error_vs_mag.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def _replace_sections(doc: str, sections: dict[str, str]) -> str:
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(doc):
            raise ValueError(
                f"document has no <!-- generated:{name} --> ... <!-- /generated:{name} --> markers"
            )
        doc = pattern.sub(lambda m, body=body: f"{m.group(1)}\n{body}\n{m.group(2)}", doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.data_report", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="data directory (detections, objects, galaxies)")
    parser.add_argument(
        "--doc", default="docs/data.md", help="markdown document whose generated sections to fill"
    )
    parser.add_argument("--img", default="docs/img", help="directory for the PNG figures")
    parser.add_argument(
        "--real",
        default=None,
        help="folder holding real_dev/ (default: ../shared/data beside the repository)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    tables = load_tables(args.data)
    host_sep = host_separation_arcsec(tables)
    stats = summary_statistics(tables.detections, tables.objects, host_sep)
    for path in write_figures(tables, host_sep, Path(args.img)):
        print(f"wrote {path}", file=sys.stderr)
    sections = render_tables(stats)
    sections["composition"] = render_composition(tables)
    from trainer.real_sets import default_real_dir

    real = load_real_tables(Path(args.real) if args.real else default_real_dir())
    for path in write_comparison_figures(tables, real, Path(args.img)):
        print(f"wrote {path}", file=sys.stderr)
    sections["real_comparison"] = render_real_comparison(tables, real)
    sections["targets"] = render_targets(tables)
    sections["sn_mix"] = render_sn_mix(tables, real)
    sim = tables.provenance.get("simulator", {})
    sections["source"] = (
        f"Data: `{args.data}` — {stats['n_objects']:,} objects, {stats['n_detections']:,} detections"
        + (
            f", simulator seed {sim.get('seed')}, created {sim.get('created_utc')}, "
            f"simulation wall time {sim.get('wall_time_s')} s"
            if sim
            else ""
        )
        + "."
    )
    doc_path = Path(args.doc)
    doc_path.write_text(_replace_sections(doc_path.read_text(), sections))
    print(f"updated {doc_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
