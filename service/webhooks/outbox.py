"""The durable webhook outbox in Redis: key names, entry fields, and writing events into it.

Per subscription ``<sid>`` (all three keys share the hash tag ``{wh:<sid>}``, so the dispatcher's
multi-key steps are single-slot Lua scripts, also in Redis Cluster):

``goto:{wh:<sid>}:outbox``
    stream of events to deliver, read by the consumer group :data:`CONSUMER_GROUP`. An entry is
    deleted once it is delivered, rescheduled or dead-lettered, so the stream holds only work to do.
``goto:{wh:<sid>}:retry``
    sorted set of failed events waiting for their next attempt, scored by the not-before unix time;
    members are the JSON of the entry's fields (attempt count included), so retries survive restarts.
``goto:{wh:<sid>}:dead``
    stream of events that will not be retried (rejected by the receiver, too many attempts, too old),
    with the reason; listed and replayed from the CLI.

The state commit writes an update's events into the outbox in the same Lua script as the state change
(:func:`outbox_entries` gives the ``XADD`` arguments; :data:`LUA_XADD_OUTBOX` is a ready-made fragment).
:func:`publish` is the separate-step fallback (used by tests, and where the commit cannot include the
outbox, e.g. Redis Cluster: see ``docs/webhooks.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.keys import PREFIX
from service.webhooks.events import Event

__all__ = [
    "CONSUMER_GROUP",
    "LUA_XADD_OUTBOX",
    "NOTIFY_STATE_FIELD",
    "EntryField",
    "dead_letter_key",
    "decode_fields",
    "flatten_outbox_entries",
    "outbox_entries",
    "outbox_key",
    "publish",
    "retry_key",
]

CONSUMER_GROUP = "goto-dispatchers"
#: Field of the object's state hash holding its :class:`~service.webhooks.events.NotifyState` JSON.
NOTIFY_STATE_FIELD = "notify"


class EntryField:
    """Field names of an outbox stream entry (all values are strings)."""

    EVENT_ID = "id"
    TYPE = "type"
    SUBSCRIPTION = "subscription_id"
    OBJECT_ID = "object_id"
    SEQUENCE = "sequence"
    #: Unix seconds when the event was created; ``max_age_s`` counts from here.
    CREATED = "created"
    #: The exact JSON body sent (and signed) on every attempt.
    BODY = "body"
    #: Attempts already made (0 for a new event).
    ATTEMPT = "attempt"
    #: Why the last attempt failed ("" for a new event); copied into the dead letter.
    LAST_ERROR = "last_error"
    LAST_STATUS = "last_status"


def _tag(subscription_id: str) -> str:
    return f"{PREFIX}:{{wh:{subscription_id}}}"


def outbox_key(subscription_id: str) -> str:
    return f"{_tag(subscription_id)}:outbox"


def retry_key(subscription_id: str) -> str:
    return f"{_tag(subscription_id)}:retry"


def dead_letter_key(subscription_id: str) -> str:
    return f"{_tag(subscription_id)}:dead"


def _fields(event: Event) -> dict[str, str]:
    return {
        EntryField.EVENT_ID: event.id,
        EntryField.TYPE: event.type,
        EntryField.SUBSCRIPTION: event.subscription_id,
        EntryField.OBJECT_ID: event.object_id,
        EntryField.SEQUENCE: str(event.sequence),
        EntryField.CREATED: repr(event.created),
        EntryField.BODY: event.body.decode(),
        EntryField.ATTEMPT: "0",
        EntryField.LAST_ERROR: "",
        EntryField.LAST_STATUS: "",
    }


def outbox_entries(events: Iterable[Event]) -> list[tuple[str, dict[str, str]]]:
    """``(stream_key, fields)`` to ``XADD <stream_key> * <fields...>`` for each event, in order."""
    return [(outbox_key(e.subscription_id), _fields(e)) for e in events]


def flatten_outbox_entries(entries: Sequence[tuple[str, Mapping[str, str]]]) -> list[str]:
    """Entries as flat script arguments: ``n, key1, nfields1, f, v, ..., key2, ...`` (for LUA_XADD_OUTBOX)."""
    flat: list[str] = [str(len(entries))]
    for key, fields in entries:
        flat += [key, str(len(fields))]
        for name, value in fields.items():
            flat += [name, value]
    return flat


#: Lua fragment for a commit script: XADDs the entries flattened by :func:`flatten_outbox_entries`,
#: starting at ``ARGV[outbox_at]`` (define ``local outbox_at = <index>`` before it). Run it after every
#: check of the script has passed: Redis does not roll back writes made before a script error.
#: Stream keys are passed in ARGV, not KEYS, because they belong to other slots; on Redis Cluster this
#: cannot work (see docs/webhooks.md), on a single Redis server it is atomic with the rest of the script.
LUA_XADD_OUTBOX = """
local i = outbox_at
local n_entries = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_entries do
  local stream = ARGV[i]
  local n_fields = tonumber(ARGV[i + 1]); i = i + 2
  local args = {}
  for j = 0, 2 * n_fields - 1 do args[#args + 1] = ARGV[i + j] end
  i = i + 2 * n_fields
  redis.call('XADD', stream, '*', unpack(args))
end
"""


async def publish(redis: Any, events: Sequence[Event]) -> list[str]:
    """Write ``events`` to their outbox streams in one MULTI/EXEC; return the stream entry ids.

    This is not atomic with a state update made in another call: a crash between the two loses the
    events. Use it for tests and re-publishing; the service's commit writes the outbox in its Lua script.
    """
    if not events:
        return []
    async with redis.pipeline(transaction=True) as pipe:
        for key, fields in outbox_entries(events):
            pipe.xadd(key, fields)
        ids = await pipe.execute()
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


def decode_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    """Stream entry fields as ``str -> str`` whatever the client's ``decode_responses`` setting."""
    return {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in fields.items()}
