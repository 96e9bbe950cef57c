"""Detection payloads stored in Redis round-trip exactly, and the earlier text format is still read."""

from __future__ import annotations

from service.store import StoredDetection, decode_payload, encode_payload


def test_payload_round_trips_exactly() -> None:
    values = (
        58605.179148000001, 18.213456789012345, 0.051, "L", 288.513394, -23.2105078, None, 1795622007.367508
    )
    got = decode_payload("d1", encode_payload(*values))
    assert got == StoredDetection("d1", *values)


def test_absent_position_round_trips_as_none() -> None:
    got = decode_payload("d2", encode_payload(58605.5, 18.0, 0.1, "g", None, None, 12.5, 0.0))
    assert (got.ra, got.dec, got.host_sep_arcsec, got.filter) == (None, None, 12.5, "g")
    assert not got.has_position


def test_earlier_text_payloads_are_still_read() -> None:
    legacy = b"58605.179148|18.21|0.05|L|288.513394|-23.2105078||1795622007.3675"
    got = decode_payload("d3", legacy)
    want = (58605.179148, 18.21, 0.05, "L", 288.513394, -23.2105078, None, 1795622007.3675)
    assert got == StoredDetection("d3", *want)
