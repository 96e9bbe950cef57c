"""redis-py asyncio connections that build commands with hiredis' C packer.

redis-py's asyncio connections pack commands in Python (its synchronous ones use hiredis when it is
installed). A pipelined batch commit sends ~100 ``EVALSHA`` calls of ~25 arguments each, and packing
them was a quarter of the service's CPU in ``POST /classify/batch`` (~80 us a command in Python, ~2.5 us
in hiredis). The packed bytes are the same RESP; only who builds them changes. Argument handling follows
redis-py's own hiredis packer (``redis.connection.HiredisRespSerializer``): a first argument with spaces
is split into words, ``bytearray``/``memoryview`` become ``bytes``, anything hiredis cannot pack is a
``DataError``.

:class:`PipelineConnections` sends such a batch and reads its replies without redis-py's per-command
pipeline bookkeeping (a command-stack entry, response callbacks and a timeout context per reply) or its
pool's per-call work: one write, one timeout for all replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

__all__ = ["PipelineConnections", "use_hiredis_packing"]


def _pack(args: tuple[Any, ...]) -> bytes:
    first = args[0]
    if isinstance(first, str):
        if " " in first:
            args = (*first.encode().split(), *args[1:])
    elif b" " in first:
        args = (*first.split(), *args[1:])
    try:
        return bytes(hiredis.pack_command(args))
    except TypeError:
        fixed = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return bytes(hiredis.pack_command(fixed))
        except TypeError as exc:
            raise DataError(str(exc)) from None


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        return [_pack(args)]

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join([_pack(tuple(cmd)) for cmd in commands])]


class HiredisConnection(_HiredisPacking, Connection):
    pass


class HiredisSSLConnection(_HiredisPacking, SSLConnection):
    pass


class HiredisUnixDomainSocketConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_PACKED: dict[type, type] = {
    Connection: HiredisConnection,
    SSLConnection: HiredisSSLConnection,
    UnixDomainSocketConnection: HiredisUnixDomainSocketConnection,
}


def use_hiredis_packing(client: aioredis.Redis) -> aioredis.Redis:
    """Make ``client``'s pool create hiredis-packing connections (call before its first command)."""
    pool = client.connection_pool
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return client


class PipelineConnections:
    """The hot path's own Redis connections: pipelined batches of commands, one write and one timeout.

    :meth:`execute` returns what ``pipeline(transaction=False)`` then ``execute(raise_on_error=False)``
    returns (error replies as exceptions, in place), for less CPU. Replies are raw: redis-py's response
    callbacks are not applied (``EVALSHA`` has none).

    Why not the client's pool: in redis-py 8 taking a connection from the pool and giving it back runs a
    lock, a readiness poll of the socket, an event dispatch and four observability records, and every
    write runs in its own task (``asyncio.wait_for``) when the connection has a socket timeout; on this
    project's machine that was ~40 % of a pipelined call's client CPU. These connections are made by the
    client's pool class from its settings (address, password, database, TLS, hiredis packing), without a
    socket timeout: :meth:`execute` bounds the whole exchange with the client's timeout instead.

    Like the service's client (``Retry(NoBackoff(), 1)``), a connection the server dropped (e.g. after a
    restart) is replaced once; a timeout is not retried. The commands must be safe to send again (the
    service's scripts are idempotent by detection id). A connection whose exchange failed or was
    cancelled is closed, never reused, so no reply is ever read by the wrong caller.
    """

    MAX_IDLE = 16

    def __init__(self, client: aioredis.Redis) -> None:
        pool = client.connection_pool
        self._connection_class = pool.connection_class
        self._kwargs = {**pool.connection_kwargs, "socket_timeout": None}
        self.timeout_s: float | None = pool.connection_kwargs.get("socket_timeout")
        self._idle: list[Connection] = []

    async def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        for attempt in (0, 1):
            conn = self._idle.pop() if self._idle else self._connection_class(**self._kwargs)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                    replies: list[Any] = []
                    for _ in commands:
                        try:
                            replies.append(await conn.read_response())
                        except ResponseError as exc:
                            replies.append(exc)
            except (RedisConnectionError, OSError) as exc:
                await conn.disconnect(nowait=True)
                if attempt or isinstance(exc, TimeoutError):
                    raise
                continue
            except BaseException:
                await conn.disconnect(nowait=True)
                raise
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(conn)
            else:
                await conn.disconnect()
            return replies
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()
