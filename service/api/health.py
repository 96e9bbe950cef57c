"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (Redis answers and the model is loaded)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import JSONBytes
from service.schemas import Liveness, Readiness
from service.store import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness)
async def healthz() -> JSONBytes:
    """Liveness: answers while the event loop runs."""
    return JSONBytes({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "Redis unreachable or model not loaded", "model": Readiness}},
)
async def readyz(request: Request) -> JSONBytes:
    """Readiness: Redis answers PING and the model is loaded and verified."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return JSONBytes({"status": "starting", "redis": False, "model": False}, status_code=503)
    try:
        redis_ok = await services.store.ping()
    except StoreUnavailable:
        redis_ok = False
    body = {
        "status": "ready" if redis_ok else "unavailable",
        "redis": redis_ok,
        "model": True,
        "model_version": services.model.version,
    }
    headers = None if redis_ok else {"Retry-After": str(services.settings.retry_after_s)}
    return JSONBytes(body, status_code=200 if redis_ok else 503, headers=headers)
