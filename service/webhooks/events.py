"""Which webhook events one classification update causes (pure: no Redis, no HTTP, no clock).

The service calls :func:`plan_events` with the object's stored :class:`NotifyState` before it commits
the update, then writes the state update, the returned events (see ``outbox.outbox_entries``) and the
returned notify state in one atomic step. Because planning is a pure function of its inputs, a commit
that is retried (an optimistic-concurrency conflict) re-plans from the fresh state and produces the same
event ids for the same update, so nothing can be sent twice under two different ids.

Threshold events use hysteresis per subscription and class: a class fires when its probability reaches
its threshold (default 0.7, paper Table 3), then stays disarmed until the probability falls below its
rearm threshold (default threshold - 0.1). An object hovering around 0.7 therefore notifies once.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lightcurve.types import check_identifier
from service.webhooks.config import (
    EVENT_CLASS_CHANGED,
    EVENT_THRESHOLD_CROSSED,
    EVENT_UPDATED,
    Subscription,
)

__all__ = [
    "PAYLOAD_SCHEMA_VERSION",
    "ClassificationUpdate",
    "Event",
    "NotifyState",
    "event_id",
    "plan_events",
]

#: Bumped when a payload field changes meaning or disappears (adding a field does not bump it).
PAYLOAD_SCHEMA_VERSION = 1
# Fixed namespace so event ids are the same on every host and every release.
_EVENT_ID_NAMESPACE = uuid.UUID("5f0d1b6e-3c1a-4d0e-9a57-6f1e8b2c9d41")


@dataclass(frozen=True)
class ClassificationUpdate:
    """One committed-to-be classification of an object, as the service computed it.

    ``sequence`` orders an object's updates for receivers; it defaults to ``n_detections``, which grows
    by one with every stored detection of the object. ``time`` is when the classification was computed,
    as unix seconds or an aware ``datetime``.
    """

    object_id: str
    detection_id: str
    n_detections: int
    mjd: float
    probabilities: Mapping[str, float]
    predicted_class: str
    previous_predicted_class: str | None
    model_version: str
    time: float | datetime
    sequence: int | None = None

    def __post_init__(self) -> None:
        for name in ("object_id", "detection_id"):
            try:
                check_identifier(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if isinstance(self.n_detections, bool) or not isinstance(self.n_detections, int) \
                or self.n_detections < 1:
            raise ValueError("n_detections: must be an integer >= 1")
        if not self.probabilities:
            raise ValueError("probabilities: must not be empty")
        for cls_name, p in self.probabilities.items():
            if not (isinstance(p, int | float) and math.isfinite(p) and 0.0 <= p <= 1.0):
                raise ValueError(f"probabilities.{cls_name}: must be a finite number in [0, 1], got {p!r}")
        if self.predicted_class not in self.probabilities:
            raise ValueError(f"predicted_class: {self.predicted_class!r} is not a class of the probabilities")
        if not math.isfinite(self.mjd):
            raise ValueError("mjd: must be finite")
        if self.sequence is not None and self.sequence < 0:
            raise ValueError("sequence: must be >= 0")

    @property
    def order(self) -> int:
        return self.n_detections if self.sequence is None else self.sequence

    @property
    def unix_time(self) -> float:
        if isinstance(self.time, datetime):
            if self.time.tzinfo is None:
                raise ValueError("time: a datetime must be timezone-aware")
            return self.time.timestamp()
        return float(self.time)


@dataclass(frozen=True)
class NotifyState:
    """Per-object notification memory: which (subscription, class) pairs have fired and not re-armed.

    Stored as JSON in the object's state hash. Only disarmed pairs are kept (armed is the default), so
    an object that never crossed a threshold stores ``{}``.
    """

    disarmed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def is_armed(self, subscription_id: str, cls_name: str) -> bool:
        return cls_name not in self.disarmed.get(subscription_id, frozenset())

    def to_json(self) -> str:
        return json.dumps({"disarmed": {s: sorted(c) for s, c in sorted(self.disarmed.items()) if c}},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> NotifyState:
        """Parse a stored state; ``None`` or empty means a new object (everything armed)."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            table = data.get("disarmed", {})
            return cls({str(s): frozenset(str(c) for c in classes) for s, classes in table.items()})
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"notify state: not a stored NotifyState JSON object: {raw!r:.80}") from exc


@dataclass(frozen=True)
class Event:
    """One notification for one subscription; ``body`` is the exact JSON sent (and signed) every time."""

    id: str
    type: str
    subscription_id: str
    object_id: str
    sequence: int
    created: float
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def event_id(subscription_id: str, update: ClassificationUpdate, event_type: str,
             cls_name: str | None = None) -> str:
    """Deterministic UUID for (subscription, object, n_detections, detection, model version, type, class).

    The same update planned twice (a retried commit) gets the same id. A re-classification of the same
    detection by another model version is a different event. (The same detection re-sent after its
    object was deleted from Redis gets the same id again, and receivers will treat it as a duplicate.)
    """
    key = json.dumps([subscription_id, update.object_id, update.n_detections, update.detection_id,
                      update.model_version, event_type, cls_name])
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, key))


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(sub: Subscription, update: ClassificationUpdate, event_type: str,
           threshold: dict[str, Any] | None = None) -> Event:
    eid = event_id(sub.sid, update, event_type, threshold["class"] if threshold else None)
    created = update.unix_time
    payload = {
        "id": eid,
        "type": event_type,
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "subscription_id": sub.sid,
        "object_id": update.object_id,
        "detection_id": update.detection_id,
        "sequence": update.order,
        "n_detections": update.n_detections,
        "mjd": update.mjd,
        "probabilities": {c: float(p) for c, p in update.probabilities.items()},
        "predicted_class": update.predicted_class,
        "previous_predicted_class": update.previous_predicted_class,
        "model_version": update.model_version,
        "time": _iso(created),
        "threshold": threshold,
    }
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Event(eid, event_type, sub.sid, update.object_id, update.order, created, body)


def plan_events(previous: NotifyState | None, update: ClassificationUpdate,
                subscriptions: Iterable[Subscription]) -> tuple[list[Event], NotifyState]:
    """Events this update causes and the object's notify state after it.

    Parameters
    ----------
    previous
        The object's stored notify state, or ``None`` for an object seen for the first time.
    update
        The classification about to be committed.
    subscriptions
        The configured subscriptions; each gets its own events (and its own event ids).

    Returns
    -------
    (events, state)
        Events in the order they should be written (per subscription: updated, class_changed, then
        threshold_crossed in the probabilities' class order) and the state to store with the update.

    Examples
    --------
    >>> from service.webhooks.config import Subscription
    >>> sub = Subscription(id="marshall", url="https://marshall.example/hook", secret="s3cret")
    >>> up = ClassificationUpdate("GOTO_X", "d1", 3, 59000.5, {"VS": 0.1, "SN": 0.75, "AGN": 0.15},
    ...                           "SN", "VS", "gru-focal-1", 1.7e9)
    >>> events, state = plan_events(None, up, [sub])
    >>> [e.type for e in events]
    ['classification.class_changed', 'classification.threshold_crossed']
    >>> state.is_armed("marshall", "SN")
    False
    """
    state = previous if previous is not None else NotifyState()
    events: list[Event] = []
    disarmed_after: dict[str, frozenset[str]] = {}
    for sub in subscriptions:
        if sub.wants(EVENT_UPDATED):
            events.append(_event(sub, update, EVENT_UPDATED))
        changed = update.previous_predicted_class is not None \
            and update.previous_predicted_class != update.predicted_class
        if changed and sub.wants(EVENT_CLASS_CHANGED):
            events.append(_event(sub, update, EVENT_CLASS_CHANGED))
        if not sub.wants(EVENT_THRESHOLD_CROSSED):
            continue  # state for subscriptions that no longer want threshold events is dropped
        disarmed = set(state.disarmed.get(sub.sid, frozenset())) & set(update.probabilities)
        for cls_name, p in update.probabilities.items():
            threshold, rearm = sub.threshold_for(cls_name), sub.rearm_threshold_for(cls_name)
            if cls_name in disarmed:
                if p < rearm:
                    disarmed.discard(cls_name)
            elif p >= threshold:
                disarmed.add(cls_name)
                events.append(_event(sub, update, EVENT_THRESHOLD_CROSSED, {
                    "class": cls_name, "value": threshold, "rearm_below": rearm, "probability": float(p),
                }))
        if disarmed:
            disarmed_after[sub.sid] = frozenset(disarmed)
    return events, NotifyState(disarmed_after)
