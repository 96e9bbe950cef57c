"""The real-data benchmark: a model directory scored on every real labelled set, one command.

Sets and their adapters are :data:`trainer.real_sets.REAL_SETS` (Catalina from the discovery date per
night, ZTF r band per night, the two real GOTO curves as observed); a set the model trained on is
scored on its held-out test part only (:mod:`trainer.real_benchmark`).

Writes ``benchmarks/results/real_data.json`` and prints the README's table (Markdown).

Usage::

    python benchmarks/real_data.py                                 # model_artifacts, ../shared/data
    python benchmarks/real_data.py --model DIR --data-root DIR --out FILE
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainer.export import write_json  # noqa: E402
from trainer.real_benchmark import N_OBS_REPORTED, score_model_on_real_sets  # noqa: E402
from trainer.real_sets import default_real_dir  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "real_data.json"


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.3f}"


def markdown_table(result: dict) -> str:
    """One row per set: objects per class, AUC over the classes present, recall per class, AUC by n,
    and the expected calibration error of the top label (of the probabilities the model serves)."""
    head = (
        "| set (adapter) | objects VS / SN / AGN | AUC (classes present) | recall VS / SN / AGN | "
        + " / ".join(f"AUC@{n}" for n in N_OBS_REPORTED)
        + " | ECE top label |"
    )
    lines = [head, "|" + "---|" * 6]
    for s in result["sets"]:
        counts = " / ".join(str(s["class_counts"][c]) for c in ("VS", "SN", "AGN"))
        recall = " / ".join(_fmt(s["recall"][c], pct=True) for c in ("VS", "SN", "AGN"))
        by_n = " / ".join(_fmt(s["auc_by_n_obs"][str(n)]) for n in N_OBS_REPORTED)
        lines.append(
            f"| {s['set']} ({s['adapter']}; {s['objects']}) | {counts} | {_fmt(s['auc'])} "
            f"({', '.join(s['classes_present'])}) | {recall} | {by_n} | "
            f"{_fmt((s.get('ece') or {}).get('top_label'))}{'' if s.get('calibrated') else ' (raw)'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=REPO / "model_artifacts")
    parser.add_argument("--data-root", type=Path, default=default_real_dir())
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = [s.strip() for s in args.sets.split(",")] if args.sets else None
    result = score_model_on_real_sets(
        args.model, args.data_root, names, log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    given = argv if argv is not None else sys.argv[1:]
    result["command"] = "python benchmarks/real_data.py " + " ".join(given)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)  # NaN (undefined numbers) as null
    print(markdown_table(result))
    print(f"\nwritten: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
