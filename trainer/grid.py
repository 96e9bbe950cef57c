"""The paper's hyper-parameter grid (Table 1) and its summary (Table 2), resumable run by run.

Full grid: {GRU, LSTM} x {CE, WCE, focal} x RNN dim {100, 150} x dense {100, 200} x gamma {1, 2}
(focal only) = 32 models, plus GRU focal without context (8 models). Each configuration trains in
``RUNS_DIR/<name>/training/`` (resumable) and exports a complete, servable model directory to
``RUNS_DIR/<name>/model/``; a run whose model directory exists is skipped on a re-run. The best run of
each family is chosen by validation AUC (Hand & Till), as in the paper.

On a small machine use ``--reduced`` (one run per family, with the paper's Table 2 hyper-parameters:
7 models instead of 40), fewer ``--epochs``, and/or ``--only`` to pick families.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trainer.dataset import PreparedData
from trainer.export import atomic_directory, write_json
from trainer.model import ModelConfig
from trainer.runner import run_name, train_and_export
from trainer.training import TrainConfig

__all__ = ["FAMILIES", "GridRun", "paper_grid", "run_grid", "select_runs", "summarise_grid"]

RNN_UNITS = (100, 150)
DENSE_UNITS = (100, 200)
GAMMAS = (1.0, 2.0)
FAMILIES = ("gru-ce", "gru-wce", "gru-focal", "lstm-ce", "lstm-wce", "lstm-focal", "gru-focal-nc")
#: Paper Table 2: best (dense, rnn dim, gamma) of each family.
TABLE2_BEST = {
    "lstm-focal": (200, 150, 1.0),
    "gru-focal": (200, 150, 2.0),
    "lstm-wce": (200, 100, None),
    "gru-wce": (200, 150, None),
    "lstm-ce": (200, 150, None),
    "gru-ce": (200, 150, None),
    "gru-focal-nc": (100, 100, 1.0),
}
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


@dataclass(frozen=True)
class GridRun:
    family: str
    config: TrainConfig

    @property
    def name(self) -> str:
        return run_name(self.config)


def _family(rnn: str, loss: str, use_context: bool) -> str:
    return f"{rnn}-{loss}" + ("" if use_context else "-nc")


def paper_grid(
    base: TrainConfig, *, reduced: bool = False, units: tuple[int, int] | None = None
) -> list[GridRun]:
    """All 40 configurations of the paper (or, ``reduced``, the 7 Table 2 winners).

    ``base`` supplies everything the grid does not vary (epochs, seed, learning rate, ...);
    ``units`` overrides every (rnn, dense) size (used by ``--fast``).
    """
    runs: list[GridRun] = []
    families = [(r, loss, True) for r in ("gru", "lstm") for loss in ("ce", "wce", "focal")]
    families.append(("gru", "focal", False))
    for rnn, loss, ctx in families:
        fam = _family(rnn, loss, ctx)
        if reduced:
            dense, rnn_dim, gamma = TABLE2_BEST[fam]
            combos = [(rnn_dim, dense, gamma if gamma is not None else base.gamma)]
        else:
            gammas = GAMMAS if loss == "focal" else (base.gamma,)
            combos = [(r, d, g) for r in RNN_UNITS for d in DENSE_UNITS for g in gammas]
        seen: set[str] = set()
        for rnn_dim, dense, gamma in combos:
            if units is not None:
                rnn_dim, dense = units
            model = replace(base.model, rnn_type=rnn, rnn_units=rnn_dim, dense_units=dense, use_context=ctx)
            run = GridRun(fam, replace(base, model=model, loss=loss, gamma=gamma))
            if run.name not in seen:
                seen.add(run.name)
                runs.append(run)
    return runs


def select_runs(runs: Sequence[GridRun], only: str | None) -> list[GridRun]:
    """Runs whose family or name is in the comma-separated ``only`` (all when ``None``)."""
    if not only:
        return list(runs)
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    known = {r.family for r in runs} | {r.name for r in runs}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"--only: unknown {unknown}; choose families {list(FAMILIES)} or run names")
    return [r for r in runs if r.family in wanted or r.name in wanted]


def _model_dir(runs_dir: Path, run: GridRun) -> Path:
    return runs_dir / run.name / "model"


def run_grid(
    data: PreparedData,
    runs_dir: str | Path,
    runs: Sequence[GridRun],
    *,
    tsne_points: int = 2000,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Train, evaluate and export every run not already exported; return all model directories."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    root = Path(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    for i, run in enumerate(runs, start=1):
        model_dir = _model_dir(root, run)
        if (model_dir / "metrics.json").exists() and (model_dir / "metadata.json").exists():
            say(f"[{i}/{len(runs)}] {run.name}: done, skipped")
            done.append(model_dir)
            continue
        say(f"[{i}/{len(runs)}] {run.name}: training ({run.config.epochs} epochs)")
        train_and_export(
            run.config,
            data,
            model_dir,
            work_dir=root / run.name / "training",
            model_version=None,
            tsne_points=tsne_points,
            log=say,
        )
        done.append(model_dir)
    return done


def _row(model_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    from trainer.evaluation import family_of

    m = metrics["model"]
    return {
        "name": m.get("run_name", model_dir.parent.name),
        "family": family_of(m),
        "model_dir": str(model_dir),
        "rnn_type": m["rnn_type"],
        "loss": m["loss"],
        "gamma": m["gamma"],
        "rnn_units": m["rnn_units"],
        "dense_units": m["dense_units"],
        "use_context": m["use_context"],
        "epochs_completed": m.get("epochs_completed"),
        "validation_auc": metrics.get("validation", {}).get("auc"),
        "validation_f1": metrics.get("validation", {}).get("f1_macro"),
        "test_auc": metrics["test"]["auc"],
        "test_f1": metrics["test"]["f1_macro"],
    }


def best_per_family(runs_dir: str | Path) -> dict[str, Path]:
    """Model directory of the best validation-AUC run of each family found under ``runs_dir``."""
    best: dict[str, tuple[float, Path]] = {}
    for metrics_path in sorted(Path(runs_dir).glob("*/model/metrics.json")):
        row = _row(metrics_path.parent, json.loads(metrics_path.read_text()))
        score = row["validation_auc"] if row["validation_auc"] is not None else -1.0
        if row["family"] not in best or score > best[row["family"]][0]:
            best[row["family"]] = (score, metrics_path.parent)
    return {fam: path for fam, (_, path) in best.items()}


def _markdown(rows: list[dict[str, Any]], best: dict[str, Path]) -> str:
    def f(v: Any) -> str:
        return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    header = "| family | run | dense | RNN dim | γ | epochs | val AUC | val F1 | test AUC | test F1 |"
    lines = [
        "# Grid results (paper Table 2 analogue)",
        "",
        "Best run of each family by validation AUC (Hand & Till):",
        "",
        header,
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    best_names = {p.parent.name for p in best.values()}
    for r in rows:
        if r["name"] in best_names:
            g = f"{r['gamma']:g}" if r["loss"] == "focal" else "–"
            lines.append(
                f"| {r['family']} | {r['name']} | {r['dense_units']} | {r['rnn_units']} | {g} | "
                f"{r['epochs_completed']} | {f(r['validation_auc'])} | {f(r['validation_f1'])} | "
                f"{f(r['test_auc'])} | {f(r['test_f1'])} |"
            )
    lines += ["", "All runs:", "", header, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = f"{r['gamma']:g}" if r["loss"] == "focal" else "–"
        lines.append(
            f"| {r['family']} | {r['name']} | {r['dense_units']} | {r['rnn_units']} | {g} | "
            f"{r['epochs_completed']} | {f(r['validation_auc'])} | {f(r['validation_f1'])} | "
            f"{f(r['test_auc'])} | {f(r['test_f1'])} |"
        )
    lines += ["", "Comparison report with figures and findings: [report/README.md](report/README.md)", ""]
    return "\n".join(lines)


def summarise_grid(runs_dir: str | Path) -> dict[str, Any]:
    """Write ``results.json``, ``results.md`` and ``report/`` (comparison of the best runs)."""
    from trainer.report import write_report
    from trainer.runner import attach_comparison

    root = Path(runs_dir)
    rows = [_row(p.parent, json.loads(p.read_text())) for p in sorted(root.glob("*/model/metrics.json"))]
    if not rows:
        raise ValueError(f"{root}: no finished runs to summarise")
    rows.sort(key=lambda r: (FAMILIES.index(r["family"]) if r["family"] in FAMILIES else 99, r["name"]))
    best = best_per_family(root)
    best_metrics = {fam: json.loads((path / "metrics.json").read_text()) for fam, path in best.items()}
    # The report is centred on the paper's headline family when present, else the best validation AUC.
    lead = (
        "gru-focal"
        if "gru-focal" in best_metrics
        else max(best_metrics, key=lambda k: best_metrics[k].get("validation", {}).get("auc") or -1.0)
    )
    others = [m for fam, m in best_metrics.items() if fam != lead]
    summary = attach_comparison(best_metrics[lead], others)
    results = {
        "runs": rows,
        "best": {fam: str(path) for fam, path in best.items()},
        "comparison": summary["comparison"],
    }
    write_json(root / RESULTS_JSON, results)
    (root / RESULTS_MD).write_text(_markdown(rows, best))
    with atomic_directory(root / "report") as tmp:
        write_report(tmp, summary)
    return results


def grid_base_config(epochs: int, seed: int, model: ModelConfig | None = None) -> TrainConfig:
    return TrainConfig(model=model or ModelConfig(), epochs=epochs, seed=seed)
