"""An object's classification state as the service holds it (stored and read by ``service.codec``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from service.keys import ObjectKeys

__all__ = ["ContextRecord", "ObjectState", "parse_state"]


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """The context features' source detection, its position, and the raw (unnormalised) features.

    ``host_sep_arcsec`` is ``None`` when there is no catalogue and the request gave none (the model
    then sees the metadata's dummy distance, like a non-match).
    """

    detection_id: str
    ra: float
    dec: float
    gal_l_deg: float
    gal_b_deg: float
    host_sep_arcsec: float | None
    #: ``to_json()`` serialised once: every commit of the object's state document embeds it.
    fragment: orjson.Fragment = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fragment", orjson.Fragment(orjson.dumps(self.to_json())))

    def to_json(self) -> dict[str, Any]:
        return {
            "detection_id": self.detection_id,
            "ra": self.ra,
            "dec": self.dec,
            "gal_l_deg": self.gal_l_deg,
            "gal_b_deg": self.gal_b_deg,
            "host_sep_arcsec": self.host_sep_arcsec,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ContextRecord:
        return cls(
            doc["detection_id"],
            doc["ra"],
            doc["dec"],
            doc["gal_l_deg"],
            doc["gal_b_deg"],
            doc["host_sep_arcsec"],
        )


@dataclass(slots=True)
class ObjectState:
    """A committed classification and the incremental-inference state it came from."""

    model_version: str
    ids: tuple[str, ...]
    #: ``ids`` newline-joined, as stored (a step appends to it instead of joining up to 30 ids again).
    ids_text: str
    #: Raw RNN states, float32 bytes (layer 1 then layer 2; LSTM: h and c per layer), as stored.
    rnn: bytes
    t_first: float
    last_mjd: float
    context: ContextRecord | None
    probabilities: dict[str, float]
    predicted_class: str
    detection_id: str
    mjd: float
    updated_at: str
    revision: int = 0
    #: Webhook notification state (opaque to the classifier; see ``service.webhooks``).
    notify: str = ""
    #: Normalised context input (float32 bytes), computed once per state and reused by every step.
    context_vector: bytes | None = field(default=None, repr=False)
    #: The object's Redis keys, built once and handed on from state to state.
    keys: ObjectKeys | None = field(default=None, repr=False)

    @property
    def n_used(self) -> int:
        return len(self.ids)

    def result(
        self, object_id: str, detection_id: str, n_detections: int, status: str, mode: str
    ) -> dict[str, Any]:
        """The API's classification result for this state (``Classification`` in service.schemas)."""
        return {
            "object_id": object_id,
            "detection_id": detection_id,
            "status": status,
            "mode": mode,
            "n_detections": n_detections,
            "n_used": len(self.ids),
            "probabilities": self.probabilities,
            "predicted_class": self.predicted_class,
            "model_version": self.model_version,
            "revision": self.revision,
            "updated_at": self.updated_at,
        }


def parse_state(raw: list[bytes | None] | None) -> ObjectState | None:
    """The state hash as an :class:`ObjectState` (``service.codec.decode_state``; this name is kept for
    callers written before the codec)."""
    from service.codec import decode_state  # here: service.codec imports this module

    return decode_state(raw)
