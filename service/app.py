"""The FastAPI application factory and its lifespan.

``create_app(settings)`` builds the app; the lifespan owns everything with a life cycle: the model
(loaded and its step engine verified before the first request), the embedded Redis server when no
``redis_url`` is configured, the Redis client, the inference thread, the object router (with several
``serve`` workers each object is classified by one of them: ``service.affinity``) and, with
``GOTO_WEBHOOKS`` set, the commit extension that writes webhook events and, unless a dispatcher
process delivers them (``GOTO_WEBHOOK_DISPATCHER``), a dispatcher task (with several workers each runs
one; they share the outbox through the Redis consumer group). After start-up every object
created so far is moved out of the garbage collector's view (``gc.freeze()``): full collections
over the ~10^6 objects TensorFlow leaves behind were the largest source of tail latency. The youngest
generation is then collected every 20,000 net allocations instead of 700: a wave of 100 detections
holds ~2,000 short-lived containers at once, so at 700 the collector ran several times a wave and found
nothing to free (~4 % of the classifier's CPU in a batch benchmark; one collection of 20,000 objects
takes ~1 ms here).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from lightcurve.context import galactic_lb
from service.affinity import Affinity
from service.api import ROUTERS
from service.api.deps import JSONBytes, Services
from service.api.errors import BodySizeLimit, JSONContentType, install_error_handlers
from service.api.fastpath import ClassifyFastPath
from service.api.observability import RequestObservability
from service.classifier import Classifier, CommitExtension
from service.embedded_redis import EmbeddedRedis
from service.galaxies import load_galaxy_catalog
from service.inference import InferenceExecutor, LoadedModel, load_model, load_verified_engine
from service.metrics import MODEL_INFO
from service.settings import Settings, load_settings, redacted_url
from service.store import RedisStateStore
from service.ui.routes import router as ui_router

__all__ = ["create_app", "create_app_from_env"]

#: Collection thresholds after start-up (see the module docstring): young generation, then how many
#: collections of each generation before the next one up.
GC_THRESHOLDS = (20_000, 20, 20)

log = logging.getLogger("service")

DESCRIPTION = """Real-time VS / SN / AGN classification of survey light curves (Burhanudin et al. 2021).

Post each new detection of an object to `/classify`; the object's light curve and RNN state live in
Redis, so a detection arriving in time order costs one RNN step. Every response carries the
`model_version` that produced it.
"""


def redis_client(url: str, settings: Settings) -> aioredis.Redis:
    """A client whose failures surface fast (then 503), and which reconnects by itself after a restart."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 1),  # one immediate retry replaces a connection the server dropped
        health_check_interval=0,
        decode_responses=False,
    )


def dispatcher_client(url: str, settings: Settings) -> aioredis.Redis:
    """The dispatcher's own connection pool: its blocking reads (1 s) must not time out, and must not
    hold connections the request path needs."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=max(10.0, settings.redis_timeout_s),
        socket_connect_timeout=settings.redis_timeout_s,
    )


class Webhooks:
    """The webhook pieces of one worker: the commit extension and (optionally) a running dispatcher."""

    def __init__(self, settings: Settings) -> None:
        from service.notifications import WebhookNotifier
        from service.webhooks import load_subscriptions

        assert settings.webhooks is not None
        self.settings = settings
        self.subscriptions = load_subscriptions(settings.webhooks)
        self.notifier = WebhookNotifier(self.subscriptions)
        self.dispatcher: Any = None
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, url: str) -> None:
        mode = self.settings.webhook_dispatcher
        if mode not in ("auto", "worker") or not self.subscriptions:
            log.info("webhook events are written to the outbox; delivery is left to a dispatcher "
                     "process (GOTO_WEBHOOK_DISPATCHER=%s)", mode)
            return
        from service.webhooks import Dispatcher

        self._client = dispatcher_client(url, self.settings)
        self.dispatcher = Dispatcher(self._client, self.subscriptions)
        self._task = asyncio.create_task(self.dispatcher.run(), name="webhook-dispatcher")
        log.info("webhook dispatcher %s started (%d subscription(s))", self.dispatcher.consumer,
                 len(self.subscriptions))

    async def stop(self) -> None:
        """Stop reading; in-flight deliveries get up to 10 s, unfinished ones stay pending in Redis."""
        if self.dispatcher is not None and self._task is not None:
            await self.dispatcher.stop()
            try:
                await self._task
            except Exception:
                log.exception("webhook dispatcher failed")
        if self._client is not None:
            await self._client.aclose()


def create_app(settings: Settings, model: LoadedModel | None = None) -> FastAPI:
    """Build the service. ``model`` may be passed in (tests reuse one loaded model across apps)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # a bad subscriptions file fails start-up before anything slow or with a life cycle starts
        webhooks = Webhooks(settings) if settings.webhooks is not None else None
        loaded = model
        if loaded is None and settings.engine_file is not None:
            loaded = await asyncio.to_thread(
                load_verified_engine, settings.engine_file, settings.model_dir, settings.engine_tolerance
            )
        if loaded is None:
            loaded = await asyncio.to_thread(load_model, settings.model_dir, settings.engine_tolerance)
        catalog = await asyncio.to_thread(load_galaxy_catalog, settings.galaxy_catalog)
        embedded = None
        url = settings.redis_url
        if url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            url = await asyncio.to_thread(embedded.start)
        client = redis_client(url, settings)
        extension: CommitExtension | None = webhooks.notifier if webhooks is not None else None
        executor = InferenceExecutor(loaded.engine, settings.max_inference_batch)
        executor.start()
        store = RedisStateStore(
            client,
            loaded.metadata.sequence.n_steps,
            loaded.version,
            commit_extension=webhooks.notifier.commit_lua if webhooks is not None else "",
        )
        classifier = Classifier(
            store,
            loaded,
            executor,
            catalog,
            max_commit_attempts=settings.max_commit_attempts,
            cache_size=settings.state_cache_size,
            extension=extension,
        )
        affinity = await Affinity.start(
            classifier, settings.peer_dir, settings.peer_workers, settings.peer_timeout_s
        )
        galactic_lb(0.0, 0.0)  # builds (and caches) the ICRS->Galactic rotation now, not on a request
        extras: dict[str, Any] = {
            "executor": executor,
            "embedded_redis": embedded,
            "catalog": catalog,
            "webhooks": webhooks,
        }
        app.state.services = Services(settings, loaded, store, classifier, affinity.router, extras)
        MODEL_INFO.labels(loaded.version).set(1)
        if webhooks is not None:
            webhooks.start(url)
        gc.collect()
        gc.freeze()
        previous_thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info(
            "serving model %s (Redis %s at %s, %s)",
            loaded.version,
            # under ``serve`` the embedded server is started there and reached here by its URL
            "embedded" if embedded or settings.redis_embedded else "external",
            redacted_url(url),
            f"{len(webhooks.subscriptions)} webhook subscription(s)" if webhooks else "no webhooks",
        )
        try:
            yield
        finally:
            await affinity.stop()
            if webhooks is not None:
                await webhooks.stop()
            executor.stop()
            await store.aclose()
            await client.aclose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)
            gc.set_threshold(*previous_thresholds)
            gc.unfreeze()

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
