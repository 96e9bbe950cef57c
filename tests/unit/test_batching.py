"""Length-bucketed batches: same loss and gradients as the padded 30-step batch; seeded random plans."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from trainer.batching import (  # noqa: E402
    EpochBatches,
    bucketed_batches,
    padded_batches,
    predict_bucketed,
    prefix_lengths,
)
from trainer.losses import make_loss  # noqa: E402
from trainer.model import CONTEXT_INPUT, TIME_SERIES_INPUT, ModelConfig, build_model, with_time_axis  # noqa: E402

MASK = -999.0


def _batch(rng: np.random.Generator, n: int, n_steps: int = 30, max_len: int = 12):
    lengths = rng.integers(1, max_len + 1, n)
    lengths[0] = max_len
    series = np.full((n, n_steps, 3), MASK, dtype=np.float32)
    for i, k in enumerate(lengths):
        series[i, :k] = rng.normal(size=(k, 3))
    context = rng.normal(size=(n, 3)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    return series, context, labels, lengths


def _loss_and_grads(model, loss_fn, series, context, labels):
    with tf.GradientTape() as tape:
        probs = model({TIME_SERIES_INPUT: series, CONTEXT_INPUT: context}, training=True)
        loss = loss_fn(labels, probs) + tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    return float(loss), [g.numpy() for g in grads]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_cut_batch_gives_the_padded_batch_loss_and_gradients(rnn_type: str) -> None:
    # Dropout off so that both passes are deterministic; training=True so that batch normalisation
    # uses (masked) batch statistics, the part that padding could have changed.
    keras.utils.set_random_seed(3)
    config = ModelConfig(rnn_type=rnn_type, rnn_units=8, dense_units=8, dropout=0.0)
    padded_model = build_model(config)
    cut_model = with_time_axis(padded_model, None)
    series, context, labels, lengths = _batch(np.random.default_rng(0), 16)
    loss_fn = make_loss("focal", [0.5, 2.0, 2.0], 2.0)

    loss_full, grads_full = _loss_and_grads(padded_model, loss_fn, series, context, labels)
    loss_cut, grads_cut = _loss_and_grads(cut_model, loss_fn, series[:, : lengths.max()], context, labels)

    assert lengths.max() < 30
    assert loss_cut == pytest.approx(loss_full, rel=1e-6)
    assert len(grads_cut) == len(grads_full)
    for g_cut, g_full in zip(grads_cut, grads_full, strict=True):
        np.testing.assert_allclose(g_cut, g_full, rtol=1e-4, atol=1e-6)
    # And a real step is not ignored: cutting one step too many changes the loss.
    loss_short, _ = _loss_and_grads(cut_model, loss_fn, series[:, : lengths.max() - 1], context, labels)
    assert abs(loss_short - loss_full) > 1e-6


def test_bucketed_prediction_equals_the_padded_prediction() -> None:
    keras.utils.set_random_seed(4)
    model = build_model(ModelConfig(rnn_units=8, dense_units=8))
    series, context, _, lengths = _batch(np.random.default_rng(1), 300, max_len=30)
    expected = model.predict({TIME_SERIES_INPUT: series, CONTEXT_INPUT: context}, verbose=0)
    got = predict_bucketed(with_time_axis(model, None), series, context, lengths, batch_size=64)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_with_time_axis_round_trip_keeps_the_weights_and_the_fixed_input() -> None:
    model = build_model(ModelConfig(rnn_units=8, dense_units=8))
    twin = with_time_axis(model, None)
    back = with_time_axis(twin, 30)
    assert twin.inputs[0].shape[1] is None and back.inputs[0].shape[1] == 30
    for a, b in zip(model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bucketed_plan_covers_every_object_once_in_batches_of_similar_length() -> None:
    lengths = np.random.default_rng(2).integers(1, 31, 5000)
    plan = bucketed_batches(lengths, 128, seed=7, epoch=0)
    members = np.concatenate(plan.batches)
    assert np.array_equal(np.sort(members), np.arange(lengths.size))
    assert all(s == lengths[b].max() for b, s in zip(plan.batches, plan.steps, strict=True))
    assert all(len(b) <= 128 for b in plan.batches)
    # Sorted within pools: far fewer steps than padding everything to 30.
    assert plan.computed_steps < 0.6 * padded_batches(lengths.size, 128, 30, 7, 0).computed_steps


def test_bucketed_plans_are_seeded_by_seed_and_epoch() -> None:
    lengths = np.random.default_rng(3).integers(1, 31, 2000)

    def flat(seed: int, epoch: int) -> list[int]:
        return np.concatenate(bucketed_batches(lengths, 128, seed, epoch).batches).tolist()

    assert flat(1, 0) == flat(1, 0)
    assert flat(1, 0) != flat(1, 1)
    assert flat(1, 0) != flat(2, 0)
    # Batch order is shuffled: batch lengths do not come out sorted.
    steps = list(bucketed_batches(lengths, 128, 1, 0).steps)
    assert steps != sorted(steps)


def test_prefix_lengths_cut_the_asked_share_to_prefixes_seeded_by_epoch() -> None:
    n_valid = np.random.default_rng(4).integers(1, 31, 20000)
    cut = prefix_lengths(n_valid, 0.5, seed=3, epoch=0)
    assert ((cut >= 1) & (cut <= n_valid)).all()
    shorter = np.mean(cut < n_valid)
    # half cut, and a cut object keeps all n with probability 1/n (~13 % on average here)
    assert 0.38 < shorter < 0.48
    assert np.array_equal(cut, prefix_lengths(n_valid, 0.5, seed=3, epoch=0))
    assert not np.array_equal(cut, prefix_lengths(n_valid, 0.5, seed=3, epoch=1))
    assert np.array_equal(prefix_lengths(n_valid, 0.0, seed=3, epoch=0), n_valid)
    # every prefix length 1..n is drawn: among objects of 30 cut to fewer, lengths 1 and 29 both occur
    full = cut[(n_valid == 30) & (cut < 30)]
    assert {1, 29} <= set(full.tolist())


def test_prefix_batches_mask_every_step_beyond_the_prefix_and_leave_the_data_alone() -> None:
    rng = np.random.default_rng(5)
    series, context, labels, lengths = _batch(rng, 400, max_len=20)
    before = series.copy()
    epochs = EpochBatches(
        series, context, labels, lengths, batch_size=32, seed=1, prefix_fraction=1.0, mask_value=MASK
    )
    seen = epochs.lengths(0)
    assert (seen < lengths).any()
    n_rows = 0
    for inputs, _ in epochs:
        x = inputs[TIME_SERIES_INPUT]
        real = (x != MASK).all(axis=2).sum(axis=1)
        n_rows += len(x)
        assert real.max() == x.shape[1]  # each batch cut to its longest prefix
        assert set(real.tolist()) <= set(seen.tolist())
    assert n_rows == 400
    assert np.array_equal(series, before)
    # the batches of one epoch see exactly the epoch's prefix lengths, object by object
    plan = epochs.plan(0)
    for idx, steps in zip(plan.batches, plan.steps, strict=True):
        x = epochs.batch(idx, steps, 0)[0][TIME_SERIES_INPUT]
        assert np.array_equal((x != MASK).all(axis=2).sum(axis=1), seen[idx])
