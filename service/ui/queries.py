"""What the pages read, over the service's existing store and model (no writes, no new Redis calls
beyond one ``read_object`` snapshot per object page and one index query per listing).

The services come from ``app.state.services`` (:func:`services_of`); the reads go through
``RedisStateStore.read_object``, ``parse_state``, ``object_keys`` and ``service.api.objects``'s
host-source rule, all imported here. (``routes`` also imports ``key_accepted``, ``API_ID_PATTERN``
and ``StoreUnavailable``; ``reindex`` the state hash layout.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from service.api.objects import _host_source  # one rule for "where the host distance came from"
from service.keys import object_keys
from service.state import ObjectState, parse_state
from service.store import StoredDetection
from service.ui.index import ListingPage, writer_for

__all__ = [
    "REPORT_SUFFIXES",
    "ContextView",
    "ModelView",
    "ObjectPageData",
    "load_listing",
    "load_model_view",
    "load_object_page",
    "report_file",
    "services_of",
]

#: Files of the model's ``report/`` the model page shows and serves.
REPORT_SUFFIXES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}


def services_of(app: Any) -> Any:
    """The lifespan's services (``service.api.deps.Services``: settings, model, store, classifier)."""
    return app.state.services


@dataclass(frozen=True, slots=True)
class ContextView:
    source_detection_id: str
    ra: float
    dec: float
    gal_l_deg: float
    gal_b_deg: float
    host_sep_arcsec: float | None
    #: ``request``, ``catalogue``, ``catalogue_no_match`` or ``unknown`` (see ``service.api.objects``).
    host_source: str
    #: What the model reads for a missing or too distant host (from the model's metadata).
    dummy_host_sep_arcsec: float
    max_host_sep_arcsec: float


@dataclass(frozen=True, slots=True)
class ObjectPageData:
    object_id: str
    state: ObjectState
    #: Every stored detection, in the model's (mjd, detection_id) order.
    light_curve: list[StoredDetection]
    #: Ids of the detections the current classification was computed from (the model's first n_steps).
    used_ids: frozenset[str]
    #: The model's sequence length, from its metadata.
    n_steps: int
    #: One dict per classification update, oldest first (``GET /objects/{id}/probabilities`` rows).
    history: list[dict[str, Any]]
    class_names: tuple[str, ...]
    context: ContextView | None


async def load_object_page(services: Any, object_id: str) -> ObjectPageData | None:
    """The object page's data from one consistent snapshot; ``None`` when the object is unknown."""
    raw, lc, rows = await services.store.read_object(object_keys(object_id), light_curve=True, history=True)
    st = parse_state(raw)
    if st is None:
        return None
    meta = services.model.metadata
    context = None
    if st.context is not None:
        ctx = st.context
        source = next((d for d in lc if d.detection_id == ctx.detection_id), None)
        context = ContextView(
            ctx.detection_id,
            ctx.ra,
            ctx.dec,
            ctx.gal_l_deg,
            ctx.gal_b_deg,
            ctx.host_sep_arcsec,
            _host_source(ctx, source, services.classifier),
            meta.context.dummy_host_sep_arcsec,
            meta.context.max_host_sep_arcsec,
        )
    # the state's classes first (they produced the stored rows), then any the model adds
    classes = tuple(st.probabilities) or tuple(meta.class_names)
    return ObjectPageData(
        object_id=object_id,
        state=st,
        light_curve=lc,
        used_ids=frozenset(st.ids),
        n_steps=meta.sequence.n_steps,
        history=[orjson.loads(r) for r in rows],
        class_names=classes,
        context=context,
    )


async def load_listing(
    services: Any,
    predicted_class: str | None,
    min_probability: tuple[str, float] | None,
    offset: int,
    limit: int,
) -> ListingPage:
    """One page of the latest classified objects (``service.ui.index``), newest first."""
    index = writer_for(services.store.client).index
    return await index.query(
        tuple(services.model.metadata.class_names), predicted_class, min_probability, offset, limit
    )


@dataclass(frozen=True, slots=True)
class ModelView:
    metadata: dict[str, Any]
    #: The start-up check of the step engine against the Keras model.
    engine: dict[str, Any]
    #: Plot file names in the model's ``report/`` directory, sorted.
    report_plots: list[str]
    report_dir: Path


def load_model_view(services: Any) -> ModelView:
    model = services.model
    check = model.check
    report_dir = Path(model.model_dir) / "report"
    plots = (
        sorted(p.name for p in report_dir.iterdir() if p.is_file() and p.suffix.lower() in REPORT_SUFFIXES)
        if report_dir.is_dir()
        else []
    )
    engine = {
        "kind": model.engine.kind,
        "source": model.source,
        "verified_on_sequences": check.n_sequences,
        "max_abs_diff_probabilities": check.max_abs_diff_probabilities,
        "tolerance": check.tolerance,
    }
    return ModelView(model.metadata.model_dump(mode="json"), engine, plots, report_dir)


def report_file(services: Any, name: str) -> Path | None:
    """The report plot called ``name``, only if it is one the model page lists (no other path is served)."""
    view = load_model_view(services)
    return view.report_dir / name if name in view.report_plots else None
