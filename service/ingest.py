"""The use case every front-end calls: turn raw detections into classification outcomes.

``parse_detection`` / ``parse_batch`` read the JSON a client sent (the body of ``POST /classify``, the
``detection`` field of a stream entry) into :class:`~service.schemas.DetectionRequest`, or raise
:class:`InvalidDetection` whose ``errors`` name each bad field (``loc``, ``msg``, ``type``: the shape
of FastAPI's 422 detail). ``classify_one`` / ``classify_batch`` classify them through whatever
classifies (the worker's :class:`~service.classifier.Classifier`, or the HTTP workers' object router)
and count every outcome in ``goto_detections_total``; ``count_outcome`` counts refusals.

Nothing here knows about HTTP or streams: a refusal is an exception
(:class:`InvalidDetection`, :class:`~service.classifier.MissingPosition`,
:class:`~service.classifier.CommitContention`, :class:`~service.store.StoreUnavailable`), and each
front-end says it its own way (a 422 or 503; a dead-letter entry, or leaving the entry pending).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from service.logs import note
from service.metrics import DETECTION_OUTCOMES, DETECTIONS
from service.schemas import DetectionRequest

__all__ = [
    "Classifies",
    "InvalidDetection",
    "classify_batch",
    "classify_one",
    "count_outcome",
    "parse_detection",
]

#: Labelled children of ``goto_detections_total``, resolved once (this is the hot path).
_OUTCOME = {outcome: DETECTIONS.labels(outcome) for outcome in DETECTION_OUTCOMES}

_DETECTION = TypeAdapter(DetectionRequest)


class Classifies(Protocol):
    """What classifies detections: results in order, one per detection (``Classification`` dicts)."""

    async def classify(self, det: DetectionRequest) -> dict[str, Any]: ...

    async def classify_many(self, dets: Sequence[DetectionRequest]) -> list[dict[str, Any]]: ...


class InvalidDetection(ValueError):
    """A detection that does not validate; ``errors`` name the fields (nothing was stored)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


def parse_detection(raw: bytes | str) -> DetectionRequest:
    """One detection from its JSON (the body of ``POST /classify``); :class:`InvalidDetection` if bad."""
    try:
        return _DETECTION.validate_json(raw)
    except ValidationError as exc:
        raise InvalidDetection(
            [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from None


def count_outcome(outcome: str, n: int = 1) -> None:
    """Count ``n`` detections under ``outcome`` (``rejected``: invalid; ``unavailable``: Redis down)."""
    _OUTCOME[outcome].inc(n)


def _count(results: list[dict[str, Any]]) -> None:
    if len(results) == 1:
        _OUTCOME[results[0]["status"]].inc()
        return
    for status, n in Counter(r["status"] for r in results).items():
        _OUTCOME[status].inc(n)


async def classify_one(classifier: Classifies, detection: DetectionRequest) -> dict[str, Any]:
    """Store one detection and return its object's classification after it."""
    note(object_id=detection.object_id, n_detections=1)
    result = await classifier.classify(detection)
    _count([result])
    return result


async def classify_batch(classifier: Classifies, dets: Sequence[DetectionRequest]) -> list[dict[str, Any]]:
    """Many detections, one result each, in order; refused as a whole (nothing stored) if a new object's
    first detection lacks a position."""
    note(n_detections=len(dets))
    if all(d.object_id == dets[0].object_id for d in dets):
        note(object_id=dets[0].object_id)
    results = await classifier.classify_many(dets)
    _count(results)
    return results
