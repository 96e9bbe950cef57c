"""``POST /classify`` and ``POST /classify/batch``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from service import ingest
from service.affinity import ObjectRouter
from service.api.deps import JSONBytes, OrjsonRoute, RouterDep, WriteAccess
from service.schemas import BatchRequest, BatchResponse, Classification, DetectionRequest

router = APIRouter(tags=["classify"], dependencies=[WriteAccess], route_class=OrjsonRoute)

_ERRORS = {
    401: {"description": "API keys are configured and none (or a wrong one) was given"},
    413: {"description": "request body larger than GOTO_MAX_BODY_BYTES"},
    415: {"description": "Content-Type is not application/json (with charset utf-8, if any)"},
    422: {"description": "invalid detection; the error names the field (nothing is stored)"},
    503: {"description": "Redis unavailable (nothing is stored); retry after Retry-After seconds"},
}


@router.post("/classify", response_model=Classification, responses=_ERRORS)  # type: ignore[arg-type]
async def classify(detection: DetectionRequest, router: RouterDep) -> JSONBytes:
    """Add one detection to its object's light curve and return the updated classification.

    Replaying a detection (same ``detection_id``, or same object/mjd/filter without one) changes
    nothing and returns the current classification with ``status: duplicate``. The first detection of
    a new object must carry ``ra`` and ``dec``: without them it is a 422 (which this schema cannot
    express, since it depends on what is stored).
    """
    return JSONBytes(await classify_one(router, detection))


@router.post("/classify/batch", response_model=BatchResponse, responses=_ERRORS)  # type: ignore[arg-type]
async def classify_batch(batch: BatchRequest, request: Request, router: RouterDep) -> JSONBytes:
    """Many detections in one call: same semantics as ``/classify``, one result per detection, in order.

    The batch is validated as a whole first: if any detection is invalid, nothing is stored. As for
    ``/classify``, a new object's first detection in the batch must carry ``ra`` and ``dec`` (else 422).
    """
    limit = request.app.state.max_batch_size
    if len(batch.detections) > limit:
        ingest.count_outcome("rejected", len(batch.detections))
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "detections"],
                    "msg": f"at most {limit} detections per batch",
                    "type": "too_long",
                }
            ],
        )
    return JSONBytes(await classify_batch_within_limit(router, batch.detections))


# What the routes and the fast path (``service.api.fastpath``, which serves the same routes) call.


async def classify_one(router: ObjectRouter, detection: DetectionRequest) -> dict[str, Any]:
    return await ingest.classify_one(router, detection)


async def classify_batch_within_limit(
    router: ObjectRouter, dets: list[DetectionRequest]
) -> dict[str, list[dict[str, Any]]]:
    """A batch already checked against ``GOTO_MAX_BATCH_SIZE``."""
    return {"results": await ingest.classify_batch(router, dets)}


__all__ = ["classify_batch_within_limit", "classify_one", "router"]
