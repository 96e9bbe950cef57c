"""``service.coalesce.RequestMerger``: how concurrent calls are merged (the classifier side is a plain
coroutine here; the merger with the real classifier and Redis is in tests/integration/test_coalesce.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from service.coalesce import RequestMerger


def test_calls_arriving_while_the_limit_is_reached_go_together_into_the_next() -> None:
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def classify_many(items: Sequence[Any]) -> list[dict[str, Any]]:
        calls.append(list(items))
        if len(calls) == 1:
            await release.wait()  # the first call is still running while the others arrive
        return [{"item": i} for i in items]

    async def scenario() -> list[list[dict[str, Any]]]:
        merger = RequestMerger(classify_many, max_in_flight=1)
        first = asyncio.ensure_future(merger.classify_many([1, 2]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first call has started
        later = [asyncio.ensure_future(merger.classify_many([n])) for n in (3, 4, 5)]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(first, *later)

    results = asyncio.run(scenario())
    assert calls == [[1, 2], [3, 4, 5]]  # the three late calls waited, then shared one call
    assert results == [[{"item": 1}, {"item": 2}], [{"item": 3}], [{"item": 4}], [{"item": 5}]]


def test_without_a_limit_only_calls_of_the_same_loop_iteration_are_merged() -> None:
    calls: list[list[int]] = []

    async def classify_many(items: Sequence[Any]) -> list[int]:
        calls.append(list(items))
        await asyncio.sleep(0.01)
        return list(items)

    async def scenario() -> None:
        merger = RequestMerger(classify_many)
        together = asyncio.gather(*(merger.classify_many([n]) for n in (1, 2, 3)))
        await asyncio.sleep(0.001)  # the first merged call is running
        assert await merger.classify_many([4]) == [4]  # not held back behind it
        assert await together == [[1], [2], [3]]

    asyncio.run(scenario())
    assert calls == [[1, 2, 3], [4]]
