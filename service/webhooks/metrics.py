"""Prometheus metrics for webhook delivery, and the hook object the dispatcher reports through.

The metrics are module-level, prometheus-client style: they register once on the default registry when
this module is first imported (nothing else happens at import), so the service's ``/metrics`` shows them
without wiring, and multiprocess mode works (gauges declare how worker values combine; the outbox
gauges are ``livemax``, so a dead dispatcher's last values stop counting once its files are marked
dead: ``service.webhooks.process``). The dispatcher talks to a :class:`DeliveryMetrics` object, so a
test or another exporter can pass its own.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DEAD_LETTERS",
    "DELIVERY_ATTEMPTS",
    "DELIVERY_DURATION",
    "DELIVERY_FAILURES",
    "DELIVERY_SUCCESSES",
    "OUTBOX_BACKLOG",
    "OUTBOX_LAG",
    "DeliveryMetrics",
    "NullMetrics",
    "PrometheusMetrics",
]

DELIVERY_ATTEMPTS = Counter(
    "goto_webhook_delivery_attempts", "Webhook HTTP delivery attempts", ["subscription"]
)
DELIVERY_SUCCESSES = Counter(
    "goto_webhook_delivery_successes", "Webhook events delivered (2xx)", ["subscription"]
)
DELIVERY_FAILURES = Counter(
    "goto_webhook_delivery_failures", "Failed webhook attempts by reason", ["subscription", "reason"]
)
DEAD_LETTERS = Counter(
    "goto_webhook_dead_letters", "Webhook events moved to the dead-letter stream", ["subscription", "reason"]
)
DELIVERY_DURATION = Histogram(
    "goto_webhook_delivery_duration_seconds", "Duration of webhook HTTP attempts", ["subscription"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
OUTBOX_LAG = Gauge(
    "goto_webhook_outbox_lag_seconds", "Age of the oldest event waiting in the outbox stream (0: empty)",
    ["subscription"], multiprocess_mode="livemax",
)
OUTBOX_BACKLOG = Gauge(
    "goto_webhook_outbox_backlog", "Events not yet delivered: ready/in flight (stream) and retrying",
    ["subscription", "state"], multiprocess_mode="livemax",
)


class DeliveryMetrics(Protocol):
    """What the dispatcher reports; implement it to export elsewhere."""

    def attempt(self, subscription: str, seconds: float) -> None: ...
    def success(self, subscription: str) -> None: ...
    def failure(self, subscription: str, reason: str) -> None: ...
    def dead_letter(self, subscription: str, reason: str) -> None: ...
    def outbox(self, subscription: str, lag_s: float, ready: int, retrying: int) -> None: ...


class PrometheusMetrics:
    """Reports to the module-level Prometheus metrics above."""

    def attempt(self, subscription: str, seconds: float) -> None:
        DELIVERY_ATTEMPTS.labels(subscription).inc()
        DELIVERY_DURATION.labels(subscription).observe(seconds)

    def success(self, subscription: str) -> None:
        DELIVERY_SUCCESSES.labels(subscription).inc()

    def failure(self, subscription: str, reason: str) -> None:
        DELIVERY_FAILURES.labels(subscription, reason).inc()

    def dead_letter(self, subscription: str, reason: str) -> None:
        DEAD_LETTERS.labels(subscription, reason).inc()

    def outbox(self, subscription: str, lag_s: float, ready: int, retrying: int) -> None:
        OUTBOX_LAG.labels(subscription).set(lag_s)
        OUTBOX_BACKLOG.labels(subscription, "ready").set(ready)
        OUTBOX_BACKLOG.labels(subscription, "retrying").set(retrying)


class NullMetrics:
    """Reports nothing."""

    def attempt(self, subscription: str, seconds: float) -> None:
        pass

    def success(self, subscription: str) -> None:
        pass

    def failure(self, subscription: str, reason: str) -> None:
        pass

    def dead_letter(self, subscription: str, reason: str) -> None:
        pass

    def outbox(self, subscription: str, lag_s: float, ready: int, retrying: int) -> None:
        pass
