"""Dead letters: events the dispatcher gave up on, kept with the reason until an operator replays them.

A dead-letter entry holds every outbox field of the event (body included, so a replay sends the same
event id and bytes) plus :class:`DeadField` fields. Replaying moves the entry back into the outbox with
a fresh attempt count and age, atomically (both keys share the subscription's hash tag).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service.webhooks.outbox import EntryField, dead_letter_key, decode_fields, outbox_key

__all__ = ["DeadField", "DeadLetter", "list_dead_letters", "replay_dead_letters"]


class DeadField:
    REASON = "reason"
    DEAD_AT = "dead_at"


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered event, as listed by ``goto-classifier webhooks dead-letters``."""

    entry_id: str
    subscription_id: str
    event_id: str
    type: str
    object_id: str
    reason: str
    attempts: int
    last_status: str
    last_error: str
    dead_at: float
    created: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Copies a dead entry back into the outbox minus the dead-letter fields, with attempt 0 and a new
# creation time (so max_age_s does not expire it at once), then deletes the dead entry.
_REPLAY_LUA = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local flat = found[1][2]
local args = {}
for i = 1, #flat, 2 do
  local name, value = flat[i], flat[i + 1]
  if name == ARGV[3] then value = '0' end
  if name == ARGV[4] then value = ARGV[2] end
  if name == ARGV[5] or name == ARGV[6] then value = '' end
  if name ~= ARGV[7] and name ~= ARGV[8] then
    args[#args + 1] = name
    args[#args + 1] = value
  end
end
redis.call('XADD', KEYS[2], '*', unpack(args))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _dead_letter(subscription_id: str, entry_id: Any, raw: Any) -> DeadLetter:
    f = decode_fields(raw)
    return DeadLetter(
        entry_id=_as_str(entry_id),
        subscription_id=f.get(EntryField.SUBSCRIPTION, subscription_id),
        event_id=f.get(EntryField.EVENT_ID, ""),
        type=f.get(EntryField.TYPE, ""),
        object_id=f.get(EntryField.OBJECT_ID, ""),
        reason=f.get(DeadField.REASON, ""),
        attempts=int(f.get(EntryField.ATTEMPT, "0") or 0),
        last_status=f.get(EntryField.LAST_STATUS, ""),
        last_error=f.get(EntryField.LAST_ERROR, ""),
        dead_at=float(f.get(DeadField.DEAD_AT, "0") or 0),
        created=float(f.get(EntryField.CREATED, "0") or 0),
    )


async def list_dead_letters(redis: Any, subscription_id: str, count: int | None = None) -> list[DeadLetter]:
    """Dead letters of one subscription, oldest first (at most ``count``)."""
    rows = await redis.xrange(dead_letter_key(subscription_id), count=count)
    return [_dead_letter(subscription_id, entry_id, fields) for entry_id, fields in rows]


async def replay_dead_letters(redis: Any, subscription_id: str, ids: Iterable[str] | None = None,
                              now: float | None = None) -> int:
    """Move dead letters back to the outbox; ``ids`` are entry ids or event ids (``None``: all).

    Returns how many were moved. The dispatcher delivers them like new events, with their original
    event ids, so a receiver that already processed one (before a failed acknowledgement) ignores it.
    """
    wanted = set(ids) if ids is not None else None
    script = redis.register_script(_REPLAY_LUA)
    moved = 0
    stamp = repr(time.time() if now is None else now)
    for letter in await list_dead_letters(redis, subscription_id):
        if wanted is not None and letter.entry_id not in wanted and letter.event_id not in wanted:
            continue
        moved += int(await script(
            keys=[dead_letter_key(subscription_id), outbox_key(subscription_id)],
            args=[letter.entry_id, stamp, EntryField.ATTEMPT, EntryField.CREATED, EntryField.LAST_ERROR,
                  EntryField.LAST_STATUS, DeadField.REASON, DeadField.DEAD_AT],
        ))
    return moved
