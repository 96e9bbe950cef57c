"""Write a model directory atomically: ``model.keras``, ``metadata.json``, ``metrics.json``, report.

Layout of a model directory (``model_artifacts/`` is the shipped one)::

    model.keras         Keras 3 model (loads with keras.models.load_model(path, compile=False))
    metadata.json       lightcurve.metadata.ArtifactMetadata: everything the service needs
    metrics.json        trainer.evaluation output (test/validation scores, curves, t-SNE, history)
    split.json          seed, fractions and per-set SHA-256 of object ids (reproduces the split)
    training_log.csv    loss, val_loss, val_auc and seconds per epoch
    report/README.md    readable report, with its PNG figures beside it

Everything is written into a temporary directory next to the target, reloaded the way the service
loads it, and only then renamed into place: a failed run never leaves a half-written artifact, and a
previous artifact at the target is replaced only by a complete one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightcurve.metadata import ArtifactMetadata, load_metadata

__all__ = [
    "MODEL_FILE",
    "atomic_directory",
    "departures_from_paper",
    "export_model_dir",
    "json_safe",
    "write_json",
]

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"
TRAINING_LOG = "training_log.csv"
REPORT_DIR = "report"


def json_safe(value: Any) -> Any:
    """Recursively replace NaN/inf by ``None`` and numpy scalars by Python ones (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n")


class atomic_directory:
    """Context manager yielding a temporary directory that replaces ``target`` on success.

    On an exception the temporary directory is removed and ``target`` is left as it was.
    """

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target).resolve()
        self.tmp = self.target.parent / f".{self.target.name}.tmp-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = self.target.parent / f".{self.target.name}.old-{uuid.uuid4().hex[:8]}"
        if self.target.exists():
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        shutil.rmtree(old, ignore_errors=True)


def departures_from_paper(
    training: dict[str, Any], sequence_normalised: bool, context: dict[str, Any]
) -> list[str]:
    """Plain-language list of every choice that differs from, or is not given by, the paper."""
    model = training["model"]
    items = []
    if sequence_normalised:
        items.append(
            "Inputs are z-scored with means and standard deviations fitted on the training split "
            "(shipped in metadata); the paper states no normalisation."
        )
    else:
        items.append("Inputs are raw (dt in days, mag, mag_err), as the paper's text implies.")
    items.append(
        f"Dense activations are '{model['dense_activation']}' (the paper does not say; the authors' "
        "public code uses sigmoid)."
    )
    items.append(
        f"L2 (lambda {model['l2']}) is applied to {', '.join(model['l2_layers'])} only (the paper "
        "says 'regularisation in the loss'; the authors' code puts it on the second dense layer)."
    )
    items.append(
        "The loss is averaged over each batch (Keras default) instead of summed; this only rescales "
        "the gradient."
    )
    items.append(
        f'Host distances beyond {context["max_host_sep_arcsec"]:g}" or without a catalogue match '
        f"are set to {context['dummy_host_sep_arcsec']:g}\" (the paper's 'dummy value' is not given)."
    )
    if training.get("batching", "bucketed") == "bucketed":
        items.append(
            "Batches hold light curves of similar length, cut to the longest (trainer.batching): the "
            "same loss and gradients per batch as 30 padded steps, but batches are random draws among "
            "objects of about the same length rather than among all objects (the paper's batching is "
            "not stated beyond its size of 128)."
        )
    if training.get("prefix_fraction"):
        items.append(
            f"Each epoch, {training['prefix_fraction']:.0%} of the training objects were cut to a random "
            "early prefix of 1..n detections (trainer.batching), so that the model learns to classify "
            "young light curves; the paper trains on whole light curves."
        )
    if training.get("calibration") not in (None, "none"):
        items.append(
            f"Probabilities are calibrated post hoc ({training['calibration']} scaling fitted on the "
            "validation split, lightcurve.calibration; metadata.calibration); the paper reports the "
            "raw softmax."
        )
    if training.get("stopped_early_at_epoch"):
        items.append(
            f"Stopped early after epoch {training['stopped_early_at_epoch']} (no validation-AUC gain for "
            f"{training.get('early_stop_patience')} epochs); the paper trains 200 epochs without early "
            "stopping."
        )
    elif training.get("epochs_completed") != 200:
        items.append(f"Trained for {training.get('epochs_completed')} epochs (paper: 200).")
    if training.get("export_weights") == "best_val_auc":
        items.append(
            "Exported weights are those of the best validation-AUC epoch "
            f"({training.get('exported_epoch')}); "
            "the paper uses the final epoch."
        )
    for real_set in training.get("real_sets") or []:
        counts = real_set["class_counts"]
        items.append(
            f"Trained also on the real set {real_set['name']} ({real_set['adapter']}): "
            f"{sum(counts['train'].values())} objects in training, {sum(counts['validation'].values())} in "
            f"validation, {sum(counts['test'].values())} held out for the real-data benchmark "
            "(trainer.real_sets.real_split); the paper trains on simulated light curves only."
        )
    augment = training.get("augment") or {}
    if augment.get("copies"):
        items.append(
            f"{augment['copies']} augmented copies of each training object (trainer.augment: cadence "
            f"thinning up to {augment['thin_max']:g}, {augment['truncate_fraction']:.0%} cut to an early "
            "prefix, "
            f"zero-point sigma {augment['zero_point_sigma']:g} mag, error scale sigma "
            f"{augment['error_scale_sigma']:g}); the paper does not augment."
        )
    if training.get("host_unknown_fraction"):
        items.append(
            f"{training['host_unknown_fraction']:.0%} of the training objects get the 'no match' host "
            "distance (the host unknown), so the model stays useful without a galaxy catalogue."
        )
    if not model["use_context"]:
        items.append("No context input (the paper's 'GRU NC' ablation).")
    return items


def export_model_dir(
    target: str | Path,
    *,
    model: Any,
    metadata: ArtifactMetadata,
    metrics: dict[str, Any],
    split_record: dict[str, Any] | None = None,
    training_log: Path | None = None,
    report: bool = True,
) -> Path:
    """Write a complete model directory at ``target`` atomically and return its path.

    Parameters
    ----------
    target
        Directory to create or replace.
    model
        Trained Keras model (saved with its optimizer; the service loads it with ``compile=False``).
    metadata
        The artifact contract; validated again after reloading from disk.
    metrics
        Output of :func:`trainer.evaluation.evaluate_model` (possibly with a comparison block).
    split_record
        :meth:`trainer.split.Split.describe` output, so ``evaluate`` can reproduce the split.
    training_log
        ``history.csv`` of the training work directory, copied as ``training_log.csv``.
    report
        Draw the figures and write ``report/README.md``.
    """
    import keras

    from trainer.report import write_report

    with atomic_directory(target) as tmp:
        model.save(tmp / MODEL_FILE)
        metadata.write(tmp)
        write_json(tmp / METRICS_FILE, metrics)
        if split_record is not None:
            write_json(tmp / SPLIT_FILE, split_record)
        if training_log is not None and Path(training_log).exists():
            shutil.copyfile(training_log, tmp / TRAINING_LOG)
        if report:
            write_report(
                tmp / REPORT_DIR,
                json.loads((tmp / METRICS_FILE).read_text()),
                metadata=metadata.model_dump(mode="json"),
            )
        # Reload exactly as the service will, before anything replaces the previous artifact.
        reloaded = keras.models.load_model(tmp / MODEL_FILE, compile=False)
        load_metadata(tmp)
        if reloaded.output_shape[-1] != len(metadata.class_names):
            raise ValueError("exported model's output size does not match metadata.class_names")
    return Path(target)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
