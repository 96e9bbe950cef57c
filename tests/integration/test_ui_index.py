"""The ``/ui`` listing's index (``service.ui.index``) and its rebuild, against a real Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from service.ui.index import LatestIndex, LatestIndexWriter
from service.ui.reindex import main as reindex_main

CLASSES = ("VS", "SN", "AGN")


def _result(oid: str, cls: str, probs: tuple[float, float, float], t: int, revision: int = 1,
            n: int = 1, status: str = "classified") -> dict[str, Any]:
    return {
        "object_id": oid,
        "status": status,
        "n_detections": n,
        "probabilities": dict(zip(CLASSES, probs, strict=True)),
        "predicted_class": cls,
        "model_version": "m1",
        "revision": revision,
        "updated_at": f"2026-12-04T10:00:{t:02d}.000+00:00",
    }


def _run(url: str, work: Any) -> Any:
    async def main() -> Any:
        client = aioredis.Redis.from_url(url)
        try:
            return await work(LatestIndex(client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_listing_is_newest_first_with_counts_filters_and_pages(clean_redis):
    results = [
        _result("a", "VS", (0.8, 0.1, 0.1), 1),
        _result("b", "SN", (0.2, 0.7, 0.1), 2),
        _result("c", "SN", (0.1, 0.9, 0.0), 3),
        _result("d", "AGN", (0.3, 0.3, 0.4), 4),
        _result("e", "SN", (0.3, 0.69, 0.01), 5),
    ]

    async def work(index: LatestIndex) -> Any:
        await index.record(results)
        return (
            await index.query(CLASSES),
            await index.query(CLASSES, predicted_class="SN"),
            await index.query(CLASSES, min_probability=("SN", 0.7)),
            await index.query(CLASSES, predicted_class="VS", min_probability=("SN", 0.7)),
            await index.query(CLASSES, offset=2, limit=2),
        )

    everything, sn, sn_07, vs_and_sn_07, page2 = _run(clean_redis, work)
    assert [r.object_id for r in everything.rows] == ["e", "d", "c", "b", "a"]
    assert everything.counts == {"VS": 1, "SN": 3, "AGN": 1} and everything.total == everything.matching == 5
    assert [r.object_id for r in sn.rows] == ["e", "c", "b"] and sn.matching == 3
    # 0.7 itself counts, 0.69 does not; still newest first
    assert [r.object_id for r in sn_07.rows] == ["c", "b"] and sn_07.matching == 2
    assert vs_and_sn_07.rows == [] and vs_and_sn_07.matching == 0
    assert [r.object_id for r in page2.rows] == ["c", "b"] and page2.matching == 5
    row = everything.rows[1]
    assert (row.predicted_class, row.probabilities["AGN"], row.model_version) == ("AGN", 0.4, "m1")


def test_a_newer_row_wins_and_a_class_change_moves_the_object(clean_redis):
    async def work(index: LatestIndex) -> Any:
        await index.record([_result("x", "SN", (0.1, 0.8, 0.1), 1, revision=1)])
        await index.record([_result("x", "VS", (0.9, 0.05, 0.05), 2, revision=2)])
        # a late write of the older revision (another worker, a slow flush) must not bring it back
        await index.record([_result("x", "SN", (0.1, 0.8, 0.1), 1, revision=1)])
        # a detection stored beyond the model's input: same revision, more detections
        await index.record([_result("x", "VS", (0.9, 0.05, 0.05), 2, revision=2, n=31, status="stored")])
        await index.record([_result("x", "VS", (0.9, 0.05, 0.05), 2, revision=2, status="duplicate")])
        return await index.query(CLASSES), await index.query(CLASSES, min_probability=("SN", 0.5))

    page, sn_05 = _run(clean_redis, work)
    assert page.counts == {"VS": 1, "SN": 0, "AGN": 0}
    (row,) = page.rows
    assert (row.predicted_class, row.n_detections) == ("VS", 31)
    assert sn_05.rows == []


def test_writer_coalesces_queued_results_into_one_write_each(clean_redis):
    async def main() -> Any:
        client = aioredis.Redis.from_url(clean_redis)
        writer = LatestIndexWriter(client)
        written: list[int] = []
        record = writer.index.record

        async def counting(results: Any) -> int:
            n = await record(results)
            written.append(n)
            return n

        writer.index.record = counting  # type: ignore[method-assign]
        writer.note([_result("p", "VS", (1, 0, 0), 1, revision=1)])
        writer.note([_result("p", "SN", (0, 1, 0), 2, revision=2), _result("q", "VS", (1, 0, 0), 3), None])
        await writer.drain()
        page = await writer.index.query(CLASSES)
        await client.aclose()
        return written, page

    written, page = asyncio.run(main())
    assert written == [2]  # both notes before the task ran: one script call, the newest row of p
    assert {r.object_id: r.predicted_class for r in page.rows} == {"p": "SN", "q": "VS"}


def _listing(url: str) -> list[tuple[str, str]]:
    page = httpx.get(f"{url}/ui").text
    rows = [part.split("</tr>", 1)[0] for part in page.split('<tr class="object-row">')[1:]]
    return [(row.split('">', 1)[1].split("<", 1)[0], row) for row in rows]


def _wait_rows(url: str, n: int) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = _listing(url)
        if len(rows) >= n:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"the listing never showed {n} rows")


def test_classifications_reach_the_listing_and_reindex_rebuilds_it(server, clean_redis, capsys):
    dets = [{"object_id": f"GOTO_{i}", "mjd": 58600.0 + i, "mag": 18.0, "mag_err": 0.1, "ra": 10.0 * i,
             "dec": 5.0} for i in range(4)]
    for d in dets:  # one request each: distinct update times
        assert httpx.post(f"{server.url}/classify", json=d).status_code == 200
    before = _wait_rows(server.url, 4)
    assert [oid for oid, _ in before] == ["GOTO_3", "GOTO_2", "GOTO_1", "GOTO_0"]

    plain = redis.Redis.from_url(clean_redis)
    index_keys = list(plain.scan_iter(match="goto:{ui}:*"))
    assert len(index_keys) >= 5 and len({key_slot(k) for k in index_keys}) == 1  # one cluster slot
    plain.delete(*index_keys)
    plain.delete(*plain.scan_iter(match="goto:{o:GOTO_0}:*"))  # an object an operator removed
    plain.close()
    assert _listing(server.url) == []

    assert reindex_main(["--redis-url", clean_redis]) == 0
    assert "ui index rebuilt: 3 objects" in capsys.readouterr().out
    assert _listing(server.url) == before[:3]  # same rows (newest first), without the removed object
