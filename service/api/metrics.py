"""``GET /metrics``: Prometheus text format.

The classifier's and the inference executor's counters are read at scrape time by a custom collector
(no per-request cost on the hot path), next to everything registered in the default registry (e.g.
webhook delivery metrics). Each uvicorn worker answers for itself; the ``worker`` label (its pid)
keeps the series of different workers apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response

router = APIRouter(tags=["health"])


class ServiceCollector(Collector):
    """Exposes ``Classifier.stats`` and ``InferenceExecutor.stats`` of this worker."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[Any]:
        worker = str(os.getpid())
        stats = self.services.classifier.stats
        outcomes = CounterMetricFamily(
            "goto_detections", "Detections handled, by outcome", labels=["worker", "outcome"]
        )
        for outcome in ("incremental", "recompute", "stored", "duplicate"):
            outcomes.add_metric([worker, outcome], stats[outcome])
        yield outcomes
        for name, help_text in (
            ("conflicts", "Commits lost to a concurrent writer (then recomputed)"),
            ("prepares", "Detections that needed a prepare round trip (state not cached in this worker)"),
            ("cache_hits", "Detections planned from this worker's state cache"),
        ):
            family = CounterMetricFamily(f"goto_{name}", help_text, labels=["worker"])
            family.add_metric([worker], stats[name])
            yield family
        executor = self.services.extras["executor"].stats
        batches = CounterMetricFamily("goto_inference_batches", "Batched engine calls", labels=["worker"])
        batches.add_metric([worker], executor.batches)
        yield batches
        jobs = CounterMetricFamily("goto_inference_jobs", "Steps and recomputes run", labels=["worker"])
        jobs.add_metric([worker], executor.jobs)
        yield jobs
        largest = GaugeMetricFamily("goto_inference_largest_batch", "Largest micro-batch", labels=["worker"])
        largest.add_metric([worker], executor.largest_batch)
        yield largest
        info = GaugeMetricFamily("goto_model_info", "The served model", labels=["worker", "model_version"])
        info.add_metric([worker, self.services.model.version], 1)
        yield info


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of the worker that answers."""
    collector = getattr(request.app.state, "metrics_collector", None)
    body = generate_latest(REGISTRY)
    if collector is not None:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        body += generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
