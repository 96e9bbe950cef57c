"""The FastAPI application factory and its lifespan.

``create_app(settings)`` builds the app; the lifespan starts the process's services
(:class:`~service.runtime.Runtime`: model, Redis, store, classifier, webhooks; the same ones the stream
consumer uses) and what only HTTP needs: the object router (with several ``serve`` workers each
object is classified by one of them: ``service.affinity``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from service.affinity import Affinity
from service.api import ROUTERS
from service.api.deps import JSONBytes, Services
from service.api.errors import BodySizeLimit, JSONContentType, install_error_handlers
from service.api.fastpath import ClassifyFastPath
from service.api.observability import RequestObservability
from service.inference import LoadedModel
from service.runtime import Runtime
from service.settings import Settings, load_settings
from service.ui.routes import router as ui_router

__all__ = ["create_app", "create_app_from_env"]

DESCRIPTION = """Real-time VS / SN / AGN classification of survey light curves (Burhanudin et al. 2021).

Post each new detection of an object to `/classify`; the object's light curve and RNN state live in
Redis, so a detection arriving in time order costs one RNN step. Every response carries the
`model_version` that produced it.
"""


def create_app(settings: Settings, model: LoadedModel | None = None) -> FastAPI:
    """Build the service. ``model`` may be passed in (tests reuse one loaded model across apps)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, model)
        try:
            affinity = await Affinity.start(
                runtime.classifier, settings.peer_dir, settings.peer_workers, settings.peer_timeout_s
            )
        except BaseException:
            await runtime.aclose()
            raise
        extras: dict[str, Any] = {
            "executor": runtime.executor,
            "embedded_redis": runtime.embedded_redis,
            "catalog": runtime.catalog,
            "webhooks": runtime.webhooks,
        }
        app.state.services = Services(
            settings, runtime.model, runtime.store, runtime.classifier, affinity.router, extras
        )
        app.state.runtime = runtime
        try:
            yield
        finally:
            await affinity.stop()
            await runtime.aclose()

    app = FastAPI(
        title="goto-classifier",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONBytes,
        # served by service.api.docs instead, behind the read key when reads are protected
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # no OpenTelemetry per request (its checks cost ~10 us a request; metrics come from /metrics)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.api_keys = settings.key_values()
    app.state.protect_reads = settings.protect_reads
    app.state.protect_metrics = settings.protect_metrics
    app.state.max_batch_size = settings.max_batch_size
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(ui_router)  # /ui pages (service.ui)
    install_error_handlers(app, settings.retry_after_s)
    if settings.fast_path:
        app.add_middleware(ClassifyFastPath)  # innermost: the common case of the classify routes
    app.add_middleware(JSONContentType)  # 415 before either the fast path or FastAPI reads a body
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # outermost (added last), so that 413s are counted and carry a request id too
    app.add_middleware(RequestObservability, access_log=settings.access_log)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker reads its settings from ``GOTO_*``)."""
    from service.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
