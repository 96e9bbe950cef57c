"""Retry policy: which outcomes retry, backoff with full jitter, Retry-After, limits."""

from __future__ import annotations

import httpx
import pytest

from service.webhooks.retry import (
    DeadReason,
    FailureReason,
    Outcome,
    backoff_delay,
    classify_exception,
    classify_response,
    decide,
    parse_retry_after,
)

NOW = 1_700_000_000.0
POLICY = {"max_attempts": 5, "max_age_s": 3600.0, "backoff_base_s": 1.0, "backoff_max_s": 60.0}


@pytest.mark.parametrize(
    ("status", "retryable", "reason"),
    [
        (500, True, FailureReason.HTTP_5XX), (503, True, FailureReason.HTTP_5XX),
        (408, True, FailureReason.HTTP_408), (429, True, FailureReason.HTTP_429),
        (400, False, FailureReason.HTTP_4XX), (401, False, FailureReason.HTTP_4XX),
        (404, False, FailureReason.HTTP_4XX), (301, False, FailureReason.HTTP_OTHER),
    ],
)
def test_status_classification(status: int, retryable: bool, reason: str) -> None:
    outcome = classify_response(status, httpx.Headers(), NOW)
    assert (outcome.delivered, outcome.retryable, outcome.reason) == (False, retryable, reason)


def test_2xx_is_delivered() -> None:
    assert classify_response(204, httpx.Headers(), NOW).delivered


def test_network_errors_are_retryable() -> None:
    assert classify_exception(httpx.ConnectError("refused")).reason == FailureReason.CONNECT
    assert classify_exception(httpx.ReadTimeout("slow")).reason == FailureReason.TIMEOUT
    assert classify_exception(httpx.RemoteProtocolError("eof")).reason == FailureReason.NETWORK
    assert all(classify_exception(e).retryable for e in (httpx.ConnectError("x"), RuntimeError("bug")))


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    # NOW is Tue, 14 Nov 2023 22:13:20 GMT
    assert parse_retry_after("Tue, 14 Nov 2023 22:46:40 GMT", NOW) == pytest.approx(2000.0)
    assert parse_retry_after("Tue, 14 Nov 2023 20:00:00 GMT", NOW) == 0.0  # in the past: retry now
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
    outcome = classify_response(429, httpx.Headers({"Retry-After": "7"}), NOW)
    assert outcome.retry_after_s == 7.0


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    ceilings = [backoff_delay(a, 1.0, 60.0, rng=lambda: 1.0) for a in (1, 2, 3, 7, 8, 50)]
    assert ceilings == [1, 2, 4, 60, 60, 60]
    assert backoff_delay(5, 1.0, 60.0, rng=lambda: 0.25) == 4.0
    assert backoff_delay(10_000, 1.0, 60.0, rng=lambda: 1.0) == 60.0  # no overflow


def test_decide() -> None:
    fail = Outcome(False, True, FailureReason.HTTP_5XX, 500)
    assert decide(Outcome(True, False), 1, NOW, NOW, **POLICY).action == "ack"
    retry = decide(fail, 2, NOW, NOW, rng=lambda: 0.5, **POLICY)
    assert (retry.action, retry.delay_s) == ("retry", 1.0)
    assert decide(Outcome(False, False, FailureReason.HTTP_4XX, 400), 1, NOW, NOW, **POLICY).reason \
        == DeadReason.REJECTED
    assert decide(fail, 5, NOW, NOW, **POLICY).reason == DeadReason.MAX_ATTEMPTS
    honoured = decide(Outcome(False, True, FailureReason.HTTP_429, 429, retry_after_s=30.0), 1, NOW, NOW,
                      rng=lambda: 0.0, **POLICY)
    assert (honoured.action, honoured.delay_s) == ("retry", 30.0)
    zero = decide(Outcome(False, True, FailureReason.HTTP_429, 429, retry_after_s=0.0), 3, NOW, NOW,
                  rng=lambda: 1.0, **POLICY)
    assert zero.delay_s == 4.0  # "Retry-After: 0" does not beat the backoff into a tight loop
    too_late = decide(Outcome(False, True, FailureReason.HTTP_429, 429, retry_after_s=4000.0), 1, NOW, NOW,
                      **POLICY)
    assert too_late.reason == DeadReason.MAX_AGE
