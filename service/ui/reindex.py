"""Rebuild the ``/ui`` listing's index from the stored object states: ``python -m service.ui.reindex``.

Needed after a restore from a backup taken without the index, after objects' keys were expired or
deleted by an operator, or if index writes were lost (they are made after the commit, see
``service.ui.index``). The service may keep running: rows it writes meanwhile are newer and win.
The listing is incomplete while the rebuild runs (the index is cleared first, so that objects no
longer stored disappear from it).

Redis: ``--redis-url``, else ``GOTO_REDIS_URL``. For the embedded server use the ``unix://`` URL that
``serve`` logs at start-up ("embedded Redis at ..."): this command never starts or stops a server.
Redis Cluster: the index lives in one slot; run it against each primary holding object states.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from typing import Any

import redis.asyncio as aioredis

from service.keys import PREFIX
from service.state import parse_state
from service.store import STATE_FIELDS
from service.ui.index import LatestIndex

__all__ = ["main", "rebuild"]

_STATE_KEY = re.compile(rb"^" + re.escape(PREFIX.encode()) + rb":\{o:(.+)\}:state$")
_BATCH = 500


async def rebuild(client: aioredis.Redis, progress: bool = False) -> int:
    """Clear the index and write one row per stored object state; returns the number of objects."""
    index = LatestIndex(client)
    await index.clear()
    written = 0
    keys: list[bytes] = []
    async for key in client.scan_iter(match=f"{PREFIX}:{{o:*}}:state", count=1000):
        keys.append(key)
        if len(keys) >= _BATCH:
            written += await _reindex(client, index, keys)
            keys = []
            if progress:
                print(f"{written} objects", file=sys.stderr)
    if keys:
        written += await _reindex(client, index, keys)
    return written


async def _reindex(client: aioredis.Redis, index: LatestIndex, state_keys: list[bytes]) -> int:
    pipe = client.pipeline(transaction=False)
    ids = []
    for key in state_keys:
        match = _STATE_KEY.match(key)
        if match is None:
            continue
        object_id = match.group(1).decode()
        ids.append(object_id)
        pipe.hmget(key, *STATE_FIELDS)
        pipe.zcard(key[: -len(b"state")] + b"order")
    replies = await pipe.execute()
    results: list[dict[str, Any]] = []
    for i, object_id in enumerate(ids):
        st = parse_state(replies[2 * i])
        if st is None:
            continue
        result = st.result(object_id, st.detection_id, int(replies[2 * i + 1]), "classified", "none")
        results.append(result)
    return await index.record(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.ui.reindex", description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=None, help="default: GOTO_REDIS_URL")
    args = parser.parse_args(argv)
    url = args.redis_url or os.environ.get("GOTO_REDIS_URL")
    if not url:
        print("error: no Redis to connect to: pass --redis-url or set GOTO_REDIS_URL (serve logs the "
              "embedded server's URL at start-up)", file=sys.stderr)
        return 2
    client = aioredis.Redis.from_url(url, socket_timeout=30)

    async def run() -> int:
        try:
            return await rebuild(client, progress=True)
        finally:
            await client.aclose()

    n = asyncio.run(run())
    print(f"ui index rebuilt: {n} objects")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
