"""``GET /openapi.json``, ``GET /docs`` and ``GET /redoc``, behind the read key like every other read.

FastAPI serves these itself, open to anyone; with ``GOTO_PROTECT_READS`` the service's description is
a read like the others, so the app turns FastAPI's off (``openapi_url=None``) and serves them here with
the read-access dependency. A browser opening ``/docs`` sends no key when it fetches the schema, so
with protected reads fetch ``/openapi.json`` with the key instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse

from service.api.deps import JSONBytes, ReadAccess

__all__ = ["router"]

router = APIRouter(dependencies=[ReadAccess], include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONBytes:
    return JSONBytes(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - Swagger UI")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")
