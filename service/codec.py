"""Every record the service stores in Redis, encoded and decoded in one place, with its version.

Records (keys in :mod:`service.keys`):

Detection (a value of the ``dets`` hash, field = detection id)
    Version 2 (written now): the JSON array ``[2, <DETECTION_FIELDS in order>]``. A field added to the
    end of :data:`DETECTION_FIELDS` needs no new version: records written before it are shorter, and
    the reader gives the missing trailing fields their default (:data:`DETECTION_DEFAULTS`). Removing
    or reordering fields needs a new version (and its reader here).
    Version 1 (up to 5bd8ffd): the same array without the leading version, ``[mjd, mag, mag_err,
    filter, ra, dec, host_sep_arcsec, received_unix]`` (its first element, an MJD, is never 2).
    Version 0 (earlier): text, ``mjd|mag|mag_err|filter|ra|dec|host_sep|received_unix`` with ``repr``
    floats and empty strings for absent values.
    orjson writes the shortest float that reads back exactly, so values round-trip.

State (the ``state`` hash)
    Version 1: the fields of :data:`STATE_FIELDS` (what the Lua scripts compare has its own field; the
    rest is one JSON document, :func:`state_document`). Read with :func:`decode_state`.

History row (an element of the ``history`` list)
    Version 1: a JSON object, one per classification update. :func:`history_row_prefix` writes it
    without its closing brace; the commit script (``service/lua/commit.lua``) appends
    ``"n_detections"`` and ``"revision"``, which only it knows, and the brace. Readers take the object
    as it is (:func:`decode_history_row`); a key added later is simply absent from older rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson

from service.keys import StateField
from service.state import ContextRecord, ObjectState

__all__ = [
    "DETECTION_DEFAULTS",
    "DETECTION_FIELDS",
    "DETECTION_VERSION",
    "REQUEST_FIELDS",
    "STATE_FIELDS",
    "StoredDetection",
    "decode_detection",
    "decode_history_row",
    "decode_state",
    "detection_values",
    "encode_detection",
    "history_row_prefix",
    "state_document",
]

DETECTION_VERSION = 2

#: A stored detection's fields, in stored order (the detection id is the hash field, not stored here).
DETECTION_FIELDS: tuple[str, ...] = (
    "mjd", "mag", "mag_err", "filter", "ra", "dec", "host_sep_arcsec", "received_unix",
)
#: What a record written before a field existed reads as (see the module docstring).
DETECTION_DEFAULTS: dict[str, Any] = {"ra": None, "dec": None, "host_sep_arcsec": None}

#: The fields a detection request carries (all but the time it was received), read off it by name.
REQUEST_FIELDS = tuple(name for name in DETECTION_FIELDS if name != "received_unix")

_N_FIELDS = len(DETECTION_FIELDS)
_V2_PREFIX = b"[%d," % DETECTION_VERSION
_RECEIVED_AT = DETECTION_FIELDS.index("received_unix")
_FROM_REQUEST = attrgetter(*REQUEST_FIELDS)


@dataclass(frozen=True, slots=True)
class StoredDetection:
    """One detection as stored (its fields are :data:`DETECTION_FIELDS`, after the id)."""

    detection_id: str
    mjd: float
    mag: float
    mag_err: float
    filter: str
    ra: float | None
    dec: float | None
    host_sep_arcsec: float | None
    received_unix: float

    @property
    def has_position(self) -> bool:
        return self.ra is not None and self.dec is not None

    @property
    def order_key(self) -> tuple[float, str]:
        return (self.mjd, self.detection_id)


def encode_detection(*values: Any) -> bytes:
    """The stored record of a detection: ``values`` are :data:`DETECTION_FIELDS`, in that order.

    Examples
    --------
    >>> encode_detection(58605.5, 18.2, 0.05, "L", 288.5, -23.2, None, 1.5)
    b'[2,58605.5,18.2,0.05,"L",288.5,-23.2,null,1.5]'
    """
    if len(values) != _N_FIELDS:
        raise TypeError(f"a detection record has {_N_FIELDS} fields ({', '.join(DETECTION_FIELDS)})")
    return orjson.dumps([DETECTION_VERSION, *values])  # one orjson call: ~1 us


def detection_values(request: Any, received_unix: float) -> list[Any]:
    """:data:`DETECTION_FIELDS` of a detection request (``service.schemas.DetectionRequest``)."""
    values = list(_FROM_REQUEST(request))
    values.insert(_RECEIVED_AT, received_unix)
    return values


def decode_detection(detection_id: str, payload: bytes) -> StoredDetection:
    """A stored detection of any version (see the module docstring)."""
    if payload[:1] == b"[":
        values = orjson.loads(payload)
        if payload.startswith(_V2_PREFIX):
            values = values[1:]
        if len(values) < _N_FIELDS:  # written before the trailing fields existed
            values += [DETECTION_DEFAULTS[name] for name in DETECTION_FIELDS[len(values) :]]
        return StoredDetection(detection_id, *values[:_N_FIELDS])
    mjd, mag, err, flt, ra, dec, sep, received = payload.decode().split("|")  # version 0
    return StoredDetection(
        detection_id, float(mjd), float(mag), float(err), flt, _opt_float(ra), _opt_float(dec),
        _opt_float(sep), float(received),
    )


def _opt_float(raw: str) -> float | None:
    return float(raw) if raw else None


# --------------------------------------------------------------------------------------------- state

#: Fields of the state hash, in the order every script returns them (``HMGET``).
STATE_FIELDS: tuple[str, ...] = (
    StateField.MODEL_VERSION,
    StateField.IDS,
    StateField.N_USED,
    StateField.RNN,
    StateField.DOC,
    StateField.REVISION,
    StateField.NOTIFY,
)
_INDEX = {name: i for i, name in enumerate(STATE_FIELDS)}


def state_document(st: ObjectState) -> bytes:
    """The state hash's JSON document: the fields the scripts do not compare (``StateField.DOC``)."""
    return orjson.dumps(
        {
            "t_first": st.t_first,
            "last_mjd": st.last_mjd,
            "context": None if st.context is None else st.context.fragment,
            "probabilities": st.probabilities,
            "predicted_class": st.predicted_class,
            "detection_id": st.detection_id,
            "mjd": st.mjd,
            "updated_at": st.updated_at,
        }
    )


def _s(raw: bytes | None) -> str:
    return raw.decode() if raw is not None else ""


def decode_state(raw: list[bytes | None] | None) -> ObjectState | None:
    """The state hash (``HMGET`` of :data:`STATE_FIELDS`) as an :class:`ObjectState`; ``None`` if absent."""
    if not raw or raw[_INDEX[StateField.MODEL_VERSION]] is None:
        return None

    def get(name: str) -> bytes | None:
        return raw[_INDEX[name]]

    doc = orjson.loads(get(StateField.DOC) or b"{}")
    ctx = doc.get("context")
    ids = _s(get(StateField.IDS))
    return ObjectState(
        model_version=_s(get(StateField.MODEL_VERSION)),
        ids=tuple(ids.split("\n")) if ids else (),
        ids_text=ids,
        rnn=get(StateField.RNN) or b"",
        t_first=float(doc.get("t_first", "nan")),
        last_mjd=float(doc.get("last_mjd", "nan")),
        context=None if ctx is None else ContextRecord.from_json(ctx),
        probabilities=doc.get("probabilities", {}),
        predicted_class=doc.get("predicted_class", ""),
        detection_id=doc.get("detection_id", ""),
        mjd=float(doc.get("mjd", "nan")),
        updated_at=doc.get("updated_at", ""),
        revision=int(_s(get(StateField.REVISION)) or 0),
        notify=_s(get(StateField.NOTIFY)),
    )


# ------------------------------------------------------------------------------------------- history


def history_row_prefix(st: ObjectState, mode: str) -> bytes:
    """The history row of the update to ``st``, without its closing brace (the commit script finishes
    it with ``n_detections`` and ``revision``)."""
    return orjson.dumps(
        {
            "detection_id": st.detection_id,
            "mjd": st.mjd,
            "n_used": len(st.ids),
            "probabilities": st.probabilities,
            "predicted_class": st.predicted_class,
            "model_version": st.model_version,
            "mode": mode,
            "time": st.updated_at,
        }
    )[:-1]


def decode_history_row(raw: bytes) -> dict[str, Any]:
    """One history row, as the API returns it (``HistoryRow`` in ``service.schemas``)."""
    return orjson.loads(raw)  # type: ignore[no-any-return]
