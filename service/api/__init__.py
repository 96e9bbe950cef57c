"""HTTP routes, one router per resource; dependencies and error mapping beside them."""

from service.api.classify import router as classify_router
from service.api.docs import router as docs_router
from service.api.health import router as health_router
from service.api.metrics import router as metrics_router
from service.api.model import router as model_router
from service.api.objects import router as objects_router

__all__ = ["ROUTERS"]

ROUTERS = (classify_router, objects_router, model_router, health_router, metrics_router, docs_router)
