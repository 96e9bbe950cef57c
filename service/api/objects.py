"""``GET /objects/{object_id}`` and ``GET /objects/{object_id}/probabilities``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam

from service.api.deps import ClassifierDep, JSONBytes, ReadAccess, StoreDep
from service.codec import REQUEST_FIELDS, decode_history_row, decode_state
from service.keys import object_keys
from service.schemas import API_ID_PATTERN, ObjectView, ProbabilityHistory
from service.state import ObjectState

router = APIRouter(prefix="/objects", tags=["objects"], dependencies=[ReadAccess])

ObjectId = Annotated[str, PathParam(pattern=API_ID_PATTERN, max_length=64, examples=["GOTO_SN2019euw"])]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no detection of this object has been stored"},
    422: {"description": "object_id is not a valid identifier"},
    503: {"description": "Redis unavailable"},
}


def _latest(object_id: str, st: ObjectState, n: int) -> dict[str, Any]:
    return st.result(object_id, st.detection_id, n, "classified", "none")


def _unknown(object_id: str) -> HTTPException:
    return HTTPException(404, f"object {object_id!r} is unknown")


@router.get("/{object_id}/probabilities", response_model=ProbabilityHistory, responses=_ERRORS)
async def probabilities(object_id: ObjectId, store: StoreDep) -> JSONBytes:
    """Latest probabilities and the full history, one row per classification update (oldest first)."""
    raw, lc, rows = await store.read_object(object_keys(object_id), light_curve=True, history=True)
    st = decode_state(raw)
    if st is None:
        raise _unknown(object_id)
    history = [decode_history_row(r) for r in rows]
    return JSONBytes({"object_id": object_id, "latest": _latest(object_id, st, len(lc)), "history": history})


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds")


def _host_source(ctx: Any, source: Any, classifier: Any) -> str:
    """Where the host distance came from: ``request`` (the detection gave it), ``catalogue`` (the
    nearest galaxy within the model's range), ``catalogue_no_match`` (none that close) or ``unknown``
    (no catalogue configured and none given). The model reads the last two alike (the dummy distance);
    models trained with hidden hosts (``training.host_unknown_fraction``) were taught that it may mean
    "unknown"."""
    if source is not None and source.host_sep_arcsec is not None:
        return "request"
    if classifier.catalog is None:
        return "unknown"
    sep = ctx.host_sep_arcsec
    return "catalogue" if sep is not None and sep <= classifier.context_spec.max_host_sep_arcsec else (
        "catalogue_no_match"
    )


@router.get("/{object_id}", response_model=ObjectView, responses=_ERRORS)
async def object_view(object_id: ObjectId, store: StoreDep, classifier: ClassifierDep) -> JSONBytes:
    """The stored light curve (time order; ``in_model`` marks the model's first detections), the context
    features and the latest classification."""
    raw, lc, _ = await store.read_object(object_keys(object_id), light_curve=True, history=False)
    st = decode_state(raw)
    if st is None:
        raise _unknown(object_id)
    used = set(st.ids)
    light_curve = [
        {
            "detection_id": d.detection_id,
            **{name: getattr(d, name) for name in REQUEST_FIELDS},
            "received_at": _iso(d.received_unix),
            "in_model": d.detection_id in used,
        }
        for d in lc
    ]
    ctx = st.context
    context: dict[str, Any] = {"features": classifier.context_features(ctx)}
    if ctx is not None:
        stored = ctx.to_json()
        # the API names the detection the context came from, not "the" detection of this view
        context["source_detection_id"] = stored.pop("detection_id")
        context.update(stored)
        source = next((d for d in lc if d.detection_id == context["source_detection_id"]), None)
        context["host_source"] = _host_source(ctx, source, classifier)
    return JSONBytes(
        {
            "object_id": object_id,
            "n_detections": len(lc),
            "light_curve": light_curve,
            "context": context,
            "latest": _latest(object_id, st, len(lc)),
        }
    )
