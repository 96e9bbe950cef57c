"""The micro-batching executor returns, for every job, what the engine gives for that job alone."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np


def test_mixed_jobs_chunked_and_concurrent_submissions_get_their_own_results(loaded_model: Any) -> None:
    from service.inference import InferenceExecutor

    engine = loaded_model.engine
    rng = np.random.default_rng(3)
    n_steps, n_feat = 30, engine.n_features
    ctx = (lambda: rng.normal(size=engine.n_context).astype(np.float32)) if engine.uses_context else (
        lambda: None
    )

    def step_job() -> Any:
        state = rng.normal(size=engine.initial_state(1)[0].shape).astype(np.float32)
        return InferenceExecutor.step_job(state, rng.normal(size=n_feat).astype(np.float32), ctx())

    def sequence_job() -> Any:
        n_valid = int(rng.integers(1, n_steps + 1))
        values = np.full((n_steps, n_feat), -999.0, dtype=np.float32)
        values[:n_valid] = rng.normal(size=(n_valid, n_feat))
        return InferenceExecutor.sequence_job(values, n_valid, ctx())

    def alone(job: Any) -> tuple[np.ndarray, np.ndarray]:
        if job.values is None:
            state = engine.advance(job.state[None], job.x[None])
        else:
            state = engine.run(job.values[None], np.array([job.n_valid]))
        context = None if job.context is None else job.context[None]
        return state[0], engine.probabilities(state, context)[0]

    first = [step_job(), sequence_job(), step_job(), step_job(), sequence_job(), step_job(), sequence_job()]
    second = [sequence_job(), step_job()]
    executor = InferenceExecutor(engine, max_batch=3)  # smaller than a submission: computed in chunks
    executor.start()

    async def run() -> list[list[tuple[np.ndarray, np.ndarray]]]:
        futures = [executor.submit(jobs) for jobs in (first, second, [])]
        return list(await asyncio.gather(*futures))

    try:
        got_first, got_second, got_empty = asyncio.run(run())
    finally:
        executor.stop()
    assert got_empty == []
    for jobs, got in ((first, got_first), (second, got_second)):
        assert len(got) == len(jobs)
        for job, (state, probs) in zip(jobs, got, strict=True):
            want_state, want_probs = alone(job)
            np.testing.assert_allclose(state, want_state, atol=1e-6)
            np.testing.assert_allclose(probs, want_probs, atol=1e-6)
