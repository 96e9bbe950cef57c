"""The numpy step engine equals the Keras model (GRU and LSTM, with and without context) to 1e-5."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.inference import (
    EngineWork,
    InferenceExecutor,
    LoadedModel,
    load_model,
    sample_inputs,
    verify_engine,
)
from tests.integration.conftest import build_tiny_artifact

pytestmark = pytest.mark.slow

CONFIGS = [("gru", True), ("gru", False), ("lstm", True), ("lstm", False)]


@pytest.fixture(scope="module", params=CONFIGS, ids=[f"{r}-{'ctx' if c else 'nc'}" for r, c in CONFIGS])
def artifact(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, LoadedModel]:
    rnn, ctx = request.param
    model_dir = build_tiny_artifact(tmp_path_factory.mktemp("engine") / f"{rnn}{ctx}", rnn, ctx, seed=3)
    return model_dir, load_model(model_dir)


def keras_outputs(model_dir: Path, values: np.ndarray, ctx: np.ndarray | None) -> np.ndarray:
    import keras

    model = keras.models.load_model(model_dir / "model.keras", compile=False)
    inputs: list[Any] = [values] if ctx is None else [values, ctx]
    return np.asarray(model(inputs, training=False))


def test_engine_matches_keras(artifact: tuple[Path, LoadedModel]) -> None:
    model_dir, loaded = artifact
    assert loaded.check.passed and loaded.check.max_abs_diff_probabilities <= 1e-5
    values, n_valid, ctx = sample_inputs(loaded.metadata, n=40, seed=9)  # not the start-up sample
    engine = loaded.engine
    use_ctx = ctx if engine.uses_context else None
    expected = keras_outputs(model_dir, values, use_ctx)
    got = engine.probabilities(engine.run(values, n_valid), use_ctx)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.ptp(expected, axis=0).max() > 1e-3  # the random model really discriminates inputs


def test_incremental_steps_equal_recompute(artifact: tuple[Path, LoadedModel]) -> None:
    _, loaded = artifact
    engine = loaded.engine
    values, n_valid, _ = sample_inputs(loaded.metadata, n=8, seed=4)
    for row, n in zip(values, n_valid, strict=True):
        state = engine.initial_state(1)
        for t in range(n):
            state = engine.advance(state, row[None, t])
        full = engine.run(row[None], np.array([n]))
        np.testing.assert_allclose(state, full, atol=1e-6)


def test_engine_refuses_to_start_when_unequal(
    artifact: tuple[Path, LoadedModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    import service.inference as inference

    model_dir, loaded = artifact
    head = list(loaded.engine.head)
    bias = head[-1].bias.copy()
    bias[0] += 1e-3  # a subtly wrong output layer (a shift of every logit would cancel in the softmax)
    head[-1] = dataclasses.replace(head[-1], bias=bias)
    wrong = dataclasses.replace(loaded.engine, head=tuple(head))
    model = keras.models.load_model(model_dir / "model.keras", compile=False)
    assert not verify_engine(model, wrong, loaded.metadata, 1e-5).passed
    monkeypatch.setattr(inference, "build_engine", lambda *_: wrong)
    with pytest.raises(RuntimeError, match="refusing to start"):
        load_model(model_dir)


def test_executor_batches_concurrent_work(artifact: tuple[Path, LoadedModel]) -> None:
    _, loaded = artifact
    engine = loaded.engine
    values, n_valid, ctx = sample_inputs(loaded.metadata, n=30, seed=5)
    use_ctx = ctx if engine.uses_context else None
    # row i: a full sequence (odd i) or one step from the state after n_valid[i] - 1 steps (even i)
    prev = engine.run(values, n_valid - 1)
    last = values[np.arange(30), n_valid - 1]

    def work(rows: list[int]) -> EngineWork:
        steps = [i for i in rows if i % 2 == 0]
        seqs = [i for i in rows if i % 2]
        out = EngineWork()
        if steps:
            out.states, out.x = prev[steps], last[steps]
            out.step_context = None if use_ctx is None else use_ctx[steps]
        if seqs:
            out.values, out.n_valid = values[seqs], n_valid[seqs]
            out.sequence_context = None if use_ctx is None else use_ctx[seqs]
        return out

    parts = [list(range(20)), *([i] for i in range(20, 30))]

    async def run() -> list[Any]:
        executor = InferenceExecutor(engine, max_batch=8)  # fewer than the rows: computed in chunks
        executor.start()
        try:
            # one submission of 20 mixed rows, 10 of one row each and an empty one, all concurrent
            futures = [executor.submit(work(rows)) for rows in parts]
            out = await asyncio.gather(*futures, executor.submit(EngineWork()))
            assert out[-1].probabilities == [] and out[-1].states == b""
            assert executor.stats.largest_batch > 1 and executor.stats.jobs == 30
            return out[:-1]
        finally:
            executor.stop()

    results = asyncio.run(run())
    full = engine.run(values, n_valid)
    probs = engine.probabilities(full, use_ctx)
    for rows, result in zip(parts, results, strict=True):
        order = [i for i in rows if i % 2 == 0] + [i for i in rows if i % 2]  # steps first, then sequences
        for row, i in enumerate(order):
            state = np.frombuffer(result.state(row), dtype=np.float32)
            np.testing.assert_allclose(state, full[i], atol=1e-6)
            np.testing.assert_allclose(result.probabilities[row], probs[i], atol=1e-6)
            assert result.predicted[row] == int(np.argmax(probs[i]))


def test_verified_engine_file_round_trip(artifact: tuple[Path, LoadedModel], tmp_path: Path) -> None:
    import shutil

    from service.inference import load_verified_engine, save_verified_engine

    model_dir, loaded = artifact
    path = save_verified_engine(loaded, tmp_path / "engine.npz")
    again = load_verified_engine(path, model_dir, 1e-5)
    assert again is not None and again.source == "verified-file" and again.version == loaded.version
    values, n_valid, ctx = sample_inputs(loaded.metadata, n=10, seed=2)
    use_ctx = ctx if loaded.engine.uses_context else None
    np.testing.assert_array_equal(
        again.engine.probabilities(again.engine.run(values, n_valid), use_ctx),
        loaded.engine.probabilities(loaded.engine.run(values, n_valid), use_ctx),
    )
    assert load_verified_engine(path, model_dir, 1e-9) is None  # verified to a looser tolerance
    changed = tmp_path / "changed"
    shutil.copytree(model_dir, changed)
    (changed / "metadata.json").write_text((changed / "metadata.json").read_text().replace("tiny", "other"))
    assert load_verified_engine(path, changed, 1e-5) is None  # another artifact: not this file
