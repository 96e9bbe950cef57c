"""Score a model directory on the real labelled sets (:mod:`trainer.real_sets`): the real-data benchmark.

For each set: its preset adapter, then, if the model's metadata says the set was used in training,
only the held-out test part (reproduced from the stored split rule), else every object. Reported per
set: objects per class, the AUC over the classes present (binary for two, Hand & Till for three),
recall and precision per class at argmax, one-vs-rest AUC per class, and the AUC from the first 1, 3,
6, 10 and 30 detections of each curve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainer.real_sets import REAL_SETS, RealSet, held_out_rows

__all__ = ["N_OBS_REPORTED", "score_model_on_real_sets", "score_real_set"]

N_OBS_REPORTED = (1, 3, 6, 10, 30)


def _training_rule(metadata: Any, set_name: str) -> dict[str, Any] | None:
    """The split rule of ``set_name`` if the model trained on it (``training.real_sets`` in metadata)."""
    for entry in (metadata.training or {}).get("real_sets", []) or []:
        if entry.get("name") == set_name:
            return dict(entry["split"])
    return None


def score_real_set(model: Any, metadata: Any, real_set: RealSet, data_root: Path) -> dict[str, Any]:
    """Benchmark numbers of one model on one real set (see the module docstring)."""
    from trainer.adapt import adapt_tables
    from trainer.calibration import calibration_metrics
    from trainer.data import load_tables
    from trainer.dataset import prepare_for_artifact
    from trainer.evaluation import classification_metrics, predict_proba

    tables = adapt_tables(load_tables(data_root / real_set.folder), real_set.adapter)
    class_names = tuple(metadata.class_names)
    data = prepare_for_artifact(tables, metadata.sequence, metadata.context, class_names, None)
    inputs = data.inputs
    rule = _training_rule(metadata, real_set.name)
    if rule is not None:
        names = np.asarray(class_names)[inputs.labels]
        inputs = inputs.subset(held_out_rows(inputs.object_ids, names, real_set.name, rule))
    use_context = metadata.context.enabled
    calibration = metadata.calibration
    probs = predict_proba(model, inputs, use_context, calibration=calibration)
    metrics = classification_metrics(inputs.labels, probs, class_names, curves=False)
    by_n = {
        str(n): classification_metrics(
            inputs.labels,
            predict_proba(model, inputs, use_context, max_observations=n, calibration=calibration),
            class_names,
            curves=False,
        )["auc"]
        for n in N_OBS_REPORTED
    }
    adapter = tables.provenance.get("adapter", {})
    return {
        "set": real_set.name,
        "path": str(data_root / real_set.folder),
        "adapter": real_set.adapter.describe(),
        "note": real_set.note,
        "objects": "held-out test part (the model trained on this set)" if rule else "every object",
        "split_rule": rule,
        "dropped_by_adapter": adapter.get("objects_dropped_by_class", {}),
        "n_objects": metrics["n_objects"],
        "class_counts": metrics["class_counts"],
        "median_detections": float(np.median(inputs.n_valid)) if len(inputs) else float("nan"),
        "classes_present": metrics["classes_present"],
        "auc": metrics["auc"],
        "auc_kind": metrics["auc_kind"],
        "auc_one_vs_rest": metrics["auc_one_vs_rest"],
        "recall": metrics["recall"],
        "precision": metrics["precision"],
        "f1_macro": metrics["f1_macro"],
        "confusion_counts": metrics["confusion"]["counts"],
        "auc_by_n_obs": by_n,
        "calibrated": calibration is not None,
        "ece": calibration_metrics(inputs.labels, probs, class_names)["ece"] if len(inputs) else {},
    }


def score_model_on_real_sets(
    model_dir: Path, data_root: Path, set_names: list[str] | None = None, log: Any = None
) -> dict[str, Any]:
    """Load ``model_dir`` and score it on each real set found under ``data_root``."""
    import keras

    from lightcurve.metadata import load_metadata
    from trainer.export import MODEL_FILE

    say = log or (lambda _msg: None)
    metadata = load_metadata(model_dir)
    model = keras.models.load_model(Path(model_dir) / MODEL_FILE, compile=False)
    results = []
    for name in set_names or list(REAL_SETS):
        real_set = REAL_SETS[name]
        if not (data_root / real_set.folder).exists():
            say(f"{name}: {data_root / real_set.folder} not found, skipped")
            continue
        say(f"{name}: scoring ({real_set.adapter.describe()})")
        results.append(score_real_set(model, metadata, real_set, data_root))
    return {
        "model_dir": str(model_dir),
        "model_version": metadata.model_version,
        "data_root": str(data_root),
        "sets": results,
    }
