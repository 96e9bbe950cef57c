"""redis-py asyncio connections that build commands with hiredis' C packer.

redis-py's asyncio connections pack commands in Python (its synchronous ones use hiredis when it is
installed). A pipelined batch commit sends ~100 ``EVALSHA`` calls of ~25 arguments each, and packing
them was a quarter of the service's CPU in ``POST /classify/batch`` (~80 us a command in Python, ~2.5 us
in hiredis). The packed bytes are the same RESP; only who builds them changes. Argument handling follows
redis-py's own hiredis packer (``redis.connection.HiredisRespSerializer``): a first argument with spaces
is split into words, ``bytearray``/``memoryview`` become ``bytes``, anything hiredis cannot pack is a
``DataError``.

:func:`execute_pipelined` sends such a batch and reads its replies without redis-py's per-command
pipeline bookkeeping (a command-stack entry, response callbacks and a timeout context per reply): one
write, one timeout for all replies.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

__all__ = ["execute_pipelined", "use_hiredis_packing"]


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


async def execute_pipelined(client: aioredis.Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Replies of ``commands`` sent in one write: what ``pipeline(transaction=False)`` then
    ``execute(raise_on_error=False)`` returns (error replies as exceptions, in place), for less CPU.
    Replies are raw: redis-py's response callbacks are not applied (``EVALSHA`` has none).

    Like the service's client (``Retry(NoBackoff(), 1)``), a connection the server dropped (e.g. after a
    restart) is replaced once; a timeout is not retried. The commands must be safe to send again (the
    service's scripts are idempotent by detection id).
    """
    pool = client.connection_pool
    for attempt in (0, 1):
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[Any] = []
            async with asyncio.timeout(conn.socket_timeout):
                for _ in commands:
                    try:
                        replies.append(await conn.read_response(timeout=math.inf))
                    except ResponseError as exc:
                        replies.append(exc)
            return replies
        except TimeoutError:
            await conn.disconnect(nowait=True)
            raise
        except (RedisConnectionError, OSError):
            await conn.disconnect(nowait=True)
            if attempt:
                raise
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)
    raise AssertionError("unreachable")
