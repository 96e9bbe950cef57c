"""``goto-classifier simulate``: simulate the sky and write its tables and provenance."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["simulate_command"]

log = logging.getLogger(__name__)


def simulate_command(args: argparse.Namespace) -> int:
    """Run the simulator for the CLI: ``args.out``, ``args.n_objects`` (None: the paper's 99,201),
    ``args.seed``, ``args.format`` ("parquet" | "csv"). Returns the exit code."""
    from lightcurve.context import GalaxyCatalog
    from trainer.data import write_tables
    from trainer.simulator.generate import simulate
    from trainer.survey_stats import check_tolerances, summary_statistics

    started = time.perf_counter()
    fmt = getattr(args, "format", "parquet") or "parquet"
    try:
        sky = simulate(args.n_objects, args.seed)
    except ValueError as err:
        print(f"simulate: {err}", file=sys.stderr)
        return 2
    print("simulate: computing summary statistics and writing tables...", file=sys.stderr)
    host_sep = GalaxyCatalog(
        sky.galaxies["ra"].to_numpy(), sky.galaxies["dec"].to_numpy()
    ).nearest_separation_arcsec(sky.objects["ra"].to_numpy(), sky.objects["dec"].to_numpy())
    stats = summary_statistics(sky.detections, sky.objects, host_sep)
    checks = check_tolerances(stats)
    out = Path(args.out)
    written = write_tables(out, sky.detections, sky.objects, sky.galaxies, fmt=fmt)
    provenance = {
        **sky.provenance,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "format": fmt,
        "files": {k: p.name for k, p in written.items()},
        "wall_time_s": round(time.perf_counter() - started, 1),
        "summary_statistics": stats,
        "paper_checks": [vars(c) for c in checks],
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=_json_default) + "\n")
    counts = stats["class_counts"]
    print(
        f"simulate: wrote {stats['n_objects']} objects (VS {counts['VS']}, SN {counts['SN']}, "
        f"AGN {counts['AGN']}), {stats['n_detections']} detections, {len(sky.galaxies)} galaxies to {out} "
        f"in {provenance['wall_time_s']} s",
        file=sys.stderr,
    )
    for c in checks:
        value = c.value if isinstance(c.value, str) else round(c.value, 2)
        print(
            f"  {'ok  ' if c.ok else 'MISS'} {c.name}: {value} (paper {c.paper}; criterion {c.criterion})",
            file=sys.stderr,
        )
    return 0


def _json_default(value: object) -> object:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
