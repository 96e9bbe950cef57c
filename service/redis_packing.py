"""The hot path's Redis transport: commands packed in one join, sent on the store's own connections.

:func:`pack_commands` builds the RESP bytes of a batch of commands in Python, one ``bytes`` join for
the batch. The service's script calls carry mostly large binary arguments (RNN states, JSON
documents), and hiredis' C packer, which redis-py's synchronous client uses, costs ~2 ns per byte of
them (a 60 KB argument: 109 us, against 2 us joined). Alone, hiredis packs a commit block of small
arguments faster (5.8 vs 9.8 us); inside the service's waves the join was no slower (12.5-12.8 vs
13.6-14.1 us per object) and the wave's event-loop CPU fell from ~72 to ~64 us per detection (fewer
large temporary buffers). The packed bytes are the same RESP
(a test compares the replies with redis-py's own pipeline). Argument handling follows redis-py: a first
argument with spaces is split into words (``"SCRIPT LOAD"``), ``str`` is UTF-8, ``int`` and ``float``
are written in decimal (``repr`` for floats), ``bytearray``/``memoryview`` are bytes; anything else is
a ``DataError``.

:class:`PipelineConnections` sends such a batch and reads its replies without redis-py's per-command
pipeline bookkeeping (a command-stack entry, response callbacks and a timeout context per reply) or its
pool's per-call work: one write, one timeout for all replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

__all__ = ["PipelineConnections", "pack_commands"]


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):  # redis-py refuses booleans too: True is not "1"
        raise DataError(f"invalid argument {value!r}: convert booleans to bytes, str or int first")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise DataError(f"invalid argument of type {type(value).__name__}: expected bytes, str, int or float")


def _pack_into(out: list[bytes], args: Sequence[Any]) -> None:
    first = args[0]
    if (" " if isinstance(first, str) else b" ") in first:  # "SCRIPT LOAD": two words
        args = (*first.split(), *args[1:])
    append = out.append
    append(b"*%d\r\n" % len(args))
    for arg in args:
        kind = type(arg)
        # the common types first, inline: this loop runs for every argument of a wave's commit
        if kind is bytes:
            value = arg
        elif kind is str:
            value = arg.encode()
        elif kind is int:
            value = b"%d" % arg
        else:
            value = _encode(arg)
        append(b"$%d\r\n" % len(value))
        append(value)
        append(b"\r\n")


def pack_commands(commands: Sequence[Sequence[Any]]) -> bytes:
    """The RESP encoding of ``commands``, back to back (what a pipeline writes)."""
    out: list[bytes] = []
    for command in commands:
        _pack_into(out, command)
    return b"".join(out)


class PipelineConnections:
    """The hot path's own Redis connections: pipelined batches of commands, one write and one timeout.

    :meth:`execute` returns what ``pipeline(transaction=False)`` then ``execute(raise_on_error=False)``
    returns (error replies as exceptions, in place), for less CPU. Replies are raw: redis-py's response
    callbacks are not applied (``EVALSHA`` has none).

    Why not the client's pool: in redis-py 8 taking a connection from the pool and giving it back runs a
    lock, a readiness poll of the socket, an event dispatch and four observability records, and every
    write runs in its own task (``asyncio.wait_for``) when the connection has a socket timeout; on this
    project's machine that was ~40 % of a pipelined call's client CPU. These connections are made by the
    client's pool class from its settings (address, password, database, TLS), without a
    socket timeout: :meth:`execute` bounds the whole exchange with the client's timeout instead.

    Like the service's client (``Retry(NoBackoff(), 1)``), a connection the server dropped (e.g. after a
    restart) is replaced once, by a new connection (the idle ones are dropped with it: they predate the
    restart too); a timeout is not retried. The commands must be safe to send again (the
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
                    await conn.send_packed_command(pack_commands(commands), check_health=False)
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
                # The server dropped this connection (a restart): the other idle ones date from before
                # it too, so the retry must not take one of them (with several idle, the first requests
                # after a restart failed twice and answered 503). Drop them all; the retry connects anew.
                stale, self._idle = self._idle, []
                for old in stale:
                    await old.disconnect(nowait=True)
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
