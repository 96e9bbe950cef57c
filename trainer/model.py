"""The paper's mixed-input network (Burhanudin et al. 2021, Fig. 4 and section 3.2).

Masking -> RNN(n, sequences) -> Dropout -> BN -> RNN(n) -> Dropout -> BN -> [concat context] ->
Dense(m) -> Dropout -> BN -> Dense(m) -> Dense(n_classes, softmax).

Choices the paper's text leaves open follow the authors' public code and are recorded in the artifact
metadata through :class:`ModelConfig`: sigmoid dense activations and L2 (lambda 0.01) on the second
dense layer. Layer names are part of the artifact contract (``metadata.layers``): the service rebuilds
the recurrent layers step by step from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import keras
from keras import layers

from lightcurve.metadata import LayerNames, SequenceSpec

__all__ = ["LAYER_NAMES", "ModelConfig", "build_model", "with_time_axis"]

#: Names given to the layers the service needs for incremental inference.
LAYER_NAMES = LayerNames(
    rnn=("rnn_1", "rnn_2"),
    rnn_batchnorm=("bn_rnn_1", "bn_rnn_2"),
    head=("dense_1", "bn_dense_1", "dense_2", "probabilities"),
)
TIME_SERIES_INPUT = "time_series"
CONTEXT_INPUT = "context"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; defaults are the paper's best model (Table 2, GRU focal)."""

    rnn_type: Literal["gru", "lstm"] = "gru"
    rnn_units: int = 150
    dense_units: int = 200
    dropout: float = 0.4
    l2: float = 0.01
    #: Which dense layers carry the L2 penalty ("dense_2" as in the authors' code, or "all").
    l2_layers: tuple[str, ...] = ("dense_2",)
    dense_activation: str = "sigmoid"
    use_context: bool = True
    n_steps: int = SequenceSpec.model_fields["n_steps"].default  # the artifact schema's defaults
    n_features: int = 3
    n_context: int = 3
    n_classes: int = 3
    mask_value: float = SequenceSpec.model_fields["mask_value"].default
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["l2_layers"] = list(self.l2_layers)
        return out


def _regulariser(config: ModelConfig, name: str) -> keras.regularizers.Regularizer | None:
    if "all" in config.l2_layers or name in config.l2_layers:
        return keras.regularizers.L2(config.l2)
    return None


def build_model(config: ModelConfig) -> keras.Model:
    """Build (uncompiled) the mixed-input RNN classifier described by ``config``."""
    rnn_layer = {"gru": layers.GRU, "lstm": layers.LSTM}[config.rnn_type]
    series = keras.Input((config.n_steps, config.n_features), name=TIME_SERIES_INPUT)
    x = layers.Masking(mask_value=config.mask_value, name="masking")(series)
    x = rnn_layer(config.rnn_units, return_sequences=True, name=LAYER_NAMES.rnn[0])(x)
    x = layers.Dropout(config.dropout, name="dropout_rnn_1")(x)
    x = layers.BatchNormalization(name=LAYER_NAMES.rnn_batchnorm[0])(x)
    x = rnn_layer(config.rnn_units, name=LAYER_NAMES.rnn[1])(x)
    x = layers.Dropout(config.dropout, name="dropout_rnn_2")(x)
    x = layers.BatchNormalization(name=LAYER_NAMES.rnn_batchnorm[1])(x)
    inputs = [series]
    if config.use_context:
        context = keras.Input((config.n_context,), name=CONTEXT_INPUT)
        inputs.append(context)
        x = layers.Concatenate(name="concat_context")([x, context])
    dense_1, bn_dense_1, dense_2, output = LAYER_NAMES.head
    x = layers.Dense(config.dense_units, activation=config.dense_activation,
                     kernel_regularizer=_regulariser(config, dense_1), name=dense_1)(x)
    x = layers.Dropout(config.dropout, name="dropout_dense_1")(x)
    x = layers.BatchNormalization(name=bn_dense_1)(x)
    x = layers.Dense(config.dense_units, activation=config.dense_activation,
                     kernel_regularizer=_regulariser(config, dense_2), name=dense_2)(x)
    probs = layers.Dense(config.n_classes, activation="softmax", name=output)(x)
    return keras.Model(inputs=inputs, outputs=probs, name=f"goto_{config.rnn_type}")


def with_time_axis(model: keras.Model, n_steps: int | None) -> keras.Model:
    """The same network and weights with its time-series input ``n_steps`` long (``None``: any length).

    Training and bucketed prediction run batches cut to their longest light curve, so they use the
    variable-length twin; the exported artifact keeps the paper's fixed 30-step input.
    """
    config = model.get_config()
    changed = False
    for layer in config["layers"]:
        shape = layer["config"].get("batch_shape")
        if layer["class_name"] == "InputLayer" and shape is not None and len(shape) == 3:
            changed = changed or shape[1] != n_steps
            layer["config"]["batch_shape"] = [shape[0], n_steps, shape[2]]
    if not changed:
        return model
    twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    return twin
