"""Request signatures: the documented scheme, and every way verification must fail."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from service.webhooks.signing import (
    SIGNATURE_HEADER,
    SignatureVerificationError,
    compute_signature,
    sign,
    verify_signature,
)

BODY = b'{"id":"e1","type":"classification.class_changed"}'
NOW = 1_700_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature("s3cret", NOW, BODY) == expected
    assert sign("s3cret", BODY, NOW) == f"t={NOW},v1={expected}"


def test_valid_signature_verifies_with_any_header_case() -> None:
    header = sign("s3cret", BODY, NOW)
    assert verify_signature("s3cret", {SIGNATURE_HEADER: header}, BODY, 300, now=NOW + 10) == NOW
    assert verify_signature("s3cret", {"x-goto-signature": header}, BODY.decode(), 300, now=NOW) == NOW


def test_rotation_accepts_any_listed_secret() -> None:
    header = {SIGNATURE_HEADER: sign("new-secret", BODY, NOW)}
    assert verify_signature(["old-secret", "new-secret"], header, BODY, 300, now=NOW) == NOW
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_signature(["old-secret"], header, BODY, 300, now=NOW)


@pytest.mark.parametrize(
    ("headers", "body", "now", "reason"),
    [
        ({}, BODY, NOW, "missing X-Goto-Signature"),
        ({SIGNATURE_HEADER: "garbage"}, BODY, NOW, "malformed"),
        ({SIGNATURE_HEADER: "t=abc,v1=00"}, BODY, NOW, "malformed timestamp"),
        ({SIGNATURE_HEADER: f"v1={compute_signature('s3cret', NOW, BODY)}"}, BODY, NOW, "no t="),
        ({SIGNATURE_HEADER: f"t={NOW}"}, BODY, NOW, "no v1="),
        ({SIGNATURE_HEADER: sign("s3cret", BODY, NOW)}, BODY + b" ", NOW, "does not match"),
        ({SIGNATURE_HEADER: sign("wrong", BODY, NOW)}, BODY, NOW, "does not match"),
        ({SIGNATURE_HEADER: sign("s3cret", BODY, NOW)}, BODY, NOW + 301, "outside the 300 s tolerance"),
        ({SIGNATURE_HEADER: sign("s3cret", BODY, NOW)}, BODY, NOW - 301, "outside the 300 s tolerance"),
        ({SIGNATURE_HEADER: f"t={NOW},v1=é"}, BODY, NOW, "does not match"),
    ],
)
def test_rejections_say_why(headers: dict, body: bytes, now: int, reason: str) -> None:
    with pytest.raises(SignatureVerificationError, match=reason):
        verify_signature("s3cret", headers, body, 300, now=now)


def test_replayed_signature_with_new_timestamp_fails() -> None:
    # An attacker who captured a request cannot refresh its timestamp without the secret.
    old = sign("s3cret", BODY, NOW)
    forged = old.replace(f"t={NOW}", f"t={NOW + 1000}")
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_signature("s3cret", {SIGNATURE_HEADER: forged}, BODY, 300, now=NOW + 1000)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(SignatureVerificationError, match="no secret"):
        verify_signature("", {SIGNATURE_HEADER: sign("x", BODY, NOW)}, BODY, 300, now=NOW)
