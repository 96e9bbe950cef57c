"""Delivery retry policy (pure): what an attempt's outcome means and when to try again.

Retried: network errors, timeouts, 5xx, 408 and 429 (``Retry-After`` honoured, seconds or HTTP date).
Not retried: any other non-2xx (400, 401, 404, 410, ...: the receiver says the request itself is wrong,
so repeating it would only add load) and redirects (the configured URL is wrong). Backoff is exponential
with full jitter (``uniform(0, min(cap, base * 2**(attempt-1)))``), which spreads the retries of many
events after an outage instead of sending them in synchronised waves.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = [
    "DeadReason",
    "Decision",
    "FailureReason",
    "Outcome",
    "backoff_delay",
    "classify_exception",
    "classify_response",
    "decide",
    "parse_retry_after",
]


class FailureReason:
    """Bounded set of failure labels (used as a metrics label, so never free text)."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    NETWORK = "network"
    HTTP_408 = "http_408"
    HTTP_429 = "http_429"
    HTTP_5XX = "http_5xx"
    HTTP_4XX = "http_4xx"
    HTTP_OTHER = "http_other"
    ERROR = "error"


class DeadReason:
    REJECTED = "rejected"
    MAX_ATTEMPTS = "max_attempts"
    MAX_AGE = "max_age"


@dataclass(frozen=True)
class Outcome:
    """Result of one delivery attempt."""

    delivered: bool
    retryable: bool
    reason: str = ""
    status: int | None = None
    retry_after_s: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Decision:
    """What to do with an event after an attempt: ``ack``, ``retry`` after ``delay_s``, or ``dead``."""

    action: str
    delay_s: float = 0.0
    reason: str = ""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date); ``None`` if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify_response(status: int, headers: Mapping[str, str], now: float) -> Outcome:
    """Outcome of an HTTP response."""
    if 200 <= status < 300:
        return Outcome(delivered=True, retryable=False, status=status)
    retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"), now)
    if status == 429:
        return Outcome(False, True, FailureReason.HTTP_429, status, retry_after, "429 Too Many Requests")
    if status == 408:
        return Outcome(False, True, FailureReason.HTTP_408, status, retry_after, "408 Request Timeout")
    if status >= 500:
        return Outcome(False, True, FailureReason.HTTP_5XX, status, retry_after, f"HTTP {status}")
    if 400 <= status < 500:
        return Outcome(False, False, FailureReason.HTTP_4XX, status, None, f"HTTP {status}")
    return Outcome(False, False, FailureReason.HTTP_OTHER, status, None,
                   f"HTTP {status} (redirects are not followed)")


def classify_exception(exc: BaseException) -> Outcome:
    """Outcome of an attempt that raised (network trouble is retryable; so is anything unexpected)."""
    import httpx  # deferred: the policy itself is pure

    text = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, httpx.TimeoutException):
        return Outcome(False, True, FailureReason.TIMEOUT, error=text)
    if isinstance(exc, httpx.ConnectError):
        return Outcome(False, True, FailureReason.CONNECT, error=text)
    if isinstance(exc, httpx.TransportError):
        return Outcome(False, True, FailureReason.NETWORK, error=text)
    return Outcome(False, True, FailureReason.ERROR, error=text)


def backoff_delay(attempt: int, base_s: float, cap_s: float,
                  rng: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff before attempt ``attempt + 1`` (``attempt`` >= 1 made so far)."""
    exponent = min(attempt - 1, 62)  # 2**62 * base overflows nothing and is far above any cap
    ceiling = min(cap_s, base_s * math.pow(2.0, exponent))
    return ceiling * rng()


def decide(outcome: Outcome, attempts_made: int, created: float, now: float, *, max_attempts: int,
           max_age_s: float, backoff_base_s: float, backoff_max_s: float,
           rng: Callable[[], float] = random.random) -> Decision:
    """Next step for an event after its ``attempts_made``-th attempt ended with ``outcome``."""
    if outcome.delivered:
        return Decision("ack")
    if not outcome.retryable:
        return Decision("dead", reason=DeadReason.REJECTED)
    if attempts_made >= max_attempts:
        return Decision("dead", reason=DeadReason.MAX_ATTEMPTS)
    delay = backoff_delay(attempts_made, backoff_base_s, backoff_max_s, rng)
    if outcome.retry_after_s is not None:
        # Never earlier than the receiver asked; the backoff still applies if it is longer, so a
        # receiver answering "Retry-After: 0" to everything cannot cause a tight retry loop.
        delay = max(delay, outcome.retry_after_s)
    if now + delay - created > max_age_s:
        return Decision("dead", reason=DeadReason.MAX_AGE)
    return Decision("retry", delay_s=delay)
