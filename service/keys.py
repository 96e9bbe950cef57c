"""Every Redis key the service writes, in one place.

All keys of one object carry the same hash tag ``{o:<object_id>}``, so in Redis Cluster they live in
one slot and a Lua script may touch all of them atomically. Object ids are restricted to
``[A-Za-z0-9_.:+-]`` (no braces), so an id can never break out of its tag.

Per object:

``goto:{o:<id>}:dets``
    hash ``detection_id -> payload`` (see :mod:`service.store` for the payload format).
``goto:{o:<id>}:order``
    sorted set of detection ids scored by MJD. Redis orders equal scores by member bytes, which is
    exactly the model's (mjd, detection_id) order, so ``ZRANGE 0 n_steps-1`` is the model's input.
``goto:{o:<id>}:state``
    hash: the classification and the incremental-inference state (field names in :class:`StateField`).
``goto:{o:<id>}:history``
    list of JSON rows, one per classification update, oldest first.

Streams of the stream front-end (``goto-classifier consume``; names configurable, these are the
defaults):

``goto:ingest``
    detections to classify, one per entry (field ``detection``: the JSON of ``POST /classify``),
    read through the consumer group ``goto-classifier``.
``goto:results``
    one entry per classified detection (field ``result``: the JSON ``POST /classify`` answers;
    ``ingest_id``: the id of the entry it answers), trimmed to about ``GOTO_RESULTS_MAXLEN``.
``goto:ingest:dead``
    entries that could not be classified (fields ``ingest_id``, ``detection``, ``error``).

Nothing expires: the light curve and its history are the product. Operators who want retention
can set a TTL policy on the prefix; the store never relies on a key's absence except for new objects.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CONSUMER_GROUP",
    "DEAD_LETTER_STREAM",
    "INGEST_STREAM",
    "PREFIX",
    "RESULTS_STREAM",
    "ObjectKeys",
    "StateField",
    "object_keys",
]

PREFIX = "goto"
INGEST_STREAM = f"{PREFIX}:ingest"
RESULTS_STREAM = f"{PREFIX}:results"
DEAD_LETTER_STREAM = f"{PREFIX}:ingest:dead"
CONSUMER_GROUP = "goto-classifier"


class StateField:
    """Field names of the per-object ``state`` hash (shared by the Python store and the Lua scripts).

    Only what the scripts compare lives in its own field; everything else is one JSON document, so a
    commit sends few arguments (argument encoding dominated the cost of pipelined batch commits).
    """

    MODEL_VERSION = "model_version"
    #: Detection ids the classification was computed from, newline-joined, in time order.
    IDS = "ids"
    N_USED = "n_used"
    #: Raw RNN states (float32 bytes, layer 1 then layer 2; LSTM: h and c per layer).
    RNN = "rnn"
    #: JSON: t_first, last_mjd, context (source detection, ra, dec, l, b, host separation),
    #: probabilities, predicted_class, detection_id, mjd, updated_at.
    DOC = "doc"
    #: Bumped by every classification commit (lets readers and notifiers see change order).
    REVISION = "revision"
    #: Webhook notification state (opaque JSON owned by ``service.webhooks``), written with each commit.
    NOTIFY = "notify"


class ObjectKeys(NamedTuple):
    """The keys of one object, all in the same cluster slot, in the order the Lua scripts expect them
    (``KEYS[1..4]``). A tuple: cheap to build, and a worker's cached state keeps its object's keys."""

    state: str
    order: str
    dets: str
    history: str

    def all(self) -> tuple[str, str, str, str]:
        """The keys as a plain tuple (``KEYS[1..4]``)."""
        return tuple(self)  # type: ignore[return-value]


def object_keys(object_id: str) -> ObjectKeys:
    """Keys of ``object_id`` (which must already be a validated identifier)."""
    tag = f"{PREFIX}:{{o:{object_id}}}:"
    return ObjectKeys(tag + "state", tag + "order", tag + "dets", tag + "history")
