"""Detection payloads stored in Redis round-trip exactly, and every earlier format is still read."""

from __future__ import annotations

from service.codec import StoredDetection, decode_detection, encode_detection


def test_payload_round_trips_exactly() -> None:
    values = (
        58605.179148000001, 18.213456789012345, 0.051, "L", 288.513394, -23.2105078, None, 1795622007.367508
    )
    got = decode_detection("d1", encode_detection(*values))
    assert got == StoredDetection("d1", *values)


def test_absent_position_round_trips_as_none() -> None:
    got = decode_detection("d2", encode_detection(58605.5, 18.0, 0.1, "g", None, None, 12.5, 0.0))
    assert (got.ra, got.dec, got.host_sep_arcsec, got.filter) == (None, None, 12.5, "g")
    assert not got.has_position


def test_earlier_text_payloads_are_still_read() -> None:
    legacy = b"58605.179148|18.21|0.05|L|288.513394|-23.2105078||1795622007.3675"
    got = decode_detection("d3", legacy)
    want = (58605.179148, 18.21, 0.05, "L", 288.513394, -23.2105078, None, 1795622007.3675)
    assert got == StoredDetection("d3", *want)


def test_records_carry_their_version_and_the_previous_array_format_is_still_read() -> None:
    values = (58605.179148, 18.21, 0.05, "L", 288.513394, -23.2105078, None, 1795622007.3675)
    assert encode_detection(*values).startswith(b"[2,")
    written_by_5bd8ffd = b'[58605.179148,18.21,0.05,"L",288.513394,-23.2105078,null,1795622007.3675]'
    assert decode_detection("d4", written_by_5bd8ffd) == StoredDetection("d4", *values)


def test_a_record_of_the_wrong_length_is_refused_when_written() -> None:
    import pytest

    with pytest.raises(TypeError, match="fields"):
        encode_detection(58605.5, 18.0, 0.1)


def test_a_record_shorter_than_the_field_list_gets_the_defaults_of_its_missing_trailing_fields(
    monkeypatch,
) -> None:
    # What a record written before a field was appended to DETECTION_FIELDS looks like to the reader:
    # here the last field (received_unix) stands in for the appended one, given a default.
    from service import codec

    monkeypatch.setitem(codec.DETECTION_DEFAULTS, "received_unix", 0.0)
    got = decode_detection("d5", b'[2,58605.5,18.0,0.1,"g",10.0,20.0,null]')
    assert got == StoredDetection("d5", 58605.5, 18.0, 0.1, "g", 10.0, 20.0, None, 0.0)
