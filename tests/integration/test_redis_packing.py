"""``service.redis_packing``: commands packed in Python and the lean pipeline, against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from service.redis_packing import PipelineConnections, pack_commands


def _commands() -> list[tuple[object, ...]]:
    return [
        ("SET", "k:text", "a value with spaces"),
        ("SET", "k:bytes", memoryview(b"\x00\xffbinary")),
        ("SET", "k:number", 41),
        ("INCR", "k:number"),
        ("INCR", "k:text"),  # an error reply, in place
        ("MGET", "k:text", "k:bytes", "k:number"),
        ("EVALSHA", "0" * 40, 0),  # unknown script
        ("EVAL", "return ARGV[1] .. '!'", 0, 2.5),
    ]


def test_lean_pipeline_answers_like_redis_py_pipeline(clean_redis: str) -> None:
    async def run() -> tuple[list[object], list[object]]:
        plain = aioredis.Redis.from_url(clean_redis)
        client = aioredis.Redis.from_url(clean_redis)
        try:
            pipe = plain.pipeline(transaction=False)
            for cmd in _commands():
                pipe.execute_command(*cmd)
            expected = await pipe.execute(raise_on_error=False)
            await plain.flushdb()
            connections = PipelineConnections(client)
            got = await connections.execute(_commands())
            await connections.aclose()
        finally:
            await plain.aclose()
            await client.aclose()
        return expected, got

    expected, got = asyncio.run(run())
    assert len(got) == len(expected) == len(_commands())
    for e, g in zip(expected, got, strict=True):
        if isinstance(e, Exception):
            assert type(g) is type(e)
        elif e is not True:  # redis-py turns SET's OK into True (a response callback); raw replies here
            assert g == e
    assert got[0] == got[1] == got[2] == b"OK"
    assert got[3] == 42
    assert isinstance(got[4], ResponseError)
    assert got[5] == [b"a value with spaces", b"\x00\xffbinary", b"42"]
    assert isinstance(got[6], NoScriptError)
    assert got[7] == b"2.5!"


def test_lean_pipeline_replaces_a_connection_the_server_dropped(clean_redis: str) -> None:
    async def run() -> list[object]:
        client = aioredis.Redis.from_url(clean_redis)
        connections = PipelineConnections(client)
        admin = aioredis.Redis.from_url(clean_redis)
        try:
            await connections.execute([("SET", "k", "1")])
            await admin.client_kill_filter(_type="normal", skipme=True)  # drops the client's connection
            return await connections.execute([("INCR", "k"), ("GET", "k")])
        finally:
            await connections.aclose()
            await client.aclose()
            await admin.aclose()

    assert asyncio.run(run()) == [2, b"2"]


def test_packing_matches_redis_py() -> None:
    import redis

    reference = redis.Connection()  # packs without connecting
    for cmd in [*_commands(), ("SCRIPT LOAD", "return 1"), ("SET", "k", 2.5), ("SET", "k", b"x" * 70_000)]:
        assert pack_commands([cmd]) == b"".join(reference.pack_command(*cmd)), cmd


@pytest.mark.parametrize("bad", [object(), [1, 2], True])
def test_unpackable_arguments_are_a_data_error(clean_redis: str, bad: object) -> None:
    from redis.exceptions import DataError

    async def run() -> None:
        client = aioredis.Redis.from_url(clean_redis)
        connections = PipelineConnections(client)
        try:
            await connections.execute([("SET", "k", bad)])
        finally:
            await connections.aclose()
            await client.aclose()

    with pytest.raises(DataError):
        asyncio.run(run())
