"""Training one model: Adam, lr 1e-4, batch 128, 200 epochs, no early stopping (paper section 4.3).

Batches are cut to their longest light curve and grouped by length (``trainer.batching``): the same
loss and gradients per batch as the padded 30-step computation, several times faster.
``batching="padded"`` keeps the original computation; an optional early stop on validation AUC
(``early_stop_patience``) is off by default, as in the paper.

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

from trainer.auc import hand_till_auc
from trainer.dataset import PreparedData
from trainer.model import ModelConfig
from trainer.tensors import ModelInputs

__all__ = ["TrainConfig", "TrainingOutcome", "hand_till_auc", "train_model"]

CHECKPOINT = "checkpoint.keras"
BEST_WEIGHTS = "best.weights.h5"
HISTORY = "history.csv"
STATE = "state.json"
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_auc", "seconds")


#: Settings that do not change what an epoch computes: a run may be extended or stopped with others.
_NOT_IN_FINGERPRINT = (
    "epochs",
    "export_weights",
    "val_auc_every",
    "early_stop_patience",
    "early_stop_min_delta",
)


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
    #: ``bucketed``: batches of similar-length light curves cut to their longest (same math, faster);
    #: ``padded``: random batches of full 30-step sequences (the original computation).
    batching: Literal["bucketed", "padded"] = "bucketed"
    #: Stop when validation AUC has not improved by more than ``early_stop_min_delta`` for this many
    #: epochs (0: never, the paper's choice).
    early_stop_patience: int = 0
    early_stop_min_delta: float = 0.0
    #: Share of training objects cut to a random early prefix each epoch (trainer.batching; 0: the
    #: paper's whole light curves).
    prefix_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.export_weights == "best_val_auc" and self.val_auc_every < 1:
            raise ValueError("export_weights='best_val_auc' needs val_auc_every >= 1")
        if self.early_stop_patience < 0:
            raise ValueError("early_stop_patience must be >= 0")
        if not 0.0 <= self.prefix_fraction <= 1.0:
            raise ValueError(f"prefix_fraction must lie in [0, 1], got {self.prefix_fraction}")
        if self.early_stop_patience and self.val_auc_every != 1:
            raise ValueError("early_stop_patience needs val_auc_every = 1 (validation AUC every epoch)")

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
        for key in _NOT_IN_FINGERPRINT:
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
    #: Epoch (1-based) of the best validation AUC, that AUC, and the epoch an early stop ended on.
    best_epoch: int | None = None
    best_val_auc: float | None = None
    stopped_early_at: int | None = None


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


def _seed_dropout(model: Any, seed: int, epoch: int) -> None:
    """Set every random layer's generator from (seed, epoch, layer): an epoch's dropout masks are
    then the same whether the run went straight through or was resumed from a copied checkpoint
    (a reloaded model would otherwise start its generators from fresh seeds)."""
    for i, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            value = int(np.random.default_rng([seed, epoch, i]).integers(0, 2**31 - 1))
            generator.state.assign(np.array([value, 0], dtype=generator.state.dtype))


def _make_epoch_callback(
    work_dir: Path,
    state: dict[str, Any],
    history: list[dict[str, float]],
    validation: ModelInputs,
    config: TrainConfig,
    log: Callable[[str], None],
) -> Any:
    import keras

    from trainer.batching import predict_bucketed

    context = validation.context if config.model.use_context else None
    # The padded mode predicts full 30-step sequences too, as the trainer before bucketing did.
    lengths = (
        validation.n_valid
        if config.batching == "bucketed"
        else np.full(len(validation), validation.series.shape[1], dtype=np.int64)
    )

    class EpochCheckpoint(keras.callbacks.Callback):
        """Validation loss and AUC, checkpoint, history and state after every epoch (in that order).

        One prediction of the validation set gives both numbers: the loss as Keras computes it
        (the compiled loss over the set plus the L2 penalty), without a second pass.
        """

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()
            _seed_dropout(self.model, config.seed, epoch)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs if logs is not None else {}
            n_done = epoch + 1
            auc = float("nan")
            probs = predict_bucketed(self.model, validation.series, context, lengths)
            penalty = sum(float(keras.ops.convert_to_numpy(w)) for w in self.model.losses)
            loss = keras.ops.convert_to_numpy(self.model.loss(validation.labels, probs))
            logs["val_loss"] = float(loss) + penalty
            if config.val_auc_every and (n_done % config.val_auc_every == 0 or n_done == config.epochs):
                auc = hand_till_auc(validation.labels, probs)
                logs["val_auc"] = auc
            best = state.get("best_val_auc")
            if np.isfinite(auc) and (best is None or auc > best + config.early_stop_min_delta):
                state["best_val_auc"], state["best_epoch"] = auc, n_done
                tmp = work_dir / "best.tmp.weights.h5"
                self.model.save_weights(tmp)
                os.replace(tmp, work_dir / BEST_WEIGHTS)
            patience = config.early_stop_patience
            if patience and n_done - int(state.get("best_epoch") or 0) >= patience and n_done < config.epochs:
                state["stopped_early_at"] = n_done
                self.model.stop_training = True
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
            if state.get("stopped_early_at") == n_done:
                log(
                    f"early stop after epoch {n_done}: no validation AUC gain for {patience} epochs "
                    f"(best {state['best_val_auc']:.4f} at epoch {state['best_epoch']})"
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

    from trainer.batching import EpochBatches, keras_dataset
    from trainer.losses import class_weights, make_loss
    from trainer.model import build_model, with_time_axis

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
            "extras": data.provenance.get("training_extras"),
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
        # Trained with a variable time axis (batches are cut to their longest light curve); the
        # exported model below gets the fixed n_steps input back, with the same weights.
        model = with_time_axis(build_model(config.model), None)
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
    if state.get("stopped_early_at"):
        log(f"{work}: stopped early after epoch {state['stopped_early_at']}; using that run")
    elif resumed_from < config.epochs:
        # Batch order is seeded by (seed, epoch) in trainer.batching, dropout by _seed_dropout.
        keras.utils.set_random_seed(config.seed + resumed_from)
        use_ctx = config.model.use_context

        def batches(part: ModelInputs, first_epoch: int) -> Any:
            return keras_dataset(
                EpochBatches(
                    part.series,
                    part.context if use_ctx else None,
                    part.labels,
                    part.n_valid,
                    batch_size=config.batch_size,
                    seed=config.seed,
                    first_epoch=first_epoch,
                    bucketed=config.batching == "bucketed",
                    prefix_fraction=config.prefix_fraction,
                    mask_value=config.model.mask_value,
                )
            )

        callback = _make_epoch_callback(work, state, history, val, config, log)
        model.fit(
            batches(train, resumed_from),
            epochs=config.epochs,
            initial_epoch=resumed_from,
            shuffle=False,  # the batches are shuffled, seeded by epoch, in trainer.batching
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
        model=with_time_axis(model, config.model.n_steps),
        history=history,
        epochs_completed=completed,
        resumed_from_epoch=resumed_from,
        exported_epoch=exported_epoch,
        alpha=[float(a) for a in state["alpha"]],
        seconds=time.perf_counter() - t0,
        best_epoch=state.get("best_epoch"),
        best_val_auc=state.get("best_val_auc"),
        stopped_early_at=state.get("stopped_early_at"),
    )
