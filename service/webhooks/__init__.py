"""Marshall webhook integration: durable, signed, at-least-once notifications of classification changes.

How the pieces fit (operator's view in ``docs/webhooks.md``):

1. :func:`load_subscriptions` reads ``GOTO_WEBHOOKS``.
2. Before committing an update the service calls :func:`plan_events` (pure) with the object's stored
   :class:`NotifyState`; the commit script XADDs :func:`outbox_entries` and stores the new notify state
   in the same atomic step.
3. :class:`Dispatcher` (a process beside the workers of ``serve``, a task of the service, or
   ``goto-classifier dispatch``) delivers the outbox with signed POSTs, retries with backoff, and
   dead-letters what cannot be delivered.
4. Receivers check requests with :func:`verify_signature`.
"""

from service.webhooks.config import (
    DEFAULT_EVENTS,
    EVENT_CLASS_CHANGED,
    EVENT_THRESHOLD_CROSSED,
    EVENT_TYPES,
    EVENT_UPDATED,
    Subscription,
    WebhookConfigError,
    load_subscriptions,
)
from service.webhooks.deadletters import DeadLetter, list_dead_letters, replay_dead_letters
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.events import ClassificationUpdate, Event, NotifyState, plan_events
from service.webhooks.outbox import (
    CONSUMER_GROUP,
    LUA_XADD_OUTBOX,
    NOTIFY_STATE_FIELD,
    dead_letter_key,
    flatten_outbox_entries,
    outbox_entries,
    outbox_key,
    publish,
    retry_key,
)
from service.webhooks.schema import PAYLOAD_JSON_SCHEMA
from service.webhooks.signing import SignatureVerificationError, sign, verify_signature

__all__ = [
    "CONSUMER_GROUP",
    "DEFAULT_EVENTS",
    "EVENT_CLASS_CHANGED",
    "EVENT_THRESHOLD_CROSSED",
    "EVENT_TYPES",
    "EVENT_UPDATED",
    "LUA_XADD_OUTBOX",
    "NOTIFY_STATE_FIELD",
    "PAYLOAD_JSON_SCHEMA",
    "ClassificationUpdate",
    "DeadLetter",
    "Dispatcher",
    "Event",
    "NotifyState",
    "SignatureVerificationError",
    "Subscription",
    "WebhookConfigError",
    "dead_letter_key",
    "flatten_outbox_entries",
    "list_dead_letters",
    "load_subscriptions",
    "outbox_entries",
    "outbox_key",
    "plan_events",
    "publish",
    "replay_dead_letters",
    "retry_key",
    "sign",
    "verify_signature",
]
