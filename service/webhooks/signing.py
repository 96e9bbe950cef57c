"""Webhook request signatures: ``X-Goto-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``"<t>.<raw body>"`` so a captured request cannot be replayed later with a new timestamp,
and the receiver rejects timestamps outside a tolerance window. This module uses only the standard
library: a receiver (the GOTO Marshall) may copy it instead of installing the service.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

__all__ = [
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "SignatureVerificationError",
    "compute_signature",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Goto-Signature"
EVENT_ID_HEADER = "X-Goto-Event-Id"
EVENT_TYPE_HEADER = "X-Goto-Event-Type"
DEFAULT_TOLERANCE_S = 300.0


class SignatureVerificationError(ValueError):
    """The request is not a genuine, fresh webhook from this service; the message says why."""


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def compute_signature(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(int(timestamp)).encode() + b"." + _as_bytes(body)
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: str | bytes, timestamp: int | None = None) -> str:
    """The ``X-Goto-Signature`` header value for ``body`` (timestamp defaults to now)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={compute_signature(secret, t, body)}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # Plain dicts are case-sensitive; HTTP header names are not.
    wanted = name.lower()
    for key, val in headers.items():
        if key.lower() == wanted:
            return val
    return None


def verify_signature(secret: str | bytes | Iterable[str | bytes], headers: Mapping[str, str],
                     body: str | bytes, tolerance_s: float = DEFAULT_TOLERANCE_S,
                     now: float | None = None) -> int:
    """Check a webhook request's signature and freshness; return its signed unix timestamp.

    Parameters
    ----------
    secret
        The subscription's secret, or several (while rotating secrets, any one may match).
    headers
        The request headers (any mapping; names matched case-insensitively).
    body
        The raw request body exactly as received (not re-serialised JSON).
    tolerance_s
        Largest accepted distance between the signed timestamp and ``now``, either way.

    Raises
    ------
    SignatureVerificationError
        Header missing or malformed, timestamp outside the tolerance, or no signature matches.
    """
    raw = _header(headers, SIGNATURE_HEADER)
    if not raw:
        raise SignatureVerificationError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureVerificationError(f"malformed {SIGNATURE_HEADER} header: {raw!r:.120}")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureVerificationError(f"malformed timestamp in {SIGNATURE_HEADER}") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise SignatureVerificationError(f"{SIGNATURE_HEADER} has no t= timestamp")
    if not candidates:
        raise SignatureVerificationError(f"{SIGNATURE_HEADER} has no v1= signature")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureVerificationError(
            f"timestamp {timestamp} is {current - timestamp:+.0f} s from now, outside the {tolerance_s:g} s "
            "tolerance (replayed request or unsynchronised clock)"
        )
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not secrets or not all(secrets):
        raise SignatureVerificationError("no secret configured to verify against")
    expected = [compute_signature(s, timestamp, body) for s in secrets]
    # Compare every pair (no early exit) in constant time so timing reveals nothing about the MAC.
    matched = False
    for want in expected:
        for got in candidates:
            matched |= hmac.compare_digest(want.encode(), got.encode("utf-8", "replace"))
    if not matched:
        raise SignatureVerificationError("signature does not match (wrong secret or modified body)")
    return timestamp
