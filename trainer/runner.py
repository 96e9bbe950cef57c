"""One configuration end to end: train (resumable) -> evaluate on the test split -> export a model dir.

Shared by ``goto-classifier train`` and every run of ``goto-classifier grid``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightcurve.metadata import ArtifactMetadata
from trainer.dataset import PreparedData
from trainer.export import departures_from_paper, export_model_dir, json_safe, utc_now
from trainer.training import HISTORY, TrainConfig, TrainingOutcome, train_model

__all__ = ["attach_comparison", "default_model_version", "default_work_dir", "run_name", "train_and_export"]


def run_name(config: TrainConfig) -> str:
    """Configuration name, e.g. ``gru-focal-g2-r150-d200`` or ``gru-wce-r100-d200-nc``."""
    m = config.model
    gamma = f"-g{config.gamma:g}" if config.loss == "focal" else ""
    suffix = "" if m.use_context else "-nc"
    return f"{m.rnn_type}-{config.loss}{gamma}-r{m.rnn_units}-d{m.dense_units}{suffix}"


def default_model_version(config: TrainConfig, data: PreparedData) -> str:
    """``<run name>-<YYYYMMDD>-<6 hex of config+data>``: readable, and different for different runs."""
    digest = hashlib.sha256(
        json.dumps(
            {"config": config.to_dict(), "data": data.provenance.get("object_ids_sha256")},
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:6]
    return f"{run_name(config)}-{datetime.now(UTC):%Y%m%d}-{digest}"


def default_work_dir(out_dir: str | Path) -> Path:
    """Checkpoints of ``train --out DIR`` live beside it in ``.DIR.training/`` (kept for resuming)."""
    out = Path(out_dir).resolve()
    return out.parent / f".{out.name}.training"


def describe_model(config: TrainConfig, outcome: TrainingOutcome, model_version: str) -> dict[str, Any]:
    m = config.model
    return {
        "model_version": model_version,
        "run_name": run_name(config),
        "rnn_type": m.rnn_type,
        "loss": config.loss,
        "gamma": config.effective_gamma,
        "rnn_units": m.rnn_units,
        "dense_units": m.dense_units,
        "use_context": m.use_context,
        "epochs_completed": outcome.epochs_completed,
        "exported_epoch": outcome.exported_epoch,
    }


def attach_comparison(metrics: dict[str, Any], others: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add ``compared_models`` and ``comparison`` (paper findings) to ``metrics`` (same test set only).

    A compared model of the same family as ``metrics`` is dropped: this model represents its family.
    """
    from trainer.evaluation import compare_models, family_of

    own = family_of(metrics["model"])
    test_digest = metrics.get("split", {}).get("test", {}).get("ids_sha256")
    kept = []
    for other in others:
        if family_of(other["model"]) == own:
            continue
        other_digest = other.get("split", {}).get("test", {}).get("ids_sha256")
        if test_digest and other_digest and other_digest != test_digest:
            raise ValueError(
                f"model {other['model'].get('model_version')!r} was tested on a different test set; "
                "compare only models trained on the same data with the same seed"
            )
        kept.append(other)
    entries = [metrics, *kept]
    out = dict(metrics)
    out["compared_models"] = [_slim(e) for e in entries]
    out["comparison"] = compare_models(entries)
    return out


def _slim(metrics: dict[str, Any]) -> dict[str, Any]:
    # Compared models keep what the comparison draws (t-SNE only for the Fig. 12 pair); each model's
    # full evaluation lives in its own directory.
    from trainer.evaluation import family_of

    keep_tsne = family_of(metrics["model"]) in ("gru-focal", "gru-focal-nc")
    return {
        k: v
        for k, v in metrics.items()
        if k not in ("compared_models", "comparison") and (k != "tsne" or keep_tsne)
    }


def _extras_record(data: PreparedData) -> dict[str, Any]:
    """``real_sets``, ``augment`` and ``host_unknown_fraction`` of :mod:`trainer.mixed` (paper: none)."""
    extras = data.provenance.get("training_extras")
    if not extras:
        return {"real_sets": [], "augment": None, "host_unknown_fraction": 0.0}
    return {k: extras[k] for k in ("real_sets", "augment", "host_unknown_fraction")}


def train_and_export(
    config: TrainConfig,
    data: PreparedData,
    out_dir: str | Path,
    *,
    work_dir: str | Path | None = None,
    model_version: str | None = None,
    compare: Sequence[dict[str, Any]] = (),
    tsne_points: int = 2000,
    restart: bool = False,
    calibration_method: str = "none",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``config`` on ``data``, evaluate it on the test split, export ``out_dir``; return metrics.

    ``calibration_method`` (``none``, ``temperature`` or ``vector``) is fitted on the validation split
    after training, stored in the metadata and applied to every evaluated probability.
    """
    from trainer.calibration import calibrate_on_validation
    from trainer.evaluation import evaluate_model

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    work = Path(work_dir) if work_dir is not None else default_work_dir(out_dir)
    outcome = train_model(config, data, work, restart=restart, log=say)
    version = model_version or default_model_version(config, data)
    use_ctx = config.model.use_context
    split_record = data.split_record()
    calibration = calibrate_on_validation(outcome.model, data, use_ctx, calibration_method)  # type: ignore[arg-type]
    metrics = evaluate_model(
        outcome.model,
        test=data.part("test"),
        validation=data.part("validation"),
        class_names=data.class_names,
        use_context=use_ctx,
        thresholds={c: 0.7 for c in data.class_names},
        describe=describe_model(config, outcome, version),
        history=outcome.history,
        tsne_points=tsne_points,
        seed=config.seed,
        log=say,
        calibration=calibration,
    )
    metrics["split"] = split_record
    detections_file = data.provenance.get("files", {}).get("detections", {}).get("path")
    metrics["evaluated_set_name"] = "test split"
    metrics["evaluated_data"] = {
        "path": str(Path(detections_file).parent) if detections_file else None,
        "split": "test",
        "split_description": "the test split of the training data",
        "provenance": data.provenance,
    }
    if compare:
        metrics = attach_comparison(metrics, compare)

    training = {
        **config.to_dict(),
        "loss_alpha": outcome.alpha,
        "epochs_completed": outcome.epochs_completed,
        "exported_epoch": outcome.exported_epoch,
        "best_val_auc_epoch": outcome.best_epoch,
        "best_val_auc": outcome.best_val_auc,
        "stopped_early_at_epoch": outcome.stopped_early_at,
        "class_weights_formula": "alpha_j = N / (n_classes * N_j) on the training split (paper eq. 5)",
        "normalise": data.sequence_spec.normalisation is not None,
        "split": {k: split_record[k] for k in ("seed", "test_fraction", "validation_fraction")},
        **_extras_record(data),
        "framework": _framework_versions(),
        "calibration": calibration_method,
    }
    context_spec = data.context_spec_for(use_ctx)
    training["departures_from_paper"] = departures_from_paper(
        training, data.sequence_spec.normalisation is not None, context_spec.model_dump()
    )
    from trainer.model import LAYER_NAMES

    metadata = ArtifactMetadata(
        model_version=version,
        created_at=utc_now(),
        class_names=data.class_names,
        rnn_type=config.model.rnn_type,
        sequence=data.sequence_spec,
        context=context_spec,
        layers=LAYER_NAMES,
        thresholds={c: 0.7 for c in data.class_names},
        calibration=calibration,
        training=json_safe(training),
        data=json_safe(data.provenance),
        metrics=json_safe(
            {
                "test_auc": metrics["test"]["auc"],
                "test_f1_macro": metrics["test"]["f1_macro"],
                "test_recall": metrics["test"]["recall"],
                "validation_auc": metrics.get("validation", {}).get("auc"),
                "validation_f1_macro": metrics.get("validation", {}).get("f1_macro"),
                "auc_definition": "Hand & Till over the classes present (sklearn ovo macro with all three)",
            }
        ),
    )
    say(f"exporting {out_dir}")
    export_model_dir(
        out_dir,
        model=outcome.model,
        metadata=metadata,
        metrics=metrics,
        split_record=split_record,
        training_log=work / HISTORY,
    )
    return metrics


def _framework_versions() -> dict[str, str]:
    import keras
    import sklearn
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "scikit-learn": sklearn.__version__}
