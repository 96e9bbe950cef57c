"""The per-detection use case: plan -> compute (incremental step or recompute) -> atomic commit.

For each detection:

1. **Plan.** If this worker's cache holds the object's last committed state and the detection comes
   after its last input detection, plan one RNN step (or, once the model's ``n_steps`` inputs are full,
   a store-only write) without asking Redis. Otherwise ask the ``prepare`` script, which says
   ``duplicate`` / ``new`` / ``beyond`` / ``step`` / ``recompute``.
2. **Compute** off the event loop in the micro-batching :class:`~service.inference.InferenceExecutor`:
   one step from the stored RNN state (``step_matrix``, for the whole wave at once), or a full pass
   over the first ``n_steps`` detections in time order (``sequence_input``). Both use
   ``lightcurve.preprocessing``, the only feature code.
3. **Commit** with the ``commit`` script, which inserts the detection and writes the classification only
   if the model input is still the one computed from; on ``conflict`` it returns the current input and
   the detection is recomputed and committed again (bounded by ``max_commit_attempts``).

Detections are processed in waves (the k-th detection of every object of a request in wave k); a
wave's detections share one ``prepare`` call (for those not planned from the cache), one engine
submission (as matrices) and one ``commit`` call. Requests that share objects are serialised per
object in one worker (they would only conflict); across workers and replicas the commit's
compare-and-set keeps them correct.

Context rule (documented choice): the context features come from the *earliest detection in time*, among
the model's first ``n_steps``, that carried a position (the object's creating detection must carry one).
Tying it to time order rather than arrival order keeps the state a pure function of the set of stored
detections, so shuffled arrivals give the same final state; within one object the survey reports the
same position to well under an arcsecond, so in practice this equals "the first detection's position".
The host separation is the request's ``host_sep_arcsec`` of that detection if it gave one, else the
nearest galaxy in the configured catalogue (none configured: no match, i.e. the dummy distance).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as CounterType
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from lightcurve.context import GalaxyCatalog, galactic_lb
from lightcurve.preprocessing import context_matrix, order_arrays, sequence_input, step_matrix
from service import metrics
from service.codec import (
    StoredDetection,
    decode_state,
    detection_values,
    encode_detection,
    history_row_prefix,
    state_document,
)
from service.inference import EngineWork, InferenceExecutor, LoadedModel
from service.keys import object_keys
from service.schemas import DetectionRequest
from service.state import ContextRecord, ObjectState
from service.store import CommitReply, CommitRequest, PrepareReply, RedisStateStore
from service.ui import index as ui_index

__all__ = ["Classifier", "CommitContention", "CommitExtension", "MissingPosition"]


class CommitExtension(Protocol):
    """Extra writes made in the same atomic step as a classification commit (the webhook outbox).

    ``plan`` gets the object's previous committed state (``None`` for a new object; its ``notify``
    field is the stored notification state, its ``revision`` the stored revision), the state about to
    be committed, and the number of detections the object will hold after the commit; it returns the
    extra script arguments (``ARGV[extra_at..]`` of the commit hook), the extra keys (``KEYS[key_at..]``) and
    the new notification state to store with the update. The Lua run at the hook is given to
    :class:`~service.store.RedisStateStore` as ``commit_extension``.

    With an extension the commit also checks the stored revision and the detection count, so the
    commit happens only if ``previous`` *is* the stored state and ``n_detections`` is exact; otherwise
    it conflicts and the detection is recomputed and planned again from the state that won. Planning
    must therefore be a pure function of its inputs.
    """

    def plan(
        self, object_id: str, previous: ObjectState | None, new: ObjectState, n_detections: int
    ) -> tuple[Sequence[Any], Sequence[str], str]: ...


class MissingPosition(ValueError):
    """A new object's first detection came without ``ra``/``dec``."""

    def __init__(self, index: int | None) -> None:
        super().__init__("ra/dec are required for the first detection of an object")
        self.index = index


class CommitContention(RuntimeError):
    """A detection lost the commit race more than ``max_commit_attempts`` times; nothing was stored."""


@dataclass(slots=True)
class _Work:
    """One detection in flight."""

    index: int
    det: DetectionRequest
    detection_id: str
    received_unix: float
    #: 'prepare' | 'step' | 'recompute' | 'refresh' | 'store'
    plan: str = "prepare"
    base: ObjectState | None = None
    light_curve: list[StoredDetection] | None = None
    new_state: ObjectState | None = None
    mode: str = "none"
    result: dict[str, Any] | None = None
    attempts: int = 0
    #: Detections the object held when ``base`` was read (the commit then adds this one, unless refresh).
    n_before: int = 0
    #: Not in the cache, with a position: committed as a new object without asking Redis first.
    guessed_new: bool = False
    #: Not in the cache, with a position (what prepare says of it teaches the guess).
    missed: bool = False

    def stored(self) -> StoredDetection:
        return StoredDetection(self.detection_id, *detection_values(self.det, self.received_unix))

    def payload(self) -> bytes:
        return encode_detection(*detection_values(self.det, self.received_unix))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Classifier:
    """Classifies detections against the per-object state in Redis (see module docstring)."""

    def __init__(
        self,
        store: RedisStateStore,
        model: LoadedModel,
        executor: InferenceExecutor,
        catalog: GalaxyCatalog | None = None,
        max_commit_attempts: int = 20,
        cache_size: int = 50_000,
        extension: CommitExtension | None = None,
    ) -> None:
        self.extension = extension
        self.store = store
        self.model = model
        self.executor = executor
        self.catalog = catalog
        self.max_attempts = max_commit_attempts
        self.cache_size = cache_size
        meta = model.metadata
        self.version = meta.model_version
        self.class_names = tuple(meta.class_names)
        self.sequence_spec = meta.sequence
        self.context_spec = meta.context
        self.n_steps = meta.sequence.n_steps
        self.uses_context = model.engine.uses_context
        self._zero_state = model.engine.initial_state(1)[0].tobytes()
        self._state_size = model.engine.state_size
        self._cache: dict[str, ObjectState] = {}
        #: Objects being classified in this worker -> a future done when their request is.
        self._busy: dict[str, asyncio.Future[None]] = {}
        #: Counters for monitoring and tests: outcomes and lost commit races (conflicts).
        self.stats: dict[str, int] = dict.fromkeys(
            ("incremental", "recompute", "stored", "duplicate", "conflicts", "prepares", "cache_hits"), 0
        )
        # labelled Prometheus children, resolved once: labels() costs more than the increment
        self._lookups = {src: metrics.STATE_LOOKUPS.labels(src) for src in ("cache", "redis")}
        self._classified: dict[tuple[str, str], Any] = {}
        #: Prometheus counts of the request in progress, added once per request (each increment of a
        #: multiprocess counter costs a few microseconds: per detection they were ~4 % of a batch).
        #: (Shared by concurrent requests: whichever finishes last flushes what is left.)
        self._pending_hits = 0
        self._pending_classified: CounterType[tuple[str, str]] = CounterType()
        #: Moving average of how often a cache miss (of a detection with a position) was a new object.
        #: While it is at least 1/2, such detections are committed as new objects straight away (one
        #: round trip instead of a ``prepare`` and a commit); a wrong guess costs a refused commit, then
        #: the ``prepare``. Survey streams are mostly new objects among the misses; after a restart, or
        #: with more active objects than the cache holds, mostly known ones, and the guess turns off.
        self._new_on_miss = 1.0

    # ------------------------------------------------------------------------------------ public

    async def classify(self, det: DetectionRequest) -> dict[str, Any]:
        """Store one detection and return the object's classification after it."""
        return (await self.classify_many([det]))[0]

    async def classify_many(self, dets: Sequence[DetectionRequest]) -> list[dict[str, Any]]:
        """Same semantics as :meth:`classify` for each detection, results in request order.

        Detections are processed in waves (the k-th detection of every object in wave k), each wave with
        one ``prepare`` call, one batched inference and one ``commit`` call.
        """
        now = time.time()
        works = [_Work(i, d, d.detection_id or d.key(), now) for i, d in enumerate(dets)]
        objects = {d.object_id for d in dets}
        done = await self._claim(objects)
        try:
            if len(works) > 1:
                await self.check_new_objects(dets)
            for wave in self._waves(works):
                await self._run_wave(wave)
        finally:
            self._release(objects, done)
            self._flush_metrics()
        ui_index.note(self.store.client, [w.result for w in works])  # the /ui listing, after the commit
        return [w.result for w in works]  # type: ignore[misc]

    def context_features(self, ctx: ContextRecord | None) -> list[float] | None:
        """The normalised context vector the model sees for ``ctx`` (for the object view)."""
        vectors = None if ctx is None else self._context_vectors([ctx])
        return None if vectors is None else vectors[0].tolist()

    # -------------------------------------------------------------------------- object claims

    async def _claim(self, objects: set[str]) -> asyncio.Future[None]:
        """Wait until no other request of this worker holds any of ``objects``, then hold them all.

        All at once, never one by one, so two requests cannot deadlock.
        """
        busy = self._busy
        while True:
            held = {f for o in objects if (f := busy.get(o)) is not None}
            if not held:
                break
            await asyncio.wait(held)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for o in objects:
            busy[o] = done
        return done

    def _release(self, objects: Iterable[str], done: asyncio.Future[None]) -> None:
        busy = self._busy
        for o in objects:
            del busy[o]
        done.set_result(None)

    # -------------------------------------------------------------------------------------- waves

    @staticmethod
    def _waves(works: list[_Work]) -> list[list[_Work]]:
        if len({w.det.object_id for w in works}) == len(works):
            return [works] if works else []  # every object once (the usual batch): one wave
        seen: dict[str, int] = {}
        waves: list[list[_Work]] = []
        for w in works:
            oid = w.det.object_id
            k = seen.get(oid, 0)
            seen[oid] = k + 1
            if k == len(waves):
                waves.append([])
            waves[k].append(w)
        return waves

    async def check_new_objects(self, dets: Sequence[DetectionRequest]) -> None:
        """Refuse a batch (before any write) that creates an object from a detection without position."""
        missing = [d for d in dets if d.ra is None or d.dec is None]
        if not missing:
            return
        objects = sorted({d.object_id for d in missing if d.object_id not in self._cache})
        if not objects:
            return
        exists = dict(
            zip(objects, await self.store.object_exists([object_keys(o) for o in objects]), strict=True)
        )
        created: set[str] = set()
        for i, d in enumerate(dets):
            oid = d.object_id
            if d.has_position:
                created.add(oid)
            elif not exists.get(oid, True) and oid not in created:
                raise MissingPosition(i)

    async def _run_wave(self, wave: list[_Work]) -> None:
        self._plan_from_cache(wave)
        pending = wave
        while pending:
            to_prepare = [w for w in pending if w.plan == "prepare"]
            if to_prepare:
                replies = await self.store.prepare_many(
                    [(object_keys(w.det.object_id), w.detection_id, w.det.mjd) for w in to_prepare]
                )
                self.stats["prepares"] += len(to_prepare)
                self._lookups["redis"].inc(len(to_prepare))
                for w, reply in zip(to_prepare, replies, strict=True):
                    self._plan_from_prepare(w, reply)
            pending = [w for w in pending if w.result is None]
            if not pending:
                return
            await self._compute(pending)
            commits = await self.store.commit_many([self._commit_request(w) for w in pending])
            pending = [
                w for w, reply in zip(pending, commits, strict=True) if not self._apply_commit(w, reply)
            ]

    # ------------------------------------------------------------------------------------ planning

    def _plan_from_cache(self, wave: list[_Work]) -> None:
        cache, n_steps, hits = self._cache, self.n_steps, 0
        guess = self._new_on_miss >= 0.5
        for w in wave:
            det = w.det
            st = cache.get(det.object_id)
            if st is None:
                if det.ra is not None and det.dec is not None:
                    w.missed = True
                    if guess:
                        w.plan, w.guessed_new = "step", True
                continue
            mjd = det.mjd
            if mjd < st.last_mjd or (mjd == st.last_mjd and w.detection_id <= st.ids[-1]):
                continue  # before the last input detection, or a replay of it: Redis decides
            w.base = st
            # While the model's input is not full every stored detection is in it (the commit checks
            # that the input is unchanged), so the object holds exactly n_used detections.
            w.n_before = n_used = len(st.ids)
            w.plan = "step" if n_used < n_steps else "store"
            hits += 1
        self.stats["cache_hits"] += hits
        self._pending_hits += hits

    def _learn_new_on_miss(self, was_new: bool) -> None:
        self._new_on_miss += (float(was_new) - self._new_on_miss) / 32

    def _plan_from_prepare(self, w: _Work, reply: PrepareReply) -> None:
        st = decode_state(reply.state)
        w.base = st
        w.n_before = reply.n_detections
        kind = reply.kind
        if w.missed:
            w.missed = False
            self._learn_new_on_miss(kind == "new")
        if kind == "duplicate":
            if reply.light_curve is None and st is not None:
                self._remember(w.det.object_id, st)
                w.result = self._result(w, st, reply.n_detections, "duplicate", "none")
            else:  # stored under another model version: refresh the classification, store nothing
                w.plan, w.light_curve = "refresh", reply.light_curve or []
        elif kind == "new":
            if not w.det.has_position:
                raise MissingPosition(w.index)
            w.plan, w.base = "step", None
        elif kind == "beyond":
            w.plan = "store"
        elif kind == "step":
            w.plan = "step"
        else:
            w.plan, w.light_curve = "recompute", reply.light_curve or []

    # ----------------------------------------------------------------------------------- context

    def _contexts_for(self, dets: Sequence[StoredDetection]) -> list[ContextRecord]:
        """Context records of objects whose features come from ``dets`` (one vectorised pass)."""
        ra = np.array([d.ra for d in dets], dtype=np.float64)
        dec = np.array([d.dec for d in dets], dtype=np.float64)
        gal_l, gal_b = galactic_lb(ra, dec)
        seps: list[float | None] = [d.host_sep_arcsec for d in dets]
        lookup = [i for i, sep in enumerate(seps) if sep is None]
        if lookup and self.catalog is not None:
            found = self.catalog.nearest_separation_arcsec(ra[lookup], dec[lookup])
            for i, sep in zip(lookup, found.tolist(), strict=True):
                seps[i] = sep if np.isfinite(sep) else None
        return [
            ContextRecord(d.detection_id, d.ra, d.dec, gl, gb, sep)  # type: ignore[arg-type]
            for d, gl, gb, sep in zip(dets, gal_l.tolist(), gal_b.tolist(), seps, strict=True)
        ]

    def _context_vectors(self, ctxs: Sequence[ContextRecord | None]) -> np.ndarray | None:
        """The normalised context inputs of ``ctxs``, ``(N, n_context)`` (``None``: the model has no
        context input). A missing context is a zero row; :meth:`_recompute_work` refuses it first."""
        if not self.uses_context:
            return None
        nan = float("nan")
        return context_matrix(
            [0.0 if c is None else c.gal_l_deg for c in ctxs],
            [0.0 if c is None else c.gal_b_deg for c in ctxs],
            [nan if c is None or c.host_sep_arcsec is None else c.host_sep_arcsec for c in ctxs],
            self.context_spec,
        )

    def _state_contexts(self, states: Sequence[ObjectState]) -> np.ndarray | None:
        """The context inputs of ``states`` (computed once per state, then kept with it)."""
        if not self.uses_context:
            return None
        todo = [st for st in states if st.context_vector is None]
        if todo:
            vectors = self._context_vectors([st.context for st in todo])
            assert vectors is not None
            for st, row in zip(todo, vectors, strict=True):
                st.context_vector = row.tobytes()
        blob = b"".join([st.context_vector for st in states])  # type: ignore[misc]
        return np.frombuffer(blob, dtype=np.float32).reshape(len(states), -1)

    # ----------------------------------------------------------------------------------- compute

    async def _compute(self, works: list[_Work]) -> None:
        steps = [w for w in works if w.plan == "step"]
        sequences = [w for w in works if w.plan in ("recompute", "refresh")]
        work = EngineWork()
        if steps:
            self._step_work(steps, work)
        if sequences:
            sequences = self._recompute_work(sequences, work)
        computed = steps + sequences
        if not computed:
            return
        # one submission for the whole wave: the inference thread runs it as one batch, one future
        result = await self.executor.submit(work)
        stamp = _now()
        names = self.class_names
        for row, w in enumerate(computed):
            st = w.new_state
            assert st is not None
            st.rnn = result.state(row)
            probs = result.probabilities[row]
            st.probabilities = dict(zip(names, probs, strict=True))
            st.predicted_class = names[result.predicted[row]]
            st.updated_at = stamp

    def _step_work(self, works: list[_Work], work: EngineWork) -> None:
        """One RNN step per detection, inputs computed for the whole wave at once."""
        new = [w for w in works if w.base is None]  # first detections of new objects
        if new:
            for w, ctx in zip(new, self._contexts_for([w.stored() for w in new]), strict=True):
                w.new_state = self._new_state(w, (w.detection_id,), w.det.mjd, w.det.mjd, ctx)
        version = self.version
        for w in works:
            base = w.base
            if base is not None:
                did, mjd = w.detection_id, w.det.mjd
                w.new_state = ObjectState(
                    version, (*base.ids, did), f"{base.ids_text}\n{did}", b"", base.t_first, mjd,
                    base.context, {}, "", did, mjd, "", context_vector=base.context_vector, keys=base.keys,
                )
            w.mode = "incremental"
        zero = self._zero_state
        rnn = b"".join([zero if w.base is None else w.base.rnn for w in works])
        work.states = np.frombuffer(rnn, dtype=np.float32).reshape(len(works), self._state_size)
        dets = [w.det for w in works]
        work.x = step_matrix(
            [d.mjd for d in dets],
            [d.mag for d in dets],
            [d.mag_err for d in dets],
            [w.new_state.t_first for w in works],  # type: ignore[union-attr]
            self.sequence_spec,
        )
        work.step_context = self._state_contexts([w.new_state for w in works])  # type: ignore[misc]

    def _recompute_work(self, works: list[_Work], work: EngineWork) -> list[_Work]:
        """Full passes over the first ``n_steps`` detections; returns the works that need one (a
        detection found to land beyond the model's input becomes a store-only write instead)."""
        computed, rows, n_valid = [], [], []
        for w in works:
            x = self._recompute_input(w)
            if x is not None:
                computed.append(w)
                rows.append(x.values)
                n_valid.append(x.n_valid)
        if computed:
            work.values = np.stack(rows)
            work.n_valid = np.asarray(n_valid, dtype=np.int64)
            work.sequence_context = self._state_contexts([w.new_state for w in computed])  # type: ignore[misc]
        return computed

    def _recompute_input(self, w: _Work) -> Any:
        lc = list(w.light_curve or [])
        if w.plan == "recompute":
            lc.append(w.stored())
        order = order_arrays([x.mjd for x in lc], [x.detection_id for x in lc])[: self.n_steps]
        chosen = [lc[i] for i in order]
        ids = tuple(x.detection_id for x in chosen)
        base = w.base
        if (
            w.plan == "recompute"
            and w.detection_id not in ids
            and base is not None
            and base.model_version == self.version
            and base.ids == ids
        ):
            w.plan = "store"  # it landed beyond the model's input and the stored state is current
            return None
        source = next((x for x in chosen if x.has_position), None)
        if source is None:
            ctx = base.context if base is not None else None
        elif (
            base is not None and base.context is not None and base.context.detection_id == source.detection_id
        ):
            ctx = base.context
        else:
            ctx = self._contexts_for([source])[0]
        if ctx is None and self.uses_context:
            raise MissingPosition(w.index)
        x = sequence_input(
            [c.mjd for c in chosen],
            [c.mag for c in chosen],
            [c.mag_err for c in chosen],
            self.sequence_spec,
            detection_ids=list(ids),
        )
        w.new_state = self._new_state(w, ids, x.t_first, chosen[-1].mjd, ctx)
        w.mode = "recompute"
        return x

    def _new_state(
        self, w: _Work, ids: tuple[str, ...], t_first: float, last_mjd: float, ctx: ContextRecord | None
    ) -> ObjectState:
        # a refresh re-classifies the stored input: it keeps the detection that last changed it
        refresh = w.base if w.plan == "refresh" and w.base is not None else None
        return ObjectState(
            self.version,
            ids,
            "\n".join(ids),
            b"",
            t_first,
            last_mjd,
            ctx,
            {},
            "",
            w.detection_id if refresh is None else refresh.detection_id,
            w.det.mjd if refresh is None else refresh.mjd,
            "",
        )

    # ------------------------------------------------------------------------------------ commit

    def _commit_request(self, w: _Work) -> CommitRequest:
        det = w.det
        has_position = det.ra is not None and det.dec is not None
        st = w.new_state
        if w.plan == "store" or st is None:
            keys = object_keys(det.object_id)
            return CommitRequest(keys, w.detection_id, det.mjd, w.payload(), "store", "", 0, has_position)
        keys = st.keys
        if keys is None:
            keys = st.keys = object_keys(det.object_id)
        row = history_row_prefix(st, w.mode)
        refresh = w.plan == "refresh"
        request = CommitRequest(
            keys,
            "" if refresh else w.detection_id,
            det.mjd,
            b"" if refresh else w.payload(),
            "step" if w.plan == "step" else "classify",
            st.ids_text,
            len(st.ids),
            has_position,
            row,
            st.rnn,
            state_document(st),
            expected_revision=w.base.revision if w.base is not None else 0,
        )
        if self.extension is not None:  # the outbox/notify writes join this commit (same Lua call)
            count = w.n_before + (0 if refresh else 1)
            request.extra_args, request.extra_keys, st.notify = self.extension.plan(
                det.object_id, w.base, st, count
            )
            request.notify = st.notify
            request.expected_count = count
        return request

    def _apply_commit(self, w: _Work, reply: CommitReply) -> bool:
        """Record the outcome; ``True`` when the detection is done, ``False`` to recompute and retry."""
        oid = w.det.object_id
        kind = reply.kind
        if w.guessed_new:
            w.guessed_new = w.missed = False
            self._learn_new_on_miss(kind == "ok")
            if kind == "conflict":  # the object existed (counted as a conflict): ask Redis what it holds
                self.stats["conflicts"] += 1
                metrics.COMMIT_CONFLICTS.inc()
                w.plan, w.new_state = "prepare", None
                return False
        if kind == "ok":
            st = w.new_state
            assert st is not None and reply.revision is not None
            st.revision = reply.revision
            self._remember(oid, st)
            self._pending_classified[(w.mode, st.predicted_class)] += 1
            status = "duplicate" if w.plan == "refresh" else "classified"
            w.result = self._result(w, st, reply.n_detections, status, w.mode)
            return True
        if kind == "no_position":
            raise MissingPosition(w.index)
        st = decode_state(reply.state)
        if kind in ("duplicate", "stored", "unchanged"):
            if st is None or st.model_version != self.version:
                self._cache.pop(oid, None)
                w.plan, w.attempts = "prepare", w.attempts + 1  # classification stale: go round again
                self._check_attempts(w)
                return False
            self._remember(oid, st)
            status = "stored" if kind == "stored" else "duplicate"
            w.result = self._result(w, st, reply.n_detections, status, "none")
            return True
        # conflict: another writer changed the model input; recompute from the input it returned
        self.stats["conflicts"] += 1
        metrics.COMMIT_CONFLICTS.inc()
        self._cache.pop(oid, None)
        w.attempts += 1
        self._check_attempts(w)
        w.base, w.light_curve, w.n_before = st, reply.light_curve or [], reply.n_detections
        if w.plan != "refresh":
            w.plan = "recompute"
        return False

    def _flush_metrics(self) -> None:
        if self._pending_hits:
            self._lookups["cache"].inc(self._pending_hits)
            self._pending_hits = 0
        for key, n in self._pending_classified.items():
            counter = self._classified.get(key)
            if counter is None:
                counter = self._classified[key] = metrics.CLASSIFICATIONS.labels(*key)
            counter.inc(n)
        self._pending_classified.clear()

    def _check_attempts(self, w: _Work) -> None:
        if w.attempts >= self.max_attempts:
            raise CommitContention(
                f"object {w.det.object_id}: commit lost {w.attempts} races to concurrent writers; retry later"
            )

    def _remember(self, object_id: str, st: ObjectState) -> None:
        if self.cache_size <= 0 or st.model_version != self.version or not st.ids:
            return
        cache = self._cache
        cache.pop(object_id, None)
        if len(cache) >= self.cache_size:
            cache.pop(next(iter(cache)))  # oldest insertion first (dicts keep insertion order)
        cache[object_id] = st

    def _result(self, w: _Work, st: ObjectState, n: int, status: str, mode: str) -> dict[str, Any]:
        self.stats[mode if status == "classified" else status] += 1
        return st.result(w.det.object_id, w.detection_id, n, status, mode)
