"""Per-object state in Redis: light curve, classification, RNN state and history (keys in ``service.keys``).

Two Lua scripts carry every write. Each is written for one object and touches only that object's
hash-tagged keys; :class:`ObjectScript` runs it for many objects in one call (a loop over per-object
blocks of keys and arguments), so that a wave's objects share one call's fixed cost (on the project's
machine a one-object commit call cost Redis ~100 us, against ~45 us per object in a call of 50). One
object per call (``objects_per_call=1``) keeps every call within one cluster slot, as Redis Cluster
requires.

``prepare`` (read-only)
    Given a new detection, says what the caller must compute: ``duplicate`` (id already stored),
    ``new`` (first detection of the object), ``beyond`` (it falls after the model's first ``n_steps``
    detections: store only), ``step`` (it comes after every stored detection and the stored state covers
    them all: one RNN step), or ``recompute`` (returns the first ``n_steps`` stored detections).

``commit``
    Inserts the detection *and* writes the new classification in one step, but only if the model's
    input is still what the caller computed from: the first ``n_steps`` detection ids after insertion
    must equal the ids the classification was computed from (or, in ``store`` mode, the detection must
    still fall beyond them). If another worker got there first the insertion is undone and the script
    answers ``conflict`` with the current first ``n_steps`` detections, so the caller recomputes without
    another round trip. This compare-and-set on the model's exact input is what makes the stored
    classification *always* equal a recompute over the stored detections, and makes a lost race cost
    one recompute. A ``step`` commit (one RNN step from a stored state) checks the same thing more
    cheaply: every change of an object's first ``n_steps`` detections is a classification commit, which
    bumps the state's ``revision``, so if the revision is still the one of the state stepped from, the
    input is still that state's ids, and the new input is those ids plus the new one exactly when the
    new one lands last among them. Optionally the commit also requires the stored ``revision`` (the
    state planned from is the one stored, which extra writes such as webhook events depend on) and the
    number of detections after insertion (so a value derived from it, e.g. an event's
    ``n_detections``, is exact).

Because the detection and its classification are written together, a Redis failure between
``prepare`` and ``commit`` leaves nothing behind ("no partial write"), and a replay is idempotent
(``HSETNX`` on the detection id). Redis orders equal scores by member bytes, which is the model's
``(mjd, detection_id)`` order; the only Lua string comparison is byte-wise for the same reason
(Lua's ``<`` uses the server's collation locale).

The scripts are files, ``service/lua/*.lua``; every stored record (detection payloads, the state
hash, history rows) is encoded and decoded in ``service.codec``, with its version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from service import lua, metrics
from service.codec import STATE_FIELDS, StoredDetection, decode_detection
from service.keys import ObjectKeys, StateField
from service.redis_packing import PipelineConnections

__all__ = [
    "COMMIT_HOOK",
    "STATE_FIELDS",
    "CommitReply",
    "CommitRequest",
    "LuaScript",
    "ObjectScript",
    "PrepareReply",
    "RedisStateStore",
    "StoreUnavailable",
    "StoredDetection",
    "commit_body",
    "many_objects",
]

#: Values of the scripts' ``@NAME@`` markers (``service/lua/*.lua``): the state hash's field names,
#: the list every script reads (``HMGET``, in :data:`STATE_FIELDS` order) and positions in it.
_MARKERS = {
    **{name: getattr(StateField, name) for name in
       ("MODEL_VERSION", "IDS", "N_USED", "RNN", "DOC", "REVISION", "NOTIFY")},
    "STATE_FIELDS": ", ".join(f"'{f}'" for f in STATE_FIELDS),
    "MODEL_VERSION_AT": str(STATE_FIELDS.index(StateField.MODEL_VERSION) + 1),  # Lua is 1-based
    "N_USED_AT": str(STATE_FIELDS.index(StateField.N_USED) + 1),
}


def many_objects(body: str) -> str:
    """The script that runs the per-object Lua ``body`` for every object block of a call.

    ``many_objects.lua``: call arguments ``ARGV = n_steps, model_version, n_objects, then per object:
    n_keys, n_args, args``; ``KEYS`` = every object's keys in the same order. The body is a function
    of ``k`` and ``a``, where that object's keys and arguments start in ``KEYS`` and ``ARGV`` (it
    copies them into locals: no table per object); ``N_STEPS`` and ``MODEL_VERSION`` are the call's.
    Helpers: ``state(state_key)`` (the fields of :data:`STATE_FIELDS`), ``first_n(order_key,
    dets_key, n)`` (ids and payloads of the first ``n`` detections in time order) and
    ``bytes_lt(x, y)`` (byte-wise ``<``: Lua's own follows the locale).
    """
    return lua.render(lua.source("many_objects"), BODY=body, STATE_FIELDS=_MARKERS["STATE_FIELDS"])


PREPARE_BODY = lua.render(lua.source("prepare"), **_MARKERS)

#: Marks the place in the commit script where same-step extra writes (e.g. an outbox XADD) go: after
#: every check has passed and the state is written, before the object's reply. Lua inserted there sees
#: the object's ``n`` (detections stored), ``revision`` (the new revision), ``n_extra`` and
#: ``extra_at`` (its extra arguments are ``ARGV[extra_at .. extra_at + n_extra - 1]``) and ``key_at``
#: (its extra keys are ``KEYS[key_at ..]``).
COMMIT_HOOK = "-- @after-commit"

_COMMIT_BODY = lua.render(lua.source("commit"), **_MARKERS)


def commit_body(extension: str = "") -> str:
    """The commit script's per-object body, with ``extension`` Lua inserted at :data:`COMMIT_HOOK`."""
    return _COMMIT_BODY.replace(COMMIT_HOOK, f"{COMMIT_HOOK}\n{extension}" if extension else COMMIT_HOOK)


READ_OBJECT_LUA = lua.render(lua.source("read_object"), **_MARKERS)


class StoreUnavailable(RuntimeError):
    """Redis could not be reached (or timed out); the request had no effect."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(slots=True)
class PrepareReply:
    kind: str
    n_detections: int
    state: list[bytes | None]
    light_curve: list[StoredDetection] | None


@dataclass(slots=True)
class CommitReply:
    kind: str
    n_detections: int
    state: list[bytes | None] | None
    revision: int | None
    light_curve: list[StoredDetection] | None


def _light_curve(ids: Sequence[bytes], payloads: Sequence[bytes | None]) -> list[StoredDetection]:
    return [decode_detection(_text(i), p) for i, p in zip(ids, payloads, strict=True) if p is not None]


class LuaScript:
    """A Lua script called by SHA, (re)loaded when the server does not know it (e.g. after a restart).

    Calls go through :class:`~service.redis_packing.PipelineConnections`, many per round trip.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def many(
        self, connections: PipelineConnections, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
    ) -> list[Any]:
        """Replies of many calls (``(keys, args)`` each) in one round trip."""
        commands = [("EVALSHA", self.sha, len(keys), *keys, *args) for keys, args in calls]
        replies = await connections.execute(commands)
        missing = [i for i, r in enumerate(replies) if isinstance(r, redis_errors.NoScriptError)]
        if missing:
            (loaded,) = await connections.execute([("SCRIPT", "LOAD", self.source)])
            if isinstance(loaded, Exception):
                raise loaded
            retried = await connections.execute([commands[i] for i in missing])
            for i, r in zip(missing, retried, strict=True):
                replies[i] = r
        for r in replies:
            if isinstance(r, Exception):
                raise r
        return replies


class ObjectScript(LuaScript):
    """A per-object script (see :func:`many_objects`) run for many objects, ``objects_per_call`` of them
    to a script call and all the calls in one round trip."""

    def __init__(self, body: str, n_steps: int, model_version: str, objects_per_call: int) -> None:
        if objects_per_call < 1:
            raise ValueError("objects_per_call must be at least 1")
        super().__init__(many_objects(body))
        self.header = (n_steps, model_version)
        self.objects_per_call = objects_per_call

    def _call(self, objects: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> tuple[list[Any], list[Any]]:
        keys: list[Any] = []
        args: list[Any] = [*self.header, len(objects)]
        for object_keys, object_args in objects:
            keys += object_keys
            args += (len(object_keys), len(object_args), *object_args)
        return keys, args

    async def run(
        self, connections: PipelineConnections, objects: Sequence[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """One reply per object (``(keys, args)`` each), in order."""
        step = self.objects_per_call
        calls = [self._call(objects[i : i + step]) for i in range(0, len(objects), step)]
        out: list[Any] = []
        for reply in await self.many(connections, calls):
            out += reply
        return out


@dataclass(slots=True)
class CommitRequest:
    """Everything :meth:`RedisStateStore.commit` writes for one detection."""

    keys: ObjectKeys
    detection_id: str
    mjd: float
    payload: bytes
    mode: str
    #: The first ``n_steps`` detection ids after insertion, newline-joined: what the classification was
    #: computed from (classify and step modes), written as the state's ids; ``n_used`` of them.
    ids: str
    n_used: int
    has_position: bool
    history_prefix: bytes = b""
    rnn: bytes = b""
    doc: bytes = b""
    notify: str = ""
    extra_keys: Sequence[str] = ()
    extra_args: Sequence[Any] = ()
    #: Commit only if the stored revision is still this one (``None``: any; step mode needs one).
    expected_revision: int | None = None
    #: Commit only if the object then holds exactly this many detections (``None``: any).
    expected_count: int | None = None

    def block(self) -> tuple[Sequence[str], list[Any]]:
        """This object's keys and arguments for the commit script."""
        keys: Sequence[str] = self.keys
        if self.extra_keys:
            keys = (*keys, *self.extra_keys)
        revision = "" if self.expected_revision is None else self.expected_revision
        count = "" if self.expected_count is None else self.expected_count
        head = (
            f"{self.detection_id} {float(self.mjd)!r} {self.mode} {self.n_used} {int(self.has_position)}"
            f" {revision} {count} {len(self.extra_args)}"
        )
        return keys, [head, self.ids, self.payload, self.history_prefix, self.rnn, self.doc, self.notify,
                      *self.extra_args]


class RedisStateStore:
    """Domain operations on the per-object state; every call is one atomic script (or a pipeline of them).

    ``objects_per_call``: objects per script call (1 keeps each call within one Redis Cluster slot).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        n_steps: int,
        model_version: str,
        commit_extension: str = "",
        objects_per_call: int = 128,
    ) -> None:
        self.client = client
        #: The scripts' connections (the client's pool serves everything else).
        self.connections = PipelineConnections(client)
        self.n_steps = n_steps
        self.model_version = model_version
        self._prepare = ObjectScript(PREPARE_BODY, n_steps, model_version, objects_per_call)
        self._commit = ObjectScript(commit_body(commit_extension), n_steps, model_version, objects_per_call)
        self._read = LuaScript(READ_OBJECT_LUA)

    # ---------------------------------------------------------------------------- error translation

    async def _guard(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            metrics.REDIS_ERRORS.labels(type(exc).__name__).inc()
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        except redis_errors.RedisError as exc:
            metrics.REDIS_ERRORS.labels(type(exc).__name__).inc()
            raise

    # ------------------------------------------------------------------------------ domain methods

    @staticmethod
    def _prepare_reply(raw: list[Any]) -> PrepareReply:
        lc = _light_curve(raw[3], raw[4]) if len(raw) > 3 else None
        return PrepareReply(_text(raw[0]), int(raw[1]), raw[2], lc)

    async def prepare(self, keys: ObjectKeys, detection_id: str, mjd: float) -> PrepareReply:
        """What computing the classification after this detection needs (see module docstring)."""
        return (await self.prepare_many([(keys, detection_id, mjd)]))[0]

    async def prepare_many(self, items: Sequence[tuple[ObjectKeys, str, float]]) -> list[PrepareReply]:
        blocks = [(keys.all(), (detection_id, repr(float(mjd)))) for keys, detection_id, mjd in items]
        raw = await self._guard(self._prepare.run(self.connections, blocks))
        return [self._prepare_reply(r) for r in raw]

    @staticmethod
    def _commit_reply(raw: list[Any]) -> CommitReply:
        kind = raw[0]
        if kind == b"ok":
            return CommitReply("ok", raw[1], None, raw[2], None)
        lc = _light_curve(raw[3], raw[4]) if len(raw) > 3 else None
        return CommitReply(_text(kind), int(raw[1]), raw[2], None, lc)

    async def commit(self, request: CommitRequest) -> CommitReply:
        """Insert the detection and write the classification atomically, if the model input is unchanged."""
        return (await self.commit_many([request]))[0]

    async def commit_many(self, requests: Sequence[CommitRequest]) -> list[CommitReply]:
        raw = await self._guard(self._commit.run(self.connections, [r.block() for r in requests]))
        return [self._commit_reply(r) for r in raw]

    async def read_object(
        self, keys: ObjectKeys, light_curve: bool, history: bool
    ) -> tuple[list[bytes | None], list[StoredDetection], list[bytes]]:
        """One consistent snapshot: state fields, (optionally) all detections and the history rows."""
        args = [b"1" if light_curve else b"0", b"1" if history else b"0"]
        (raw,) = await self._guard(self._read.many(self.connections, [(keys.all(), args)]))
        return raw[0], _light_curve(raw[1], raw[2]), list(raw[3])

    async def object_exists(self, keys: Sequence[ObjectKeys]) -> list[bool]:
        """Whether each object has any stored detection (pipelined)."""
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k.order)
        return [bool(x) for x in await self._guard(pipe.execute())]

    async def aclose(self) -> None:
        """Close the scripts' connections (the caller closes the client)."""
        await self.connections.aclose()

    async def ping(self) -> bool:
        return bool(await self._guard(self.client.ping()))

    async def memory_usage(self, keys: ObjectKeys) -> int:
        """Bytes Redis uses for one object's keys (``MEMORY USAGE`` summed; for the benchmark)."""
        total = 0
        for key in keys.all():
            total += int(await self._guard(self.client.memory_usage(key, samples=0)) or 0)
        return total
