"""Length-bucketed batches: the same model math as 30 padded steps, without computing the padding.

A light curve fills few of its 30 steps (the paper's median is 6), and every padded step is masked:
the GRU carries its state through it, batch normalisation leaves it out of its moments, and nothing
after the last real step reaches the loss. So a batch cut to its longest light curve gives the same
loss and gradients as the full 30-step batch (``tests/unit/test_batching.py`` checks both). Cutting
only pays if a batch's light curves have similar lengths, hence the buckets:

1. each epoch, the training objects are shuffled (seeded by ``(seed, epoch)``);
2. they are cut into pools of ``pool_batches`` batches, and each pool is sorted by length (stable,
   so objects of one length stay in random order);
3. each pool is cut into batches of ``batch_size``, each batch is cut to its longest light curve,
   and the order of all the epoch's batches is shuffled.

A batch is then a random draw of objects of about the same length, instead of a random draw of
objects. Which objects share a batch changes (and with it batch normalisation's batch statistics
during training), the examples per epoch and the loss do not; ``batching="padded"`` keeps the
original full-length random batches. :func:`predict_bucketed` does the same for inference.

Prefix training (``prefix_fraction`` > 0, an option beyond the paper, off by default): each epoch, a
share of the training objects is cut to a random early prefix of ``k`` detections, ``k`` uniform in
1..n, seeded by ``(seed, epoch)``. The service classifies every light curve from its first detection
on, but a model trained on whole light curves has rarely seen one detection (the paper's Fig. 8: AUC
0.68 at one observation for the GRU); cut objects also make the epoch's batches shorter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from numpy.typing import NDArray

from trainer.model import CONTEXT_INPUT, TIME_SERIES_INPUT

__all__ = [
    "BatchPlan",
    "EpochBatches",
    "bucketed_batches",
    "keras_dataset",
    "padded_batches",
    "predict_bucketed",
    "prefix_lengths",
]

#: Objects are sorted by length within pools of this many batches (about 4,000 objects at 128).
POOL_BATCHES = 32


@dataclass(frozen=True)
class BatchPlan:
    """One epoch's batches: object indices of each batch and the steps it is cut to."""

    batches: tuple[NDArray[np.intp], ...]
    steps: tuple[int, ...]

    @property
    def computed_steps(self) -> int:
        """Object-steps the RNN computes in the epoch (the padded plan computes n_objects * 30)."""
        return int(sum(len(b) * s for b, s in zip(self.batches, self.steps, strict=True)))


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def bucketed_batches(
    n_valid: NDArray[np.integer], batch_size: int, seed: int, epoch: int, pool_batches: int = POOL_BATCHES
) -> BatchPlan:
    """The epoch's length-bucketed batches (see the module docstring).

    Examples
    --------
    >>> plan = bucketed_batches(np.array([1, 30, 2, 1, 29, 2]), 2, seed=0, epoch=0, pool_batches=3)
    >>> sorted(plan.steps), plan.computed_steps
    ([1, 2, 30], 66)
    >>> sorted(int(i) for b in plan.batches for i in b)
    [0, 1, 2, 3, 4, 5]
    """
    lengths = np.asarray(n_valid, dtype=np.int64)
    rng = _rng(seed, epoch)
    order = rng.permutation(lengths.size)
    pool = batch_size * pool_batches
    batches: list[NDArray[np.intp]] = []
    for start in range(0, order.size, pool):
        members = order[start : start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches.extend(members[i : i + batch_size] for i in range(0, members.size, batch_size))
    batch_order = rng.permutation(len(batches))
    chosen = tuple(batches[i] for i in batch_order)
    return BatchPlan(chosen, tuple(int(lengths[b].max()) for b in chosen))


def prefix_lengths(
    n_valid: NDArray[np.integer], fraction: float, seed: int, epoch: int
) -> NDArray[np.int64]:
    """The epoch's lengths with a share ``fraction`` of objects cut to a prefix of 1..n detections.

    Examples
    --------
    >>> n = np.array([1, 5, 30, 30])
    >>> bool((prefix_lengths(n, 1.0, seed=0, epoch=0) <= n).all())
    True
    >>> prefix_lengths(n, 0.0, seed=0, epoch=0).tolist()
    [1, 5, 30, 30]
    """
    lengths = np.asarray(n_valid, dtype=np.int64)
    if fraction <= 0:
        return lengths.copy()
    # a stream of its own ("prefix"), so that the batch plan's draws stay those of the uncut epoch
    rng = np.random.default_rng([seed, epoch, 0x70726566])
    cut = rng.random(lengths.size) < fraction
    k = 1 + np.floor(rng.random(lengths.size) * np.maximum(lengths, 1)).astype(np.int64)
    return np.where(cut, np.minimum(k, lengths), lengths)


def padded_batches(n_objects: int, batch_size: int, n_steps: int, seed: int, epoch: int) -> BatchPlan:
    """Random batches of full ``n_steps`` padded sequences: the original computation."""
    order = _rng(seed, epoch).permutation(n_objects)
    chosen = tuple(order[i : i + batch_size] for i in range(0, n_objects, batch_size))
    return BatchPlan(chosen, (n_steps,) * len(chosen))


def _inputs(
    series: NDArray[np.float32], context: NDArray[np.float32] | None, idx: NDArray[np.intp], steps: int
) -> dict[str, NDArray[np.float32]]:
    out = {TIME_SERIES_INPUT: np.ascontiguousarray(series[idx, :steps])}
    if context is not None:
        out[CONTEXT_INPUT] = context[idx]
    return out


class EpochBatches:
    """``(inputs, labels)`` batches; each pass over it is the next epoch's seeded plan."""

    def __init__(
        self,
        series: NDArray[np.float32],
        context: NDArray[np.float32] | None,
        labels: NDArray[np.int64],
        n_valid: NDArray[np.int64],
        *,
        batch_size: int,
        seed: int,
        first_epoch: int = 0,
        bucketed: bool = True,
        prefix_fraction: float = 0.0,
        mask_value: float = -999.0,
    ) -> None:
        self.series, self.context, self.labels, self.n_valid = series, context, labels, n_valid
        self.batch_size, self.seed, self.bucketed = batch_size, seed, bucketed
        self.prefix_fraction, self.mask_value = prefix_fraction, mask_value
        self.epoch = first_epoch
        self._lengths_epoch, self._lengths = -1, np.asarray(n_valid, dtype=np.int64)

    def lengths(self, epoch: int) -> NDArray[np.int64]:
        """Each object's detections seen in ``epoch`` (all of them unless prefix training)."""
        if self._lengths_epoch != epoch:
            self._lengths = prefix_lengths(self.n_valid, self.prefix_fraction, self.seed, epoch)
            self._lengths_epoch = epoch
        return self._lengths

    def plan(self, epoch: int) -> BatchPlan:
        if self.bucketed:
            return bucketed_batches(self.lengths(epoch), self.batch_size, self.seed, epoch)
        return padded_batches(self.labels.size, self.batch_size, self.series.shape[1], self.seed, epoch)

    def batch(
        self, idx: NDArray[np.intp], steps: int, epoch: int | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], Any]:
        inputs = _inputs(self.series, self.context, idx, steps)
        if self.prefix_fraction > 0:
            seen = self.lengths(self.epoch if epoch is None else epoch)[idx]
            beyond = np.arange(steps)[None, :] >= seen[:, None]
            inputs[TIME_SERIES_INPUT][beyond] = self.mask_value  # a copy: _inputs slices with idx
        return inputs, self.labels[idx]

    def __iter__(self) -> Iterator[tuple[dict[str, NDArray[np.float32]], NDArray[np.int64]]]:
        epoch = self.epoch
        plan = self.plan(epoch)
        self.epoch += 1
        for idx, steps in zip(plan.batches, plan.steps, strict=True):
            yield self.batch(idx, steps, epoch)


class EpochPyDataset(keras.utils.PyDataset):
    """The batches for backends other than TensorFlow (JAX on a GPU): one plan per epoch."""

    def __init__(self, epochs: EpochBatches) -> None:
        super().__init__()
        self.epochs = epochs
        self._plan = epochs.plan(epochs.epoch)

    def __len__(self) -> int:
        return len(self._plan.batches)

    def __getitem__(self, i: int) -> Any:
        return self.epochs.batch(self._plan.batches[i], self._plan.steps[i], self.epochs.epoch)

    def on_epoch_end(self) -> None:
        self.epochs.epoch += 1
        self._plan = self.epochs.plan(self.epochs.epoch)


def keras_dataset(epochs: EpochBatches) -> Any:
    """Training data for ``model.fit``: one pass per epoch, each epoch its own seeded plan.

    TensorFlow gets a ``tf.data`` pipeline declared with a variable time axis (a ``PyDataset``
    would fix the time axis to the length of the first batches it looks at); other backends iterate
    an :class:`EpochPyDataset`.
    """
    if keras.backend.backend() != "tensorflow":
        return EpochPyDataset(epochs)
    import tensorflow as tf

    n_features = epochs.series.shape[2]
    spec: dict[str, Any] = {TIME_SERIES_INPUT: tf.TensorSpec((None, None, n_features), tf.float32)}
    if epochs.context is not None:
        spec[CONTEXT_INPUT] = tf.TensorSpec((None, epochs.context.shape[1]), tf.float32)
    signature = (spec, tf.TensorSpec((None,), tf.int64))
    dataset = tf.data.Dataset.from_generator(lambda: iter(epochs), output_signature=signature)
    # Every epoch has the same number of batches (pools of a fixed size): telling tf.data lets Keras
    # count steps and know where an epoch ends.
    n_batches = len(epochs.plan(epochs.epoch).batches)
    return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)


def predict_bucketed(
    model: Any,
    series: NDArray[np.float32],
    context: NDArray[np.float32] | None,
    n_valid: NDArray[np.integer],
    batch_size: int = 1024,
) -> NDArray[np.float32]:
    """``model.predict`` over objects sorted by length, each batch cut to its longest light curve;
    rows come back in input order. Equal to the padded prediction (the padding is masked)."""
    n = series.shape[0]
    out = np.zeros((n, model.output_shape[-1]), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort(np.asarray(n_valid), kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        steps = max(1, int(np.asarray(n_valid)[idx].max()))
        out[idx] = model.predict_on_batch(_inputs(series, context, idx, steps))
    return out
