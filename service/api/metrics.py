"""``GET /metrics``: Prometheus text format, for the whole server whichever worker answers.

Under ``goto-classifier serve`` the environment variable ``PROMETHEUS_MULTIPROC_DIR`` is set (a fresh
directory per server run unless the operator chose one), every worker writes its metric values there,
and the answering worker aggregates all workers' files (prometheus-client multiprocess mode). Run any
other way (tests, ``uvicorn`` directly without that variable) the process's own registry is exported.
Metric definitions: ``service.metrics`` and ``service.webhooks.metrics``.
"""

from __future__ import annotations

import os

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

# Imported for their side effect: the metrics exist (at zero) from the first scrape on.
import service.metrics
import service.webhooks.metrics  # noqa: F401
from service.api.deps import MetricsAccess

__all__ = ["MULTIPROC_ENV", "router"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

router = APIRouter(tags=["health"], dependencies=[MetricsAccess])


def _render() -> bytes:
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    return generate_latest(registry)


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus metrics of the whole server (all workers)."""
    return Response(_render(), media_type=CONTENT_TYPE_LATEST)
