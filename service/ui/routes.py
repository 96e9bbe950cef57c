"""``GET /ui``, ``GET /ui/objects/{object_id}``, ``GET /ui/model``: HTML pages for observers.

Access follows the read rules: with API keys set and ``GOTO_PROTECT_READS``, a page needs a key,
either as the API's ``Authorization: Bearer <key>`` header or as the ``goto_ui_key`` cookie that the
``/ui/login`` form sets (HttpOnly, SameSite=Strict, path ``/ui``: the cookie opens the pages only,
never the JSON API, so no JSON endpoint becomes reachable from another site's forms). Without a key
a page answers 401 with the form.

Pages carry a Content-Security-Policy that allows no script at all and resources from this service
only: everything is drawn server-side (``service.ui.svg``), and no CDN is needed or allowed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from service.api.deps import key_accepted
from service.schemas import API_ID_PATTERN
from service.store import StoreUnavailable
from service.ui import pages
from service.ui.index import writer_for
from service.ui.queries import (
    REPORT_SUFFIXES,
    load_listing,
    load_model_view,
    load_object_page,
    report_file,
    services_of,
)

__all__ = ["COOKIE", "router"]

COOKIE = "goto_ui_key"
_ID = re.compile(API_ID_PATTERN)
MAX_PER_PAGE = 200

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # merged into the app's lifespan by include_router, inside it (the services exist): from here on
    # the classifier's results feed the listing's index, and its last rows are written before the app
    # closes its Redis client
    services = getattr(app.state, "services", None)
    writer = None if services is None else writer_for(services.store.client)
    yield
    if writer is not None:
        await writer.drain()


router = APIRouter(prefix="/ui", include_in_schema=False, lifespan=_lifespan)


def _static(name: str) -> bytes:
    return resources.files("service.ui").joinpath("static", name).read_bytes()


_STATIC = {"ui.css": ("text/css; charset=utf-8", _static("ui.css")),
           "favicon.svg": ("image/svg+xml", _static("favicon.svg"))}


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status, headers={**SECURITY_HEADERS, **(headers or {})})


def _denied(request: Request) -> HTMLResponse | None:
    """The 401 login page unless reads are open or the request presents a key (header or cookie)."""
    keys = request.app.state.api_keys
    if not keys or not request.app.state.protect_reads:
        return None
    if key_accepted(request.headers.get("authorization", ""), keys):
        return None
    cookie = request.cookies.get(COOKIE)
    if cookie and key_accepted(f"Bearer {cookie}", keys):
        return None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _html(pages.login_page(target), 401, {"WWW-Authenticate": "Bearer"})


def _unavailable(request: Request) -> HTMLResponse:
    retry = str(services_of(request.app).settings.retry_after_s)
    page = pages.error_page("Service unavailable", "The state store (Redis) is unavailable; try again.")
    return _html(page, 503, {"Retry-After": retry})


def _bad_filter(message: str) -> HTMLResponse:
    return _html(pages.error_page("Bad filter", message), 422)


def _parse_filter(request: Request, classes: tuple[str, ...]) -> pages.ListingFilter | str:
    """The listing filter from the query string, or a message naming the bad parameter."""
    q = request.query_params
    cls = q.get("class") or None
    min_class = q.get("min_class") or None
    for name, value in (("class", cls), ("min_class", min_class)):
        if value is not None and value not in classes:
            return f"{name}: {value!r} is not one of the model's classes ({', '.join(classes)})"
    min_p: float | None = None
    raw_p = q.get("min_p") or None
    if raw_p is not None:
        try:
            min_p = float(raw_p)
        except ValueError:
            return f"min_p: {raw_p!r} is not a number"
        if not 0.0 <= min_p <= 1.0:
            return f"min_p: {raw_p!r} is not a probability between 0 and 1"
    if (min_p is None) != (min_class is None):
        return "min_class and min_p go together (e.g. min_class=SN&min_p=0.7)"
    ints = {}
    for name, default, hi in (("page", 1, 10**6), ("per_page", 50, MAX_PER_PAGE)):
        raw = q.get(name) or str(default)
        if not raw.isdigit() or not 1 <= int(raw) <= hi:
            return f"{name}: {raw!r} is not a whole number from 1 to {hi}"
        ints[name] = int(raw)
    return pages.ListingFilter(cls, min_class, min_p, ints["page"], ints["per_page"])


@router.get("")
async def listing(request: Request) -> Response:
    """The latest classified objects, newest first; ``class``, ``min_class`` + ``min_p``, ``page``,
    ``per_page`` filter and page them."""
    if (denied := _denied(request)) is not None:
        return denied
    services = services_of(request.app)
    classes = tuple(services.model.metadata.class_names)
    parsed = _parse_filter(request, classes)
    if isinstance(parsed, str):
        return _bad_filter(parsed)
    try:
        page = await load_listing(services, parsed.predicted_class, parsed.min_probability,
                                  (parsed.page - 1) * parsed.per_page, parsed.per_page)
    except StoreUnavailable:
        return _unavailable(request)
    return _html(pages.listing_page(page, classes, parsed))


@router.get("/objects/{object_id:path}")
async def object_page(request: Request, object_id: str) -> Response:
    """Light curve, probability history, context and classification of one object."""
    if (denied := _denied(request)) is not None:
        return denied
    if len(object_id) > 64 or not _ID.match(object_id):
        return _html(pages.error_page("Unknown object", f"{object_id!r} is not a valid object id"), 404)
    try:
        data = await load_object_page(services_of(request.app), object_id)
    except StoreUnavailable:
        return _unavailable(request)
    if data is None:
        message = f"no detection of {object_id!r} has been stored"
        return _html(pages.error_page("Unknown object", message), 404)
    return _html(pages.object_page(data))


@router.get("/model")
async def model_card(request: Request) -> Response:
    """The model card: version, training data, metrics, thresholds and the evaluation report's plots."""
    if (denied := _denied(request)) is not None:
        return denied
    return _html(pages.model_page(load_model_view(services_of(request.app))))


@router.get("/model/report/{name}")
async def report_plot(request: Request, name: str) -> Response:
    """One plot of the model's ``report/`` directory (only the files the model page lists)."""
    if (denied := _denied(request)) is not None:
        return denied
    path = report_file(services_of(request.app), name)
    if path is None:
        return _html(pages.error_page("Not found", f"no report plot {name!r}"), 404)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"}
    return FileResponse(path, media_type=REPORT_SUFFIXES[path.suffix.lower()], headers=headers)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet and icon (open to all: the login page needs them, and they hold no data)."""
    found = _STATIC.get(name)
    if found is None:
        return _html(pages.error_page("Not found", f"no static file {name!r}"), 404)
    media_type, content = found
    return Response(content, media_type=media_type,
                    headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def _safe_next(target: str) -> str:
    """Only pages of this UI are redirect targets (no open redirect through ``next``)."""
    ok = target.startswith("/ui") and not target.startswith("//") and "\\" not in target
    return target if ok else "/ui"


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the form's key and keep it in the pages' cookie; back to the page asked for."""
    form: dict[str, Any] = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/ui"])[0])
    keys = request.app.state.api_keys
    if keys and not key_accepted(f"Bearer {key}", keys):
        return _html(pages.login_page(target, failed=True), 401)
    response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE, key, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui", 303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/ui")
    return response
