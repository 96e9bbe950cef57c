"""The services every front-end needs, built from :class:`~service.settings.Settings` and closed again.

``Runtime.start(settings)`` loads the model (and verifies its step engine), the galaxy catalogue,
starts the embedded Redis server when no ``redis_url`` is configured, opens the Redis client, the
inference thread, the state store and the classifier, and, with ``GOTO_WEBHOOKS`` set, the commit
extension that writes webhook events plus (unless a dispatcher process delivers them,
``GOTO_WEBHOOK_DISPATCHER``) a dispatcher task. ``Runtime.aclose()`` closes them in reverse order.

The HTTP app's lifespan (``service.app``) and the stream consumer (``service.consume``) both start
one, so a detection is classified by the same objects whichever way it arrived; what is particular
to a front-end (HTTP routing, object affinity between ``serve`` workers, stream reading) stays there.

After start-up every object created so far is moved out of the garbage collector's view
(``gc.freeze()``) and the youngest generation is collected less often (:data:`GC_THRESHOLDS`): full
collections over the objects TensorFlow leaves behind were the largest source of tail latency, and a
wave of detections allocates thousands of short-lived containers that the default threshold of 700
collected several times a wave for nothing (BENCHMARKS.md has the measurements).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from lightcurve.context import GalaxyCatalog, galactic_lb
from service.classifier import Classifier, CommitExtension
from service.embedded_redis import EmbeddedRedis
from service.galaxies import load_galaxy_catalog
from service.inference import InferenceExecutor, LoadedModel, load_model, load_verified_engine
from service.metrics import MODEL_INFO
from service.settings import Settings, redacted_url
from service.store import RedisStateStore

__all__ = ["GC_THRESHOLDS", "Runtime", "Webhooks", "blocking_client", "redis_client"]

#: Collection thresholds after start-up (see the module docstring): young generation, then how many
#: collections of each generation before the next one up.
GC_THRESHOLDS = (20_000, 20, 20)

log = logging.getLogger("service")


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


def blocking_client(url: str, settings: Settings, block_s: float = 1.0) -> aioredis.Redis:
    """A connection pool for blocking stream reads (the webhook dispatcher's, the stream consumer's):
    a read blocking ``block_s`` must not time out, and must not hold connections the request path
    needs."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=max(10.0, settings.redis_timeout_s, block_s + settings.redis_timeout_s),
        socket_connect_timeout=settings.redis_timeout_s,
    )


class Webhooks:
    """The webhook pieces of one process: the commit extension and (optionally) a running dispatcher."""

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

        self._client = blocking_client(url, self.settings)
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


@dataclass
class Runtime:
    """The model, Redis, store, classifier and webhooks of one process (see the module docstring)."""

    settings: Settings
    model: LoadedModel
    catalog: GalaxyCatalog | None
    #: The Redis server's URL (the embedded server's ``unix://`` URL when this process started one).
    redis_url: str
    client: aioredis.Redis
    executor: InferenceExecutor
    store: RedisStateStore
    classifier: Classifier
    webhooks: Webhooks | None = None
    embedded_redis: EmbeddedRedis | None = None
    _gc_thresholds: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    async def start(cls, settings: Settings, model: LoadedModel | None = None) -> Runtime:
        """Build everything from ``settings``; ``model`` may be passed in (tests reuse one loaded model)."""
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
        galactic_lb(0.0, 0.0)  # builds (and caches) the ICRS->Galactic rotation now, not on a request
        runtime = cls(settings, loaded, catalog, url, client, executor, store, classifier, webhooks, embedded)
        MODEL_INFO.labels(loaded.version).set(1)
        if webhooks is not None:
            webhooks.start(url)
        gc.collect()
        gc.freeze()
        runtime._gc_thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info(
            "model %s loaded (Redis %s at %s, %s)",
            loaded.version,
            # under ``serve`` the embedded server is started there and reached here by its URL
            "embedded" if embedded or settings.redis_embedded else "external",
            redacted_url(url),
            f"{len(webhooks.subscriptions)} webhook subscription(s)" if webhooks else "no webhooks",
        )
        return runtime

    async def aclose(self) -> None:
        """Close what :meth:`start` opened, in reverse order."""
        if self.webhooks is not None:
            await self.webhooks.stop()
        self.executor.stop()
        await self.store.aclose()
        await self.client.aclose()
        if self.embedded_redis is not None:
            await asyncio.to_thread(self.embedded_redis.stop)
        if self._gc_thresholds:
            gc.set_threshold(*self._gc_thresholds)
        gc.unfreeze()
