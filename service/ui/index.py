"""The ``/ui`` listing's index in Redis: the latest classification of every object, newest first.

The per-object keys cannot answer "the 50 newest objects whose SN probability is at least 0.7"
without reading every object, so the classifier's results are also written here, *after* the
commit (the commit script touches only its object's hash-tagged keys, one cluster slot; this index
lives in another). All index keys share the hash tag ``{ui}``, so each script below touches one slot:

``goto:{ui}:recent``
    sorted set ``object_id -> unix time of its latest classification`` (newest-first paging).
``goto:{ui}:class:<C>``
    the same, only for objects whose predicted class is ``C`` (class filter, counts per class).
``goto:{ui}:p:<C>``
    sorted set ``object_id -> probability of C`` (the "C >= p" filter).
``goto:{ui}:rows``
    hash ``object_id -> JSON row`` (what a listing row shows: one ``HMGET`` per page).
``goto:{ui}:meta``
    hash ``object_id -> "revision n_detections class"``: what the row was written from, so a late or
    repeated write never replaces a newer one (several workers, results flushed out of order).

The index is derived data: a lost write (Redis down between the commit and the flush, a crash) costs
a stale row, never a wrong classification, and ``python -m service.ui.reindex`` rebuilds it from the
stored states. Writes are coalesced: :func:`note` only queues the results (the request path pays a
dict update), a task writes everything queued so far in one script call.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from service.keys import PREFIX

__all__ = [
    "LatestIndex",
    "LatestIndexWriter",
    "ListingPage",
    "ListingRow",
    "index_row",
    "note",
    "writer_for",
]

log = logging.getLogger(__name__)

TAG = f"{PREFIX}:{{ui}}:"
RECENT = TAG + "recent"
ROWS = TAG + "rows"
META = TAG + "meta"
#: Scratch set of a filtered query, created and deleted inside one script call.
SCRATCH = TAG + "scratch"

#: Result statuses that change what a row shows (a ``stored`` detection changes n_detections only).
RECORDED_STATUSES = frozenset({"classified", "stored"})


def class_key(name: str) -> str:
    return f"{TAG}class:{name}"


def probability_key(name: str) -> str:
    return f"{TAG}p:{name}"


# KEYS: recent, rows, meta, class:C1..Cn, p:C1..Cn. ARGV: n, C1..Cn, then per object: id, revision,
# n_detections, score, class, row, p1..pn (in class order).
_RECORD_LUA = """
local n = tonumber(ARGV[1])
local slot = {}
for i = 1, n do slot[ARGV[1 + i]] = i end
local a = n + 2
while a <= #ARGV do
  local id, rev, count, score, cls, row = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local old = redis.call('HGET', KEYS[3], id)
  local newer = true
  local old_cls
  if old then
    local orev, ocount
    orev, ocount, old_cls = string.match(old, '^(%d+) (%d+) (.*)$')
    orev, ocount = tonumber(orev), tonumber(ocount)
    newer = rev > orev or (rev == orev and count > ocount)
  end
  if newer then
    if old_cls and old_cls ~= cls and slot[old_cls] then redis.call('ZREM', KEYS[3 + slot[old_cls]], id) end
    redis.call('ZADD', KEYS[1], score, id)
    if slot[cls] then redis.call('ZADD', KEYS[3 + slot[cls]], score, id) end
    for i = 1, n do redis.call('ZADD', KEYS[3 + n + i], ARGV[a + 5 + i], id) end
    redis.call('HSET', KEYS[2], id, row)
    redis.call('HSET', KEYS[3], id, rev .. ' ' .. count .. ' ' .. cls)
  end
  a = a + 6 + n
end
return 1
"""

# KEYS: rows, scratch, recent, base (recent or class:C), class:C1..Cn[, p:C]. ARGV: n, min_p ('' =
# none), offset, limit. Returns {matching, all, {count per class}, ids, rows}.
_QUERY_LUA = """
local rows, scratch, recent, base = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n, min_p, offset, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local counts = {}
for i = 1, n do counts[i] = redis.call('ZCARD', KEYS[4 + i]) end
local src = base
if min_p ~= '' then
  -- the objects with p >= min_p, scored by time: copy the probability set, cut it, intersect with
  -- the time-scored base set taking the base's scores only (weights 1, 0)
  redis.call('ZUNIONSTORE', scratch, 1, KEYS[5 + n])
  redis.call('ZREMRANGEBYSCORE', scratch, '-inf', '(' .. min_p)
  redis.call('ZINTERSTORE', scratch, 2, base, scratch, 'WEIGHTS', 1, 0)
  src = scratch
end
local matching = redis.call('ZCARD', src)
local ids = redis.call('ZREVRANGE', src, offset, offset + limit - 1)
local got = {}
if #ids > 0 then got = redis.call('HMGET', rows, unpack(ids)) end
if src == scratch then redis.call('DEL', scratch) end
return {matching, redis.call('ZCARD', recent), counts, ids, got}
"""


def _unix(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:  # a state written without a time sorts last rather than failing its batch
        return 0.0


def index_row(result: Mapping[str, Any]) -> bytes:
    """The listing row stored for one classification result (``ObjectState.result`` fields)."""
    return orjson.dumps(
        {
            "predicted_class": result["predicted_class"],
            "probabilities": result["probabilities"],
            "n_detections": result["n_detections"],
            "updated_at": result["updated_at"],
            "model_version": result["model_version"],
        }
    )


@dataclass(frozen=True, slots=True)
class ListingRow:
    object_id: str
    predicted_class: str
    probabilities: dict[str, float]
    n_detections: int
    updated_at: str
    model_version: str


@dataclass(frozen=True, slots=True)
class ListingPage:
    rows: list[ListingRow]
    #: Objects matching the filter (all pages).
    matching: int
    #: Objects in the index.
    total: int
    #: Objects per predicted class (whole index), in the model's class order.
    counts: dict[str, int]


class LatestIndex:
    """Reads and writes of the index over one Redis client (scripts run by SHA, loaded on demand)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._record = client.register_script(_RECORD_LUA)
        self._query = client.register_script(_QUERY_LUA)

    async def record(self, results: Iterable[Mapping[str, Any]]) -> int:
        """Write the rows of ``results`` (one script call per set of class names); returns how many."""
        by_classes: dict[tuple[str, ...], list[Any]] = {}
        written = 0
        for r in results:
            if r.get("status") not in RECORDED_STATUSES:
                continue
            classes = tuple(r["probabilities"])
            args = by_classes.setdefault(classes, [])
            args += (r["object_id"], r["revision"], r["n_detections"], repr(_unix(r["updated_at"])),
                     r["predicted_class"], index_row(r))
            args += (repr(float(p)) for p in r["probabilities"].values())
            written += 1
        for classes, args in by_classes.items():
            keys = [RECENT, ROWS, META, *map(class_key, classes), *map(probability_key, classes)]
            await self._record(keys=keys, args=[len(classes), *classes, *args])
        return written

    async def query(
        self,
        class_names: Sequence[str],
        predicted_class: str | None = None,
        min_probability: tuple[str, float] | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ListingPage:
        """One page, newest first; ``predicted_class`` and ``min_probability`` (class, p) filter it."""
        base = class_key(predicted_class) if predicted_class else RECENT
        keys = [ROWS, SCRATCH, RECENT, base, *map(class_key, class_names)]
        min_p = ""
        if min_probability is not None:
            keys.append(probability_key(min_probability[0]))
            min_p = repr(float(min_probability[1]))
        matching, total, counts, ids, raw = await self._query(
            keys=keys, args=[len(class_names), min_p, offset, limit]
        )
        rows = []
        for object_id, row in zip(ids, raw, strict=True):
            if row is None:  # written without its row (cannot happen in one script; kept defensive)
                continue
            doc = orjson.loads(row)
            rows.append(
                ListingRow(
                    object_id.decode(),
                    doc["predicted_class"],
                    doc["probabilities"],
                    int(doc["n_detections"]),
                    doc["updated_at"],
                    doc["model_version"],
                )
            )
        per_class = dict(zip(class_names, map(int, counts), strict=True))
        return ListingPage(rows, int(matching), int(total), per_class)

    async def clear(self) -> None:
        """Delete every index key (before a rebuild)."""
        doomed = [k async for k in self.client.scan_iter(match=f"{PREFIX}:{{ui}}:*", count=1000)]
        if doomed:
            await self.client.delete(*doomed)


class LatestIndexWriter:
    """Queues results on the request path and writes them from a task, many results per script call.

    Only the newest result per object is kept while queued. Failures are logged and dropped: the
    index is derived data (see the module docstring).
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.index = LatestIndex(client)
        self._queued: dict[str, Mapping[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, results: Iterable[Mapping[str, Any] | None]) -> None:
        queued = self._queued
        for r in results:
            if r is None or r.get("status") not in RECORDED_STATUSES:
                continue
            oid = r["object_id"]
            old = queued.get(oid)
            if old is None or (r["revision"], r["n_detections"]) > (old["revision"], old["n_detections"]):
                queued[oid] = r
        if queued and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush(), name="ui-index-writer")

    async def _flush(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, {}
                try:
                    await self.index.record(batch.values())
                except Exception as exc:  # derived data: log, drop, carry on (reindex repairs)
                    log.warning("ui index: %d row(s) not written (%s); `python -m service.ui.reindex` "
                                "rebuilds the index", len(batch), exc)
        finally:
            self._task = None

    async def drain(self) -> None:
        """Wait until everything queued so far is written (at shutdown; tests)."""
        while self._task is not None:
            await asyncio.shield(self._task)


_WRITERS: weakref.WeakKeyDictionary[aioredis.Redis, LatestIndexWriter] = weakref.WeakKeyDictionary()


def writer_for(client: aioredis.Redis) -> LatestIndexWriter:
    """The writer of ``client`` (one per Redis client, i.e. per app in this process), created on first
    use; from then on :func:`note` feeds it. The UI router's lifespan calls this at start-up."""
    writer = _WRITERS.get(client)
    if writer is None:
        writer = _WRITERS[client] = LatestIndexWriter(client)
    return writer


def note(client: aioredis.Redis, results: Iterable[Mapping[str, Any] | None]) -> None:
    """Queue classification results for the index (the classifier calls this after its commits).

    A function over the client rather than an object handed to the classifier, so that the commit path
    needs exactly one call line (``service.classifier.Classifier.classify_many``). Nothing happens for
    a client no app serving the pages has registered (:func:`writer_for`): a classifier used on its
    own (benchmarks, store tests) writes only its objects' keys.
    """
    writer = _WRITERS.get(client)
    if writer is not None:
        writer.note(results)
