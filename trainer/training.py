"""Training one model: Adam, lr 1e-4, batch 128, 200 epochs, no early stopping (paper section 4.3).

Training is resumable. After every epoch a work directory receives the full model with its optimizer
state (``checkpoint.keras``), the epoch's losses and validation AUC (``history.csv``) and, last,
``state.json`` saying how many epochs are complete; each file is written to a temporary name and
renamed, so an interrupted run always leaves a consistent checkpoint. Re-running the same command
continues from the last completed epoch; a different configuration or data set is refused rather than
silently mixed with the old run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trainer.dataset import PreparedData
from trainer.model import ModelConfig

__all__ = ["TrainConfig", "TrainingOutcome", "hand_till_auc", "train_model"]

CHECKPOINT = "checkpoint.keras"
BEST_WEIGHTS = "best.weights.h5"
HISTORY = "history.csv"
STATE = "state.json"
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_auc", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (defaults: the paper's best model, Table 2)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Literal["ce", "wce", "focal"] = "focal"
    gamma: float = 2.0
    learning_rate: float = 1e-4
    batch_size: int = 128
    epochs: int = 200
    seed: int = 42
    #: Which weights leave the run: the last epoch's (paper) or the best validation AUC epoch's.
    export_weights: Literal["final", "best_val_auc"] = "final"
    #: Validation AUC is computed every this many epochs (0: never; needed for best_val_auc).
    val_auc_every: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.export_weights == "best_val_auc" and self.val_auc_every < 1:
            raise ValueError("export_weights='best_val_auc' needs val_auc_every >= 1")

    @property
    def effective_gamma(self) -> float:
        return self.gamma if self.loss == "focal" else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model"] = self.model.to_dict()
        out["gamma"] = self.effective_gamma
        return out

    def fingerprint(self, data_fingerprint: str) -> str:
        """Hash of what shapes the weights (not epochs, so a run can be extended) and of the data."""
        cfg = self.to_dict()
        for key in ("epochs", "export_weights", "val_auc_every"):
            cfg.pop(key)
        blob = json.dumps({"config": cfg, "data": data_fingerprint}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class TrainingOutcome:
    """The trained model (exported weights loaded) and what happened during training."""

    model: Any
    history: list[dict[str, float]]
    epochs_completed: int
    resumed_from_epoch: int
    exported_epoch: int
    alpha: list[float]
    seconds: float


def hand_till_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Hand & Till (2001) multiclass AUC: scikit-learn's one-vs-one macro average."""
    from sklearn.metrics import roc_auc_score

    n_classes = probs.shape[1]
    if len(np.unique(labels)) < n_classes:
        return float("nan")
    return float(roc_auc_score(labels, probs, multi_class="ovo", average="macro", labels=range(n_classes)))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in HISTORY_FIELDS})
    os.replace(tmp, path)


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` (epoch 1-based; empty cells become NaN)."""
    if not path.exists():
        return []
    with path.open() as fh:
        return [
            {k: (float(v) if v not in ("", None) else float("nan")) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def _make_epoch_callback(
    work_dir: Path,
    state: dict[str, Any],
    history: list[dict[str, float]],
    validation: tuple[dict[str, Any], np.ndarray],
    config: TrainConfig,
    log: Callable[[str], None],
) -> Any:
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """Validation AUC, checkpoint, history and state after every epoch (in that order)."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs if logs is not None else {}
            n_done = epoch + 1
            auc = float("nan")
            if config.val_auc_every and (n_done % config.val_auc_every == 0 or n_done == config.epochs):
                probs = self.model.predict(validation[0], batch_size=1024, verbose=0)
                auc = hand_till_auc(validation[1], probs)
                logs["val_auc"] = auc
            best = state.get("best_val_auc")
            if np.isfinite(auc) and (best is None or auc > best):
                state["best_val_auc"], state["best_epoch"] = auc, n_done
                tmp = work_dir / "best.tmp.weights.h5"
                self.model.save_weights(tmp)
                os.replace(tmp, work_dir / BEST_WEIGHTS)
            tmp_ckpt = work_dir / "checkpoint.tmp.keras"
            self.model.save(tmp_ckpt)
            os.replace(tmp_ckpt, work_dir / CHECKPOINT)
            seconds = time.perf_counter() - self._t0
            history.append(
                {
                    "epoch": n_done,
                    "loss": float(logs.get("loss", np.nan)),
                    "val_loss": float(logs.get("val_loss", np.nan)),
                    "val_auc": auc,
                    "seconds": seconds,
                }
            )
            _write_history(work_dir / HISTORY, history)
            state["completed_epochs"] = n_done
            _atomic_write_text(work_dir / STATE, json.dumps(state, indent=2, sort_keys=True))
            remaining = (config.epochs - n_done) * seconds
            log(
                f"epoch {n_done}/{config.epochs}  loss {history[-1]['loss']:.4f}  "
                f"val_loss {history[-1]['val_loss']:.4f}  val_auc {auc:.4f}  "
                f"{seconds:.1f}s  (~{remaining / 60:.0f} min left)"
            )

    return EpochCheckpoint()


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_model(
    config: TrainConfig,
    data: PreparedData,
    work_dir: str | Path,
    *,
    restart: bool = False,
    log: Callable[[str], None] = _stderr,
) -> TrainingOutcome:
    """Train (or resume training) one model on ``data``'s training split.

    Parameters
    ----------
    config
        Model and optimisation settings; ``config.epochs`` is the total number of epochs wanted.
    data
        Prepared inputs and split (validation set used for ``val_loss`` and ``val_auc``).
    work_dir
        Checkpoint directory; re-running with the same config and data resumes from its state.
    restart
        Discard an existing work directory instead of resuming (or refusing on a mismatch).
    log
        Receives one progress line per epoch.
    """
    import keras

    from trainer.losses import class_weights, make_loss
    from trainer.model import build_model

    work = Path(work_dir)
    if restart and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if (
        config.model.mask_value != data.sequence_spec.mask_value
        or config.model.n_steps != data.sequence_spec.n_steps
    ):
        raise ValueError("model config and sequence spec disagree on mask_value or n_steps")

    train, val = data.part("train"), data.part("validation")
    alpha = class_weights(train.labels, len(data.class_names)).tolist()
    data_fp = json.dumps(
        {
            "split": data.split_record(),
            "sequence": data.sequence_spec.model_dump(mode="json"),
            "context": data.context_spec.model_dump(mode="json"),
            "objects": data.provenance.get("object_ids_sha256"),
        },
        sort_keys=True,
    )
    fingerprint = config.fingerprint(data_fp)

    state_path = work / STATE
    history = read_history(work / HISTORY)
    state: dict[str, Any]
    if state_path.exists() and (work / CHECKPOINT).exists():
        state = json.loads(state_path.read_text())
        if state.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{work}: holds a run with a different configuration or data set; "
                "use --restart (or another --work-dir / --out) to start over"
            )
        model = keras.models.load_model(work / CHECKPOINT, compile=True)
        history = history[: state["completed_epochs"]]
        log(f"resuming from {work} after epoch {state['completed_epochs']}")
    else:
        keras.utils.set_random_seed(config.seed)
        model = build_model(config.model)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
            loss=make_loss(config.loss, alpha, config.gamma),
        )
        state = {
            "fingerprint": fingerprint,
            "completed_epochs": 0,
            "config": config.to_dict(),
            "alpha": alpha,
        }
        history = []
    resumed_from = int(state["completed_epochs"])
    state["target_epochs"] = config.epochs

    t0 = time.perf_counter()
    if resumed_from < config.epochs:
        # Re-seeding with the epoch keeps a resumed run reproducible (shuffles and dropout masks).
        keras.utils.set_random_seed(config.seed + resumed_from)
        use_ctx = config.model.use_context
        validation = (val.features(use_ctx), val.labels)
        callback = _make_epoch_callback(work, state, history, validation, config, log)
        model.fit(
            train.features(use_ctx),
            train.labels,
            validation_data=validation,
            batch_size=config.batch_size,
            epochs=config.epochs,
            initial_epoch=resumed_from,
            shuffle=True,
            callbacks=[callback],
            verbose=0,
        )
    elif resumed_from > config.epochs:
        log(f"{work}: already trained for {resumed_from} epochs (> {config.epochs} asked); using that model")

    completed = int(state["completed_epochs"])
    exported_epoch = completed
    if config.export_weights == "best_val_auc" and (work / BEST_WEIGHTS).exists():
        model.load_weights(work / BEST_WEIGHTS)
        exported_epoch = int(state["best_epoch"])
    return TrainingOutcome(
        model=model,
        history=history,
        epochs_completed=completed,
        resumed_from_epoch=resumed_from,
        exported_epoch=exported_epoch,
        alpha=[float(a) for a in state["alpha"]],
        seconds=time.perf_counter() - t0,
    )
