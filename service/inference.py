"""Inference: the Keras artifact, a numpy step engine built from its weights, and a micro-batcher.

Why not Keras on the request path: ``model.predict`` costs 60-100 ms a call and an eager call ~300 ms,
while one GRU step in numpy costs ~0.1 ms. So at start-up the Keras model is loaded (``compile=False``),
the weights of the layers named in ``metadata.layers`` are copied into :class:`StepEngine`, and the
engine is checked against the Keras model on sample sequences (probabilities and the last RNN layer's
output); the service refuses to start if they differ by more than the configured tolerance (1e-5).

The engine keeps one flat float32 state vector per object: the raw recurrent states of both RNN layers
(``h`` for GRU; ``h`` and ``c`` for LSTM), so a detection arriving in time order costs one step of each
layer plus the dense head. Masked (padded) steps keep the previous state, exactly as Keras' ``Masking``.

Supported layer semantics (anything else is refused at start-up): GRU with ``reset_after=True``
(Keras' default: the reset gate multiplies the recurrent projection *after* its bias), LSTM, batch
normalisation in inference mode (moving statistics), dense layers with linear/sigmoid/tanh/relu/softmax
activations. Dropout is the identity at inference.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from lightcurve.adapters import training_input_adapter
from lightcurve.calibration import Calibration, apply_calibration
from lightcurve.metadata import ArtifactMetadata, load_metadata
from lightcurve.preprocessing import context_matrix, sequence_input
from service import metrics

__all__ = [
    "EngineCheck",
    "EngineResult",
    "EngineWork",
    "InferenceExecutor",
    "LoadedModel",
    "StepEngine",
    "build_engine",
    "load_model",
    "load_verified_engine",
    "model_fingerprint",
    "save_verified_engine",
    "verify_engine",
]

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]


# Activations work in place: every caller passes a temporary it owns (a fresh matrix product or a slice
# of one), and on a small wave each allocation costs about as much as the arithmetic.


#: Below this many elements one call of scipy's ``expit`` beats the five numpy calls of the exp form
#: (per-call cost dominates: a lone detection's step was ~20 % faster with it); above, the exp form's
#: vectorised ``exp`` is ~3.5x faster than ``expit`` on a wave's gate matrix. Both give Keras' sigmoid
#: to ~1e-7, and the start-up check runs both (batched and one sequence at a time).
_SMALL_SIGMOID = 4096


def _sigmoid(x: F32) -> F32:
    # Keras 3 uses the exact logistic function (not the hard sigmoid): 1 / (1 + exp(-x)), with -x
    # capped where exp would overflow float32 (the result there is 0 either way).
    if x.size <= _SMALL_SIGMOID:
        return expit(x, out=x)
    np.negative(x, out=x)
    np.minimum(x, 88.0, out=x)
    np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


def _tanh(x: F32) -> F32:
    return np.tanh(x, out=x)


def _softmax(x: F32) -> F32:
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def _linear(x: F32) -> F32:
    return x


def _relu(x: F32) -> F32:
    return np.maximum(x, 0.0, out=x)


_ACTIVATIONS: dict[str, Callable[[F32], F32]] = {
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": _relu,
    "linear": _linear,
    "softmax": _softmax,
}


def _activation(name: Any, where: str) -> str:
    """``name`` if the engine implements that activation, else ``ValueError``."""
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise ValueError(f"{where}: activation {name!r} is not supported by the step engine")
    return name


@dataclass(frozen=True)
class RecurrentCell:
    """One GRU (``reset_after=True``) or LSTM layer's weights."""

    kind: str
    units: int
    kernel: F32
    recurrent: F32
    bias_input: F32
    bias_recurrent: F32
    activation_name: str
    recurrent_activation_name: str
    activation: Callable[[F32], F32] = field(init=False, repr=False)
    recurrent_activation: Callable[[F32], F32] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", _ACTIVATIONS[self.activation_name])
        object.__setattr__(self, "recurrent_activation", _ACTIVATIONS[self.recurrent_activation_name])

    @property
    def state_size(self) -> int:
        return self.units * (2 if self.kind == "lstm" else 1)

    def with_input_affine(self, scale: F32, shift: F32) -> RecurrentCell:
        """The same layer for inputs ``x`` where it used to get ``x * scale + shift`` (a batch norm
        folded into the kernel and the input bias)."""
        kernel = self.kernel.astype(np.float64)
        return dataclasses.replace(
            self,
            kernel=_f32(scale.astype(np.float64)[:, None] * kernel),
            bias_input=_f32(self.bias_input + shift.astype(np.float64) @ kernel),
        )

    def step(self, x: F32, state: F32, out: F32) -> None:
        """Advance ``state`` ``(B, state_size)`` by inputs ``x`` ``(B, n_in)`` into ``out`` (same shape).

        In-place numpy: a wave's step is ~25 numpy calls per layer pair, and their per-call cost, not
        the arithmetic, is what a small wave pays.
        """
        u = self.units
        if self.kind == "gru":
            xm = x @ self.kernel
            xm += self.bias_input
            hm = state @ self.recurrent
            hm += self.bias_recurrent
            zr = xm[:, : 2 * u]
            zr += hm[:, : 2 * u]  # update and reset gates in one call
            zr = self.recurrent_activation(zr)
            z, r = zr[:, :u], zr[:, u:]
            hh = xm[:, 2 * u :]
            r *= hm[:, 2 * u :]
            hh += r
            hh = self.activation(hh)
            # z * state + (1 - z) * hh, as hh + z * (state - hh)
            np.subtract(state, hh, out=out)
            out *= z
            out += hh
            return
        h, c = state[:, :u], state[:, u:]
        zm = x @ self.kernel
        zm += h @ self.recurrent
        zm += self.bias_input
        i = self.recurrent_activation(zm[:, :u])
        f = self.recurrent_activation(zm[:, u : 2 * u])
        c_new = out[:, u:]
        np.multiply(f, c, out=c_new)
        c_new += i * self.activation(zm[:, 2 * u : 3 * u])
        o = self.recurrent_activation(zm[:, 3 * u :])
        np.multiply(o, self.activation(c_new.copy()), out=out[:, :u])  # (activations work in place)

    def output(self, state: F32) -> F32:
        """The layer's output (``h``) from its state."""
        return state[:, : self.units]


@dataclass(frozen=True)
class BatchNorm:
    """Inference-mode batch normalisation, folded to ``x * scale + shift``."""

    scale: F32
    shift: F32

    def __call__(self, x: F32) -> F32:
        return x * self.scale + self.shift


@dataclass(frozen=True)
class Dense:
    kernel: F32
    bias: F32
    activation_name: str
    activation: Callable[[F32], F32] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", _ACTIVATIONS[self.activation_name])

    def __call__(self, x: F32) -> F32:
        y = x @ self.kernel
        y += self.bias
        return self.activation(y)

    def with_input_affine(self, scale: F32, shift: F32, rows: int | None = None) -> Dense:
        """The same layer where its first ``rows`` inputs (all: ``None``) used to be ``x * scale + shift``."""
        kernel = self.kernel.astype(np.float64)
        part = kernel[:rows] if rows is not None else kernel
        folded = kernel.copy()
        folded[: len(part)] = scale.astype(np.float64)[:, None] * part
        return Dense(_f32(folded), _f32(self.bias + shift.astype(np.float64) @ part), self.activation_name)


@dataclass(frozen=True)
class _FusedLayers:
    """What the engine computes with: every batch norm folded into the linear layer after it.

    Batch norm in inference mode is an affine map, so ``(x * s + t) @ W + b`` is ``x @ (s W) + (t W + b)``;
    folded once (in float64) at start-up, it costs nothing per step. The start-up check against Keras
    runs on these layers.
    """

    cells: tuple[RecurrentCell, RecurrentCell]
    #: Applied to the last RNN output before the head when the head does not start with a dense layer.
    rnn_norm: BatchNorm | None
    head: tuple[Dense | BatchNorm, ...]


def _fuse(rnn: tuple[RecurrentCell, RecurrentCell], rnn_norm: tuple[BatchNorm, BatchNorm],
          head: tuple[Dense | BatchNorm, ...]) -> _FusedLayers:
    cells = (rnn[0], rnn[1].with_input_affine(rnn_norm[0].scale, rnn_norm[0].shift))
    layers = list(head)
    last_norm: BatchNorm | None = rnn_norm[1]
    if layers and isinstance(layers[0], Dense):
        layers[0] = layers[0].with_input_affine(last_norm.scale, last_norm.shift, rows=rnn[1].units)
        last_norm = None
    fused: list[Dense | BatchNorm] = []
    for layer in layers:
        if isinstance(layer, Dense) and fused and isinstance(fused[-1], BatchNorm):
            norm = fused.pop()
            assert isinstance(norm, BatchNorm)
            layer = layer.with_input_affine(norm.scale, norm.shift)
        fused.append(layer)
    return _FusedLayers(cells, last_norm, tuple(fused))


@dataclass(frozen=True)
class StepEngine:
    """Two stacked recurrent layers (each followed by batch norm) and a dense head, in numpy.

    The state of ``B`` objects is a ``(B, state_size)`` float32 array: layer-1 state then layer-2 state.
    """

    rnn: tuple[RecurrentCell, RecurrentCell]
    rnn_norm: tuple[BatchNorm, BatchNorm]
    head: tuple[Dense | BatchNorm, ...]
    n_features: int
    n_context: int
    kind: str = "numpy"
    #: The artifact's post-hoc calibration (lightcurve.calibration), applied to every probability.
    calibration: Calibration | None = None

    @functools.cached_property
    def _fused(self) -> _FusedLayers:
        return _fuse(self.rnn, self.rnn_norm, self.head)

    @property
    def state_size(self) -> int:
        return self.rnn[0].state_size + self.rnn[1].state_size

    @property
    def uses_context(self) -> bool:
        return self.n_context > 0

    def initial_state(self, batch: int) -> F32:
        return np.zeros((batch, self.state_size), dtype=np.float32)

    def advance(self, state: F32, x: F32, active: NDArray[np.bool_] | None = None) -> F32:
        """One time step for ``B`` objects; rows where ``active`` is False keep their state (masking)."""
        first, second = self._fused.cells
        split = first.state_size
        new = np.empty(state.shape, dtype=np.float32)
        first.step(x, state[:, :split], new[:, :split])
        second.step(first.output(new[:, :split]), state[:, split:], new[:, split:])
        if active is not None:
            new = np.where(active[:, None], new, state)
        return new

    def run(self, values: F32, n_valid: NDArray[np.int_]) -> F32:
        """States after the first ``n_valid[i]`` steps of ``values`` ``(B, T, F)``, from zero state."""
        state = self.initial_state(values.shape[0])
        n_valid = np.asarray(n_valid)
        for t in range(int(n_valid.max(initial=0))):
            active = n_valid > t
            state = self.advance(state, values[:, t, :], None if active.all() else active)
        return state

    def last_rnn_output(self, state: F32) -> F32:
        return self.rnn[1].output(state[:, self.rnn[0].state_size :])

    def probabilities(self, state: F32, context: F32 | None) -> F32:
        """Class probabilities ``(B, n_classes)`` from states and (normalised) context ``(B, n_context)``."""
        fused = self._fused
        x = self.last_rnn_output(state)
        if fused.rnn_norm is not None:
            x = fused.rnn_norm(x)
        if self.uses_context:
            if context is None:
                raise ValueError("context: this model needs a context input")
            x = np.concatenate([x, context], axis=1)
        for layer in fused.head:
            x = layer(x)
        if self.calibration is not None:
            x = apply_calibration(x, self.calibration)
        return x.astype(np.float32, copy=False)


@dataclass(frozen=True)
class EngineCheck:
    """Outcome of the start-up comparison between the step engine and the Keras model."""

    n_sequences: int
    max_abs_diff_probabilities: float
    max_abs_diff_rnn_output: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return max(self.max_abs_diff_probabilities, self.max_abs_diff_rnn_output) <= self.tolerance


@dataclass
class LoadedModel:
    """What the service holds for the model: metadata, the verified step engine and its check."""

    metadata: ArtifactMetadata
    engine: StepEngine
    check: EngineCheck
    model_dir: Path
    #: "keras": built and checked in this process; "verified-file": built and checked at start-up by
    #: ``serve`` in a separate process, loaded here without TensorFlow (see :func:`load_verified_engine`).
    source: str = "keras"

    @property
    def version(self) -> str:
        return self.metadata.model_version


def _f32(value: Any) -> F32:
    return np.asarray(value, dtype=np.float32)


def _recurrent_cell(layer: Any) -> RecurrentCell:
    cfg = layer.get_config()
    name = type(layer).__name__
    weights = [_f32(w) for w in layer.get_weights()]
    units = int(cfg["units"])
    if not cfg.get("use_bias", True):
        raise ValueError(f"layer {layer.name}: recurrent layers without bias are not supported")
    if cfg.get("go_backwards") or cfg.get("stateful"):
        raise ValueError(f"layer {layer.name}: go_backwards/stateful recurrent layers are not supported")
    act = _activation(cfg.get("activation"), f"layer {layer.name}")
    rec_act = _activation(cfg.get("recurrent_activation"), f"layer {layer.name}")
    if name == "GRU":
        if not cfg.get("reset_after", True):
            raise ValueError(f"layer {layer.name}: only GRU(reset_after=True) is supported")
        kernel, recurrent, bias = weights
        return RecurrentCell("gru", units, kernel, recurrent, bias[0], bias[1], act, rec_act)
    if name == "LSTM":
        kernel, recurrent, bias = weights
        return RecurrentCell("lstm", units, kernel, recurrent, bias, np.zeros_like(bias), act, rec_act)
    raise ValueError(f"layer {layer.name}: {name} is not a GRU or LSTM layer")


def _batch_norm(layer: Any) -> BatchNorm:
    if type(layer).__name__ != "BatchNormalization":
        raise ValueError(f"layer {layer.name}: expected BatchNormalization, found {type(layer).__name__}")
    cfg = layer.get_config()
    axis = cfg.get("axis", -1)
    if axis != -1 and axis != len(layer.input.shape) - 1:
        raise ValueError(f"layer {layer.name}: only last-axis batch normalisation is supported")
    weights = {w.path.rsplit("/", 1)[-1]: np.asarray(w, dtype=np.float64) for w in layer.weights}
    mean, var = weights["moving_mean"], weights["moving_variance"]
    gamma = weights.get("gamma", np.ones_like(mean))
    beta = weights.get("beta", np.zeros_like(mean))
    scale = gamma / np.sqrt(var + float(cfg["epsilon"]))
    return BatchNorm(scale=_f32(scale), shift=_f32(beta - mean * scale))


def _dense(layer: Any) -> Dense:
    cfg = layer.get_config()
    weights = [_f32(w) for w in layer.get_weights()]
    bias = weights[1] if cfg.get("use_bias", True) else np.zeros(weights[0].shape[1], dtype=np.float32)
    return Dense(
        kernel=weights[0],
        bias=bias,
        activation_name=_activation(cfg.get("activation"), f"layer {layer.name}"),
    )


def _head_layer(layer: Any) -> Dense | BatchNorm:
    kind = type(layer).__name__
    if kind == "Dense":
        return _dense(layer)
    if kind == "BatchNormalization":
        return _batch_norm(layer)
    raise ValueError(f"layer {layer.name}: head layer type {kind} is not supported")


def _split_inputs(model: Any) -> tuple[int, int | None]:
    """Positions of the time-series input (3-d) and the context input (2-d) in ``model.inputs``."""
    series = context = None
    for i, tensor in enumerate(model.inputs):
        if len(tensor.shape) == 3:
            series = i
        elif len(tensor.shape) == 2:
            context = i
    if series is None or len(model.inputs) > 2:
        raise ValueError("model must have one (batch, steps, features) input and at most one context input")
    return series, context


def build_engine(model: Any, metadata: ArtifactMetadata) -> StepEngine:
    """Copy the weights of the layers named in ``metadata.layers`` into a :class:`StepEngine`."""
    names = metadata.layers
    if len(names.rnn) != 2 or len(names.rnn_batchnorm) != 2:
        raise ValueError(
            "metadata.layers: the step engine needs exactly two RNN and two RNN batch-norm layers"
        )

    def get(name: str) -> Any:
        try:
            return model.get_layer(name)
        except ValueError as exc:
            raise ValueError(f"metadata.layers names {name!r}, which the model does not have") from exc

    cells = tuple(_recurrent_cell(get(n)) for n in names.rnn)
    for cell in cells:
        if cell.kind != metadata.rnn_type:
            raise ValueError(
                f"metadata.rnn_type is {metadata.rnn_type!r} but the model has {cell.kind} layers"
            )
    series_pos, context_pos = _split_inputs(model)
    n_features = int(model.inputs[series_pos].shape[-1])
    n_context = 0 if context_pos is None else int(model.inputs[context_pos].shape[-1])
    if (n_context > 0) != metadata.context.enabled:
        raise ValueError("metadata.context.enabled does not match the model's inputs")
    if int(model.inputs[series_pos].shape[1]) != metadata.sequence.n_steps:
        raise ValueError("metadata.sequence.n_steps does not match the model's time-series input")
    return StepEngine(
        rnn=(cells[0], cells[1]),
        rnn_norm=(_batch_norm(get(names.rnn_batchnorm[0])), _batch_norm(get(names.rnn_batchnorm[1]))),
        head=tuple(_head_layer(get(n)) for n in names.head),
        n_features=n_features,
        n_context=n_context,
        calibration=metadata.calibration,
    )


def sample_inputs(
    metadata: ArtifactMetadata, n: int = 24, seed: int = 0
) -> tuple[F32, NDArray[np.int_], F32]:
    """Realistic sample model inputs (through the shared preprocessing) for the start-up check."""
    rng = np.random.default_rng(seed)
    spec = metadata.sequence
    rows, n_valid = [], []
    for i in range(n):
        k = 1 + (i * 7) % spec.n_steps if i else spec.n_steps
        mjd = 58600.0 + np.sort(rng.uniform(0, 400, k))
        mag = rng.normal(18.5, 1.2, k)
        err = rng.uniform(0.01, 0.3, k)
        x = sequence_input(mjd, mag, err, spec)
        rows.append(x.values)
        n_valid.append(x.n_valid)
    ctx = context_matrix(
        rng.uniform(0, 360, n), rng.uniform(-90, 90, n), rng.uniform(0, 120, n), metadata.context
    )
    return np.stack(rows), np.asarray(n_valid), ctx


def verify_engine(
    model: Any, engine: StepEngine, metadata: ArtifactMetadata, tolerance: float
) -> EngineCheck:
    """Compare the engine with the Keras model (one batched call) on sample sequences.

    Both the class probabilities and the last RNN layer's output (the stored state's visible part)
    are compared; the engine's state after ``n`` steps is built step by step, as in the service, for
    all sequences at once and for each alone (small and large batches take different numpy paths).
    """
    import keras

    values, n_valid, ctx = sample_inputs(metadata)
    series_pos, context_pos = _split_inputs(model)
    inputs: list[Any] = [None] * len(model.inputs)
    inputs[series_pos] = values
    if context_pos is not None:
        inputs[context_pos] = ctx
    rnn_out_model = keras.Model(model.inputs, model.get_layer(metadata.layers.rnn[1]).output)
    # the calibrated Keras output, as trainer.evaluation.predict_proba gives it
    keras_probs = apply_calibration(np.asarray(model(inputs, training=False)), metadata.calibration)
    keras_rnn = np.asarray(rnn_out_model(inputs, training=False))
    context = ctx if engine.uses_context else None
    diff_probs = diff_rnn = 0.0
    for rows in [slice(None), *(slice(i, i + 1) for i in range(len(values)))]:
        state = engine.run(values[rows], n_valid[rows])
        probs = engine.probabilities(state, None if context is None else context[rows])
        diff_probs = max(diff_probs, float(np.max(np.abs(probs - keras_probs[rows]))))
        diff_rnn = max(diff_rnn, float(np.max(np.abs(engine.last_rnn_output(state) - keras_rnn[rows]))))
    return EngineCheck(
        n_sequences=len(values),
        max_abs_diff_probabilities=diff_probs,
        max_abs_diff_rnn_output=diff_rnn,
        tolerance=tolerance,
    )


def load_model(model_dir: Path, tolerance: float = 1e-5) -> LoadedModel:
    """Load the Keras artifact and its metadata, build the step engine, and verify it; raise if unequal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    metadata = load_metadata(model_dir)
    adapter = training_input_adapter(metadata.data)
    if not adapter.is_identity:
        raise RuntimeError(
            f"{model_dir}: the model was trained on adapted light curves ({adapter.describe()}), but the "
            "service feeds it every detection as it arrives; train on GOTO-like tables without an adapter "
            "(real sets can join training with --real-sets)"
        )
    model = keras.models.load_model(Path(model_dir) / "model.keras", compile=False)
    engine = build_engine(model, metadata)
    check = verify_engine(model, engine, metadata, tolerance)
    if not check.passed:
        raise RuntimeError(
            f"step engine differs from the Keras model by {check.max_abs_diff_probabilities:.3g} "
            f"(probabilities) / {check.max_abs_diff_rnn_output:.3g} (RNN output) > {tolerance}; "
            "refusing to start"
        )
    log.info(
        "model %s loaded from %s; step engine verified (max |diff| %.2e)",
        metadata.model_version,
        model_dir,
        check.max_abs_diff_probabilities,
    )
    return LoadedModel(metadata=metadata, engine=engine, check=check, model_dir=Path(model_dir))


# --------------------------------------------------------------------------------------------------
# Verified engine file: lets uvicorn workers skip TensorFlow (~650 MB and ~3 s each)
# --------------------------------------------------------------------------------------------------


def model_fingerprint(model_dir: Path) -> str:
    """SHA-256 of ``model.keras`` and ``metadata.json``: identifies exactly which artifact was verified."""
    digest = hashlib.sha256()
    for name in ("model.keras", "metadata.json"):
        digest.update((Path(model_dir) / name).read_bytes())
    return digest.hexdigest()


def save_verified_engine(loaded: LoadedModel, path: Path) -> Path:
    """Write the engine's weights and its start-up check to ``path`` (``.npz``), atomically."""
    engine = loaded.engine
    arrays: dict[str, np.ndarray] = {}
    rnn_spec = []
    for i, (cell, norm) in enumerate(zip(engine.rnn, engine.rnn_norm, strict=True)):
        for name in ("kernel", "recurrent", "bias_input", "bias_recurrent"):
            arrays[f"rnn{i}_{name}"] = getattr(cell, name)
        arrays[f"rnn{i}_bn_scale"], arrays[f"rnn{i}_bn_shift"] = norm.scale, norm.shift
        rnn_spec.append(
            {
                "kind": cell.kind,
                "units": cell.units,
                "activation": cell.activation_name,
                "recurrent_activation": cell.recurrent_activation_name,
            }
        )
    head_spec: list[dict[str, str]] = []
    for j, layer in enumerate(engine.head):
        if isinstance(layer, Dense):
            arrays[f"head{j}_kernel"], arrays[f"head{j}_bias"] = layer.kernel, layer.bias
            head_spec.append({"type": "dense", "activation": layer.activation_name})
        else:
            arrays[f"head{j}_scale"], arrays[f"head{j}_shift"] = layer.scale, layer.shift
            head_spec.append({"type": "batchnorm"})
    spec = {
        "fingerprint": model_fingerprint(loaded.model_dir),
        "model_version": loaded.version,
        "n_features": engine.n_features,
        "n_context": engine.n_context,
        "rnn": rnn_spec,
        "head": head_spec,
        "check": dataclasses.asdict(loaded.check),
    }
    arrays["spec"] = np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_verified_engine(path: Path, model_dir: Path, tolerance: float) -> LoadedModel | None:
    """The engine saved by :func:`save_verified_engine`, if it was verified (within ``tolerance``) for
    exactly the artifact now in ``model_dir``; otherwise ``None`` (the caller loads Keras instead)."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError):
        return None
    spec = json.loads(arrays.pop("spec").tobytes())
    check = EngineCheck(**spec["check"])
    if (
        spec["fingerprint"] != model_fingerprint(model_dir)
        or not check.passed
        or (max(check.max_abs_diff_probabilities, check.max_abs_diff_rnn_output) > tolerance)
    ):
        return None
    cells = tuple(
        RecurrentCell(
            r["kind"],
            r["units"],
            arrays[f"rnn{i}_kernel"],
            arrays[f"rnn{i}_recurrent"],
            arrays[f"rnn{i}_bias_input"],
            arrays[f"rnn{i}_bias_recurrent"],
            r["activation"],
            r["recurrent_activation"],
        )
        for i, r in enumerate(spec["rnn"])
    )
    norms = tuple(BatchNorm(arrays[f"rnn{i}_bn_scale"], arrays[f"rnn{i}_bn_shift"]) for i in range(2))
    head: list[Dense | BatchNorm] = []
    for j, layer in enumerate(spec["head"]):
        if layer["type"] == "dense":
            head.append(Dense(arrays[f"head{j}_kernel"], arrays[f"head{j}_bias"], layer["activation"]))
        else:
            head.append(BatchNorm(arrays[f"head{j}_scale"], arrays[f"head{j}_shift"]))
    metadata = load_metadata(model_dir)
    if metadata.model_version != spec["model_version"]:
        return None
    engine = StepEngine(
        rnn=(cells[0], cells[1]),
        rnn_norm=(norms[0], norms[1]),
        head=tuple(head),
        n_features=spec["n_features"],
        n_context=spec["n_context"],
        calibration=metadata.calibration,
    )
    return LoadedModel(
        metadata=metadata, engine=engine, check=check, model_dir=Path(model_dir), source="verified-file"
    )


# --------------------------------------------------------------------------------------------------
# Micro-batching executor
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class EngineWork:
    """One wave's engine work, as matrices: ``n`` steps from stored states, ``m`` full sequences.

    Rows of the result are the steps in order, then the sequences in order. Contexts are ``None`` for
    a model without context input.
    """

    #: ``(n, state_size)`` states to advance, ``(n, n_features)`` step inputs, ``(n, n_context)``.
    states: F32 | None = None
    x: F32 | None = None
    step_context: F32 | None = None
    #: ``(m, n_steps, n_features)`` padded sequences, their lengths ``(m,)``, ``(m, n_context)``.
    values: F32 | None = None
    n_valid: NDArray[np.int64] | None = None
    sequence_context: F32 | None = None

    @property
    def n_step_rows(self) -> int:
        return 0 if self.states is None else len(self.states)

    @property
    def n_sequence_rows(self) -> int:
        return 0 if self.values is None else len(self.values)


@dataclass(slots=True)
class EngineResult:
    """Per row of an :class:`EngineWork`: the new state (float32 bytes), probabilities, predicted class."""

    state_bytes: int
    states: bytes
    probabilities: list[list[float]]
    #: Index of the largest probability (the first of equal maxima, as ``argmax``).
    predicted: list[int]

    def state(self, row: int) -> bytes:
        size = self.state_bytes
        return self.states[row * size : (row + 1) * size]


@dataclass(slots=True)
class _Rows:
    """Results of many submissions' rows of one kind, computed together."""

    states: bytes = b""
    probabilities: list[list[float]] = field(default_factory=list)
    predicted: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Submission:
    """Work submitted together, answered together: one future (and one wake-up of its loop) per wave."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[EngineResult]
    work: EngineWork


@dataclass
class ExecutorStats:
    batches: int = 0
    jobs: int = 0
    largest_batch: int = 0
    errors: int = 0


def _stack(parts: list[Any]) -> Any:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class InferenceExecutor:
    """Runs engine work in one background thread, batching whatever submissions are waiting.

    The event loop only enqueues work and awaits a future; the thread drains the queue, runs all
    waiting steps as one batched :meth:`StepEngine.advance` and all waiting sequences as one masked
    :meth:`StepEngine.run` (in chunks of at most ``max_batch`` rows), computes their probabilities in
    one head pass each, and resolves each submission's one future with one ``call_soon_threadsafe``
    per event loop. No artificial delay is added: while one batch runs, the next one gathers, so batch
    size grows with load. States cross as float32 bytes, so a result holds no view of a batch matrix.
    """

    def __init__(self, engine: StepEngine, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.stats = ExecutorStats()
        self._state_bytes = engine.state_size * 4
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def submit(self, work: EngineWork) -> asyncio.Future[EngineResult]:
        """Queue ``work``; a future of its :class:`EngineResult`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EngineResult] = loop.create_future()
        if work.n_step_rows + work.n_sequence_rows == 0:
            future.set_result(EngineResult(self._state_bytes, b"", [], []))
        else:
            self._queue.put(_Submission(loop, future, work))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            n_rows = first.work.n_step_rows + first.work.n_sequence_rows
            stop = False
            while n_rows < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                n_rows += more.work.n_step_rows + more.work.n_sequence_rows
            self._process(batch)
            if stop:
                return

    def _head(self, states: F32, context: F32 | None, out: _Rows) -> None:
        probs = self.engine.probabilities(states, context)
        out.states += states.tobytes()
        # as Python floats, converted here in the inference thread rather than per row on the event loop
        out.probabilities += probs.tolist()
        out.predicted += probs.argmax(axis=1).tolist()

    def _rows(self, parts: list[tuple[Any, Any, Any]], compute: Callable[[Any, Any], F32]) -> _Rows:
        """Rows of many submissions of one kind, ``compute(a, b)`` in chunks of ``max_batch``; ``parts``
        are each submission's ``(a, b, context)`` (steps: states, inputs; sequences: padded values,
        lengths)."""
        out = _Rows()
        if not parts:
            return out
        first, second, contexts = zip(*parts, strict=True)
        a, b = _stack(list(first)), _stack(list(second))
        ctx = _stack(list(contexts)) if self.engine.uses_context else None
        size = self.max_batch
        for i in range(0, len(a), size):
            rows = slice(i, i + size)
            self._head(compute(a[rows], b[rows]), None if ctx is None else ctx[rows], out)
        return out

    def _process(self, batch: Sequence[_Submission]) -> None:
        started = time.perf_counter()
        works = [sub.work for sub in batch]
        n_rows = sum(w.n_step_rows + w.n_sequence_rows for w in works)
        try:
            steps = self._rows(
                [(w.states, w.x, w.step_context) for w in works if w.n_step_rows], self.engine.advance
            )
            sequences = self._rows(
                [(w.values, w.n_valid, w.sequence_context) for w in works if w.n_sequence_rows],
                self.engine.run,
            )
            self.stats.batches += 1
            self.stats.jobs += n_rows
            self.stats.largest_batch = max(self.stats.largest_batch, n_rows)
            metrics.INFERENCE_DURATION.observe(time.perf_counter() - started)
            metrics.INFERENCE_BATCH_SIZE.observe(n_rows)
        except Exception as exc:  # a bad submission must not kill the thread: fail every one of the batch
            log.exception("inference batch failed")
            self.stats.errors += 1
            metrics.INFERENCE_ERRORS.inc()
            for sub in batch:
                with contextlib.suppress(RuntimeError):  # its loop closed: nobody is waiting
                    sub.loop.call_soon_threadsafe(_fail, sub.future, exc)
            return
        size = self._state_bytes
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        s = q = 0  # next row of the steps' and of the sequences' results
        for sub in batch:
            n, m = sub.work.n_step_rows, sub.work.n_sequence_rows
            result = EngineResult(
                size,
                steps.states[s * size : (s + n) * size] + sequences.states[q * size : (q + m) * size],
                steps.probabilities[s : s + n] + sequences.probabilities[q : q + m],
                steps.predicted[s : s + n] + sequences.predicted[q : q + m],
            )
            s, q = s + n, q + m
            by_loop.setdefault(sub.loop, []).append((sub.future, result))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a loop closed while we computed: nobody is waiting
                loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in items:
        if not future.done():
            future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
