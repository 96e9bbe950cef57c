"""JSON Schema of the webhook payload (the body of every request); docs/webhooks.md shows the same."""

from __future__ import annotations

from typing import Any

from service.webhooks.config import EVENT_TYPES
from service.webhooks.events import PAYLOAD_SCHEMA_VERSION

__all__ = ["PAYLOAD_JSON_SCHEMA"]

_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
_IDENTIFIER = {"type": "string", "pattern": "^[A-Za-z0-9_.:+\\-]{1,64}$"}

PAYLOAD_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "goto-classifier webhook event",
    "type": "object",
    "required": ["id", "type", "schema_version", "subscription_id", "object_id", "detection_id", "sequence",
                 "n_detections", "mjd", "probabilities", "predicted_class", "previous_predicted_class",
                 "model_version", "time", "threshold"],
    "properties": {
        "id": {"type": "string", "format": "uuid",
               "description": "event id: the same on every retry; deduplicate on it"},
        "type": {"enum": list(EVENT_TYPES)},
        "schema_version": {"const": PAYLOAD_SCHEMA_VERSION},
        "subscription_id": _IDENTIFIER,
        "object_id": _IDENTIFIER,
        "detection_id": {**_IDENTIFIER, "description": "the detection whose arrival caused the update"},
        "sequence": {"type": "integer", "minimum": 0,
                     "description": "grows with every update of the object: order an object's events by it"},
        "n_detections": {"type": "integer", "minimum": 1},
        "mjd": {"type": "number", "description": "MJD of the detection"},
        "probabilities": {"type": "object", "additionalProperties": _PROBABILITY, "minProperties": 1},
        "predicted_class": {"type": "string"},
        "previous_predicted_class": {"type": ["string", "null"],
                                     "description": "null for the object's first classification"},
        "model_version": {"type": "string"},
        "time": {"type": "string", "format": "date-time", "description": "when the classification was made"},
        "threshold": {
            "description": "classification.threshold_crossed only (null otherwise)",
            "oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["class", "value", "rearm_below", "probability"],
                 "properties": {"class": {"type": "string"}, "value": _PROBABILITY,
                                "rearm_below": _PROBABILITY, "probability": _PROBABILITY}},
            ],
        },
    },
}
