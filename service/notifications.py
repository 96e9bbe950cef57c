"""Webhook events planned into the classification commit: the classifier's :class:`CommitExtension`.

For every classification update the classifier is about to commit, :class:`WebhookNotifier` turns the
previous and the new state into a :class:`~service.webhooks.ClassificationUpdate`, asks
:func:`~service.webhooks.plan_events` (pure) which events it causes under the configured subscriptions,
and hands back the outbox entries as extra arguments of the commit script. The script XADDs them after
every check has passed and the state is written (:data:`COMMIT_LUA`), in the same Lua call, so:

* an update that does not happen (a lost race, a replayed detection, an error) never emits an event:
  the commit answers ``conflict``/``duplicate`` before any write, and the detection is planned again
  from the state that won (the commit checks the stored revision and the detection count, so the
  notify state, previous class and ``n_detections`` planned from are exactly the stored ones);
* an update that happens always has its events in the outbox (no crash window between the two).

Everything in an event comes from the two states, never from a clock read here: ``time`` is the new
state's ``updated_at`` (when its probabilities were computed) and ``sequence`` is the object's revision
after the commit, so planning the same update twice gives byte-identical events with the same ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.state import ObjectState
from service.webhooks import (
    LUA_XADD_OUTBOX,
    ClassificationUpdate,
    NotifyState,
    Subscription,
    flatten_outbox_entries,
    outbox_entries,
    plan_events,
)

__all__ = ["COMMIT_LUA", "WebhookNotifier"]

log = logging.getLogger(__name__)

#: Lua for the commit hook: the extra arguments are exactly the flattened outbox entries.
COMMIT_LUA = "local outbox_at = extra_at\n" + LUA_XADD_OUTBOX


class WebhookNotifier:
    """Plans an update's webhook events and notify state (see module docstring)."""

    commit_lua = COMMIT_LUA

    def __init__(self, subscriptions: Sequence[Subscription]) -> None:
        self.subscriptions = tuple(subscriptions)

    def update(
        self, object_id: str, previous: ObjectState | None, new: ObjectState, n_detections: int
    ) -> ClassificationUpdate:
        """The update as the webhook package sees it."""
        previous_class = previous.predicted_class if previous is not None else ""
        return ClassificationUpdate(
            object_id=object_id,
            detection_id=new.detection_id,
            n_detections=n_detections,
            mjd=new.mjd,
            probabilities=new.probabilities,
            predicted_class=new.predicted_class,
            previous_predicted_class=previous_class or None,
            model_version=new.model_version,
            time=datetime.fromisoformat(new.updated_at),
            # the revision this commit writes: it grows by one with every update of the object
            sequence=(previous.revision if previous is not None else 0) + 1,
        )

    def plan(
        self, object_id: str, previous: ObjectState | None, new: ObjectState, n_detections: int
    ) -> tuple[Sequence[Any], Sequence[str], str]:
        """Extra commit arguments (flattened outbox entries), extra keys (none) and the notify JSON."""
        stored = NotifyState()
        if previous is not None and previous.notify:
            try:
                stored = NotifyState.from_json(previous.notify)
            except ValueError:
                # a corrupt notify field must not block classification: start armed again
                log.warning("object %s: unreadable notify state; every class re-armed", object_id)
        events, notify = plan_events(
            stored, self.update(object_id, previous, new, n_detections), self.subscriptions
        )
        # Stream keys travel in ARGV (they are in other hash slots; see docs/webhooks.md, Redis Cluster).
        return flatten_outbox_entries(outbox_entries(events)), (), notify.to_json()
