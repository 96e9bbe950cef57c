"""Draw ``metrics.json`` (PNG, matplotlib Agg) and write a readable Markdown report.

Nothing is computed here that changes a number: every value comes from the metrics written by
:mod:`trainer.evaluation`. The prose that states whether the paper's findings reproduce is generated
from those numbers, never fixed text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_report"]

#: Paper colours: VS grey, SN red, AGN blue (Figs. 7, 11, 12).
CLASS_COLOURS = {"VS": "0.55", "SN": "tab:red", "AGN": "tab:blue"}
PAPER_TABLE2 = [
    ("LSTM", "Weighted focal loss", 200, 150, "1", 0.958, 0.469, 0.966, 0.486),
    ("GRU", "Weighted focal loss", 200, 150, "2", 0.947, 0.425, 0.972, 0.468),
    ("LSTM", "Weighted cross-entropy", 200, 100, "-", 0.939, 0.404, 0.967, 0.464),
    ("GRU", "Weighted cross-entropy", 200, 150, "-", 0.932, 0.378, 0.968, 0.442),
    ("LSTM", "Unweighted cross-entropy", 200, 150, "-", 0.899, 0.727, 0.948, 0.794),
    ("GRU", "Unweighted cross-entropy", 200, 150, "-", 0.909, 0.758, 0.937, 0.806),
    ("GRU NC", "Weighted focal loss", 100, 100, "1", 0.922, 0.322, 0.909, 0.324),
]
LOSS_NAMES = {
    "ce": "Unweighted cross-entropy",
    "wce": "Weighted cross-entropy",
    "focal": "Weighted focal loss",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(name: str) -> str:
    return CLASS_COLOURS.get(name, "black")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _pct(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def label_of(describe: dict[str, Any]) -> str:
    """Human label of a model, e.g. ``GRU weighted focal (g=2)`` or ``GRU NC ...``."""
    rnn = describe.get("rnn_type", "?").upper() + ("" if describe.get("use_context", True) else " NC")
    loss = describe.get("loss", "?")
    text = f"{rnn} {LOSS_NAMES.get(loss, loss).lower()}"
    if loss == "focal":
        text += f" (γ={describe.get('gamma'):g})"
    return text


# ----------------------------------------------------------------------------------------------
# Single-model figures


def _draw_confusion(ax: Any, confusion: dict[str, Any], class_names: Sequence[str], title: str) -> None:
    frac = np.asarray(confusion["fractions"], dtype=float)
    counts = np.asarray(confusion["counts"], dtype=int)
    ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(frac.shape[0]):
        for j in range(frac.shape[1]):
            colour = "white" if frac[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{frac[i, j]:.2f}\n({counts[i, j]})",
                ha="center",
                va="center",
                color=colour,
                fontsize=9,
            )
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path.name


def _fig_confusion(metrics: dict, out: Path) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    _draw_confusion(ax, metrics["test"]["confusion"], metrics["class_names"], "test set, all observations")
    return _save(fig, out / "confusion.png")


def _draw_roc(ax: Any, roc: dict[str, Any], title: str) -> None:
    for name, curve in roc.items():
        if curve["fpr"]:
            ax.plot(curve["fpr"], curve["tpr"], color=_colour(name), label=f"{name} (AUC {curve['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="0.7")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)


def _fig_roc(metrics: dict, out: Path, name: str = "roc.png") -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    _draw_roc(ax, metrics["test"]["roc"], f"one-vs-rest ROC, {label_of(metrics['model'])}")
    return _save(fig, out / name)


def _fig_reliability(calibration: dict[str, Any], class_names: Sequence[str], out: Path) -> str:
    """Reliability diagrams (observed fraction against mean predicted probability, per bin) of each
    class and of the top label, calibrated (solid) and raw softmax (dotted)."""
    plt = _plt()
    panels = [*class_names, "top_label"]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.2))
    for ax, name in zip(axes, panels, strict=True):
        for key, style in (("test", "-o"), ("test_uncalibrated", ":x")):
            diagram = (calibration.get(key) or {}).get("reliability", {}).get(name)
            if not diagram:
                continue
            pairs = [(p, o) for p, o in zip(diagram["mean_predicted"], diagram["observed"], strict=True)
                     if p is not None]
            if pairs:
                xs, ys = zip(*pairs, strict=True)
                label = "calibrated" if key == "test" else "raw softmax"
                ax.plot(xs, ys, style, ms=3, color=_colour(name) if name in class_names else "black",
                        label=f"{label} (ECE {diagram['ece']:.3f})")
        ax.plot([0, 1], [0, 1], ls=":", color="0.7")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability")
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("observed fraction")
    return _save(fig, out / "reliability.png")


def _calibration_lines(metrics: dict[str, Any], figures: dict[str, str]) -> list[str]:
    calibration = metrics.get("calibration")
    if not calibration or "reliability" not in figures:
        return []
    names = [*metrics["class_names"], "top_label"]
    fitted = calibration.get("map")
    if fitted:
        if fitted["method"] == "temperature":
            what = f"T = {fitted['temperature']:.4f}"
        else:
            scale, bias = ([round(v, 3) for v in fitted[k]] for k in ("scale", "bias"))
            what = f"scale {scale}, bias {bias}"
        head = (
            f"Calibrated by {fitted['method']} scaling ({what}), fitted on the {fitted['fitted_on']}: "
            f"validation log-loss {fitted['log_loss_before']:.4f} -> {fitted['log_loss_after']:.4f}. "
            "Every number above is of the calibrated probabilities."
        )
    else:
        head = "Not calibrated: the probabilities are the raw softmax (as the paper)."
    def row(label: str, key: str) -> list[str]:
        ece = calibration[key]["ece"]
        return [label, _fmt(calibration[key]["log_loss"], 4), *(_fmt(ece.get(c), 4) for c in names)]

    rows = [
        row(label, key)
        for label, key in (("calibrated", "test"), ("raw softmax", "test_uncalibrated"))
        if calibration.get(key) and (key == "test_uncalibrated" or fitted)
    ]
    return [
        "### Calibration (reliability diagrams, expected calibration error)",
        "",
        head,
        "",
        _table(["test split", "log-loss", *[f"ECE {n.replace('_', ' ')}" for n in names]], rows),
        "",
        f"ECE: {calibration['test']['n_bins']} equal-width bins of the predicted probability, the "
        "object-weighted mean of |mean predicted - observed fraction| (per class one against the rest; "
        "top label: the largest probability against the fraction right).",
        "",
        f"![reliability]({figures['reliability']})",
        "",
    ]


def _fig_auc_vs_nobs(curves: dict[str, list[dict]], out: Path, name: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for label, rows in curves.items():
        style = {"ls": ":", "marker": "^", "color": "black"} if " NC " in f" {label} " else {"marker": "o"}
        auc = [np.nan if r["auc"] is None else r["auc"] for r in rows]
        ax.plot([r["n_obs"] for r in rows], auc, ms=3, label=label, **style)
    ax.set_xlabel("maximum number of observations")
    ax.set_ylabel("AUC (Hand & Till)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out / name)


def _fig_confusion_nobs(metrics: dict, out: Path, name: str) -> str:
    plt = _plt()
    at = metrics["confusion_at_n_obs"]
    fig, axes = plt.subplots(1, len(at), figsize=(4.2 * len(at), 4.0))
    for ax, (n_obs, confusion) in zip(np.atleast_1d(axes), at.items(), strict=True):
        _draw_confusion(ax, confusion, metrics["class_names"], f"up to {n_obs} observation(s)")
    fig.suptitle(label_of(metrics["model"]), fontsize=10)
    return _save(fig, out / name)


def _draw_tsne(ax: Any, tsne: dict, layer: str, class_names: Sequence[str], title: str) -> None:
    xy = np.asarray(tsne["layers"][layer], dtype=float)
    labels = np.asarray(tsne["labels"])
    for j, name in enumerate(class_names):
        sel = labels == j
        if sel.any():
            ax.scatter(
                xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, color=_colour(name), label=f"{name} ({sel.sum()})"
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, markerscale=3)


def _fig_tsne(metrics: dict, out: Path) -> str:
    plt = _plt()
    tsne = metrics["tsne"]
    fig, axes = plt.subplots(1, len(tsne["layers"]), figsize=(5.0 * len(tsne["layers"]), 4.6))
    for ax, layer in zip(np.atleast_1d(axes), tsne["layers"], strict=True):
        _draw_tsne(ax, tsne, layer, metrics["class_names"], f"t-SNE of '{layer}' output")
    return _save(fig, out / "tsne.png")


def _draw_history(ax_loss: Any, history: list[dict], label: str, colour: Any = None) -> None:
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) < 20 else None  # a one-epoch run must still show a point
    (line,) = ax_loss.plot(
        epochs,
        [r["loss"] for r in history],
        color=colour,
        marker=marker,
        ms=3,
        label=f"{label} train".strip(),
    )
    ax_loss.plot(
        epochs,
        [r["val_loss"] for r in history],
        color=line.get_color(),
        ls="--",
        marker=marker,
        ms=3,
        label=f"{label} validation".strip(),
    )


def _fig_history(metrics: dict, out: Path) -> str:
    plt = _plt()
    history = metrics["history"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.8))
    _draw_history(ax1, history, "")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=8)
    ax2.plot(
        [r["epoch"] for r in history],
        [np.nan if r["val_auc"] is None else r["val_auc"] for r in history],
        marker=".",
        color="tab:green",
    )
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation AUC")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return _save(fig, out / "training_curves.png")


# ----------------------------------------------------------------------------------------------
# Markdown


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _model_section(metrics: dict, figures: dict[str, str]) -> list[str]:
    m, test = metrics["model"], metrics["test"]
    classes = metrics["class_names"]
    val = metrics.get("validation", {})
    lines = [
        f"## {label_of(m)} — `{m.get('model_version', '?')}`",
        "",
        f"RNN units {m.get('rnn_units')}, dense units {m.get('dense_units')}, context "
        f"{'on' if m.get('use_context', True) else 'off'}, {m.get('epochs_completed', '?')} epochs trained, "
        f"weights of epoch {m.get('exported_epoch', '?')} exported.",
        "",
        _table(
            ["set", "objects", "AUC", "AUC over", "macro F1", "accuracy"]
            + [f"recall {c}" for c in classes],
            [
                [
                    "validation",
                    val.get("n_objects"),
                    val.get("auc"),
                    "+".join(val.get("classes_present", classes)),
                    val.get("f1_macro"),
                    val.get("accuracy"),
                    *[val.get("recall", {}).get(c) for c in classes],
                ]
            ]
            * bool(val)
            + [
                [
                    metrics.get("evaluated_set_name", "test"),
                    test["n_objects"],
                    test["auc"],
                    "+".join(test.get("classes_present", classes)),
                    test["f1_macro"],
                    test["accuracy"],
                    *[test["recall"][c] for c in classes],
                ]
            ],
        ),
        "",
        _table(
            ["class", "objects", "recall at argmax", "precision at argmax", "one-vs-rest AUC"],
            [
                [
                    c,
                    test["class_counts"].get(c),
                    test["recall"].get(c),
                    test["precision"].get(c),
                    test.get("auc_one_vs_rest", {}).get(c),
                ]
                for c in classes
            ],
        ),
        "",
        "AUC is Hand & Till's over the classes present in the set (with two classes, the binary AUC of "
        "that pair); – marks a number the set cannot define (a class without objects, a class never "
        "predicted).",
        "",
        "### Confusion matrix and ROC (paper Figs. 6-7)",
        "",
        f"![confusion]({figures['confusion']}) ![roc]({figures['roc']})",
        "",
        "Rows are true classes: fraction of the row, count in parentheses.",
        "",
        "### Threshold table (paper Table 3)",
        "",
        _table(
            ["class", "threshold", "TPR", "FPR", "true positives", "false positives"],
            [
                [c, r["threshold"], _pct(r["tpr"]), _pct(r["fpr"]), r["tp"], r["fp"]]
                for c, r in test["threshold_table"].items()
            ],
        ),
        "",
        "### Time-dependent performance (paper Figs. 8-9)",
        "",
        f"![auc vs observations]({figures['auc_vs_nobs']})",
        "",
        f"![confusion at 1, 6, 20 observations]({figures['confusion_nobs']})",
        "",
    ]
    curve = metrics["by_n_obs"]
    picks = [r for r in curve if r["n_obs"] in (1, 3, 6, 10, 20, 30)]
    lines += [
        _table(["max observations", *[r["n_obs"] for r in picks]], [["AUC", *[r["auc"] for r in picks]]]),
        "",
    ]
    lines += _calibration_lines(metrics, figures)
    if "tsne" in figures:
        lines += [
            "### t-SNE of the last RNN and last dense layer (paper Fig. 12)",
            "",
            f"![t-SNE]({figures['tsne']})",
            "",
            f"{metrics['tsne']['n_points']} test objects, {metrics['tsne']['sampling']}.",
            "",
        ]
    if "history" in figures:
        lines += ["### Training curves (paper Fig. A1)", "", f"![training curves]({figures['history']})", ""]
    return lines


def _describe_values(values: dict[str, Any]) -> str:
    parts = []
    for key, val in values.items():
        if isinstance(val, dict) and all(isinstance(v, dict) for v in val.values()):
            inner = "; ".join(
                f"{k}: " + ", ".join(f"{c} {_pct(x)}" for c, x in v.items()) for k, v in val.items()
            )
            parts.append(f"{key.replace('_', ' ')} — {inner}")
        elif isinstance(val, dict):
            parts.append(f"{key.replace('_', ' ')} — " + ", ".join(f"{k} {_fmt(v)}" for k, v in val.items()))
        else:
            parts.append(f"{key.replace('_', ' ')} {_fmt(val)}")
    return "; ".join(parts)


def _comparison_section(comparison: dict, entries: Sequence[dict], out: Path) -> list[str]:
    plt = _plt()
    classes = entries[0]["class_names"]
    lines = ["## Comparison with the paper's other models (paper Table 2)", ""]
    lines += [
        _table(
            [
                "family",
                "RNN",
                "loss",
                "dense",
                "RNN dim",
                "γ",
                "val AUC",
                "val F1",
                "test AUC",
                "test F1",
                "epochs",
            ],
            [
                [
                    r["family"],
                    r["rnn_type"].upper() + ("" if r["use_context"] else " NC"),
                    LOSS_NAMES.get(r["loss"]),
                    r["dense_units"],
                    r["rnn_units"],
                    f"{r['gamma']:g}" if r["loss"] == "focal" else "–",
                    r["validation_auc"],
                    r["validation_f1"],
                    r["test_auc"],
                    r["test_f1"],
                    r["epochs_completed"],
                ]
                for r in comparison["table"]
            ],
        ),
        "",
        "The paper's Table 2 for reference (GOTO data, 200 epochs):",
        "",
    ]
    lines += [
        _table(
            ["RNN", "loss", "dense", "RNN dim", "γ", "val AUC", "val F1", "test AUC", "test F1"],
            [list(r) for r in PAPER_TABLE2],
        ),
        "",
    ]

    fig_names: dict[str, str] = {}
    fig_names["auc"] = _fig_auc_vs_nobs(
        {label_of(e["model"]): e["by_n_obs"] for e in entries}, out, "compare_auc_vs_nobs.png"
    )
    n = len(entries)
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 4.0))
    for ax, e in zip(np.atleast_1d(axes), entries, strict=True):
        _draw_confusion(ax, e["test"]["confusion"], classes, label_of(e["model"]))
    fig_names["confusion"] = _save(fig, out / "compare_confusion.png")
    with_history = [e for e in entries if e.get("history")]
    if with_history:
        # One panel per model: the losses differ in scale (focal < cross-entropy), as in paper Fig. A1.
        cols = min(3, len(with_history))
        rows = math.ceil(len(with_history) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
        for ax, e in zip(axes.ravel(), with_history, strict=False):
            _draw_history(ax, e["history"], "")
            ax.set_title(label_of(e["model"]), fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for ax in axes.ravel()[len(with_history) :]:
            ax.axis("off")
        fig_names["history"] = _save(fig, out / "compare_training_curves.png")
    lines += [
        "### Confusion matrices of the best models (paper Fig. 6)",
        "",
        f"![confusion matrices]({fig_names['confusion']})",
        "",
        "### AUC against the maximum number of observations, every model (paper Fig. 8)",
        "",
        f"![auc vs observations]({fig_names['auc']})",
        "",
    ]
    if "history" in fig_names:
        lines += [
            "### Training and validation loss (paper Fig. A1)",
            "",
            f"![loss]({fig_names['history']})",
            "",
        ]

    ctx = next(
        (
            e
            for e in entries
            if e["model"].get("use_context", True)
            and e["model"]["loss"] == "focal"
            and e["model"]["rnn_type"] == "gru"
        ),
        None,
    )
    nc = next((e for e in entries if not e["model"].get("use_context", True)), None)
    if nc is not None:
        lines += [
            "### Without context (paper Figs. 10-11)",
            "",
            f"![no-context confusion]({_fig_confusion_nobs(nc, out, 'nc_confusion_nobs.png')}) "
            f"![no-context ROC]({_fig_roc(nc, out, 'nc_roc.png')})",
            "",
        ]
        if ctx is not None and "tsne" in ctx and "tsne" in nc:
            layers = list(ctx["tsne"]["layers"])
            fig, axes = plt.subplots(2, len(layers), figsize=(5.0 * len(layers), 9.0))
            for row, (e, tag) in enumerate(((nc, "no context"), (ctx, "with context"))):
                for col, layer in enumerate(layers):
                    _draw_tsne(axes[row][col], e["tsne"], layer, classes, f"{tag}: '{layer}'")
            lines += [
                "### t-SNE with and without context (paper Fig. 12)",
                "",
                f"![t-SNE]({_save(fig, out / 'compare_tsne.png')})",
                "",
            ]

    lines += ["## Do the paper's findings reproduce?", ""]
    if not comparison["findings"]:
        lines += ["No pair of models needed for a comparison was given.", ""]
    verdicts = {True: "**Reproduced.**", False: "**Not reproduced.**", None: "**Inconclusive.**"}
    for f in comparison["findings"]:
        lines += [
            f"- {verdicts[f['reproduced']]} {f['claim']}. Here: {_describe_values(f['values'])}. "
            f"Paper: {f['paper']}."
            + (f" Rule: {f['rule']}." if f.get("rule") else "")
        ]
    margins = comparison.get("tie_margins", {})
    counts = {v: sum(f["reproduced"] is v for f in comparison["findings"]) for v in (True, False, None)}
    lines += [
        "",
        f"{counts[True]} of {len(comparison['findings'])} findings reproduce in direction, "
        f"{counts[False]} go the other way and {counts[None]} are inconclusive (differences below "
        f"{margins.get('auc', '?')} in AUC or {margins.get('recall', '?')} in recall/F1 count as ties).",
        "",
    ]
    return lines


def _single_model_findings(metrics: dict[str, Any]) -> list[str]:
    from trainer.evaluation import rise_then_level

    rule = rise_then_level(metrics["by_n_obs"])
    if rule is None:
        return []
    at = rule["auc_at"]
    verdict = {True: "holds", False: "does not hold", None: "cannot be judged (an AUC is undefined)"}
    return [
        "## Do the paper's findings hold here?",
        "",
        f"- AUC rises with the number of observations up to ~10, then levels off (paper 5.3): AUC "
        f"{_fmt(at['1'])} with 1 observation, {_fmt(at['10'])} with up to 10, {_fmt(at['30'])} with up "
        f"to 30. Rule: {rule['rule']}. Verdict: the finding {verdict[rule['holds']]} for this model on "
        "this set.",
        "- The loss and context comparisons need the other models: pass their directories with "
        "`--compare` (for example the runs of `goto-classifier grid`).",
        "",
    ]


def _dropped(adapter: dict[str, Any]) -> str:
    lost = adapter.get("objects_in", 0) - adapter.get("objects_out", 0)
    if not adapter or lost <= 0:
        return ""
    by_class = ", ".join(f"{c} {n}" for c, n in adapter.get("objects_dropped_by_class", {}).items())
    return f"; {lost} objects left without detections and dropped ({by_class})"


def _evaluated_data_lines(metrics: dict[str, Any]) -> list[str]:
    evaluated = metrics.get("evaluated_data")
    if not evaluated:
        return []
    prov = evaluated.get("provenance", {})
    files = prov.get("files", {})
    adapter = prov.get("adapter", {})
    counts = metrics["test"]["class_counts"]
    lines = [
        "## Data evaluated",
        "",
        f"- Path: `{evaluated.get('path')}` ({evaluated.get('split_description', '')}).",
        "- Files: " + ", ".join(f"{k} `{v.get('path')}` (sha256 {str(v.get('sha256'))[:12]})" for k, v in
                                files.items()) + ".",
        f"- Adapter: {adapter.get('description', 'as recorded (no adapter)')}{_dropped(adapter)}.",
        "- Objects scored per class: " + ", ".join(f"{c} {n}" for c, n in counts.items()) + ".",
    ]
    if prov.get("simulator"):
        lines.append(f"- Simulated by trainer.simulator (seed {prov['simulator'].get('seed', '?')}).")
    return [*lines, ""]


def _provenance_lines(metadata: dict[str, Any] | None) -> list[str]:
    if not metadata:
        return []
    data = metadata.get("data", {})
    training = metadata.get("training", {})
    lines = ["## The model's training data and departures from the paper", ""]
    sim = data.get("simulator")
    if sim:
        source = f"simulated by trainer.simulator (seed {sim.get('seed', '?')})"
    else:
        files = data.get("files", {})
        source = (
            ", ".join(f"{k} {v.get('path', '?')}" for k, v in files.items()) or "tables of unknown origin"
        )
    lines.append(
        f"- Trained on: {source}; {data.get('n_objects', '?')} objects, class counts "
        + ", ".join(f"{c} {n}" for c, n in data.get("class_counts", {}).items())
        + "."
    )
    if sim:
        lines.append(
            "- The data are simulated (the GOTO set is not public): absolute scores are not comparable "
            "with the paper's, only the directions of its findings are."
        )
    for item in training.get("departures_from_paper", []):
        lines.append(f"- {item}")
    lines.append("")
    return lines


def write_report(
    report_dir: str | Path,
    metrics: dict[str, Any],
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Draw ``metrics`` into ``report_dir`` (PNGs) and write ``report_dir/README.md``; return its path.

    ``metrics`` may carry a ``comparison`` block (from :func:`trainer.evaluation.compare_models`) and
    ``compared_models`` (the compared models' metrics), which add the Table 2 / Fig. 6, 8, 10-12
    comparison and the findings section.
    """
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "confusion": _fig_confusion(metrics, out),
        "roc": _fig_roc(metrics, out),
        "auc_vs_nobs": _fig_auc_vs_nobs(
            {label_of(metrics["model"]): metrics["by_n_obs"]}, out, "auc_vs_nobs.png"
        ),
        "confusion_nobs": _fig_confusion_nobs(metrics, out, "confusion_nobs.png"),
    }
    if (metrics.get("calibration") or {}).get("test"):
        figures["reliability"] = _fig_reliability(metrics["calibration"], metrics["class_names"], out)
    if metrics.get("tsne"):
        figures["tsne"] = _fig_tsne(metrics, out)
    if metrics.get("history"):
        figures["history"] = _fig_history(metrics, out)
    lines = [f"# Evaluation report: {metrics['model'].get('model_version', 'model')}", ""]
    lines += [
        f"AUC is {metrics.get('auc_definition', 'Hand & Till')}. Computed numbers live in "
        "`metrics.json`; this page only draws them.",
        "",
    ]
    lines += _model_section(metrics, figures)
    if metrics.get("comparison") and metrics.get("compared_models"):
        lines += _comparison_section(metrics["comparison"], metrics["compared_models"], out)
    else:
        lines += _single_model_findings(metrics)
    lines += _evaluated_data_lines(metrics)
    lines += _provenance_lines(metadata)
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
