"""HTTP routers of the compatible endpoints (docs/COMPATIBILITY.md). Thin: auth → parse (pure vendor module)
→ query engine → renderer → vendor envelope. Every client-visible error leaves in the vendor's
own error body; ``eventstrata.errors.ApiError`` raised by the engine is translated likewise.

The backend (``CompatBackend``) is built from ``request.app.state`` by ``backend_of``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from eventstrata.api.compat import eventstore_api, fluidtopics_api, thisdata_api, trieve_api
from eventstrata.api.compat.backend import CompatBackend, ServiceBackend
from eventstrata.api.compat.parsing import MAX_PAGE_SIZE, MAX_WINDOW, CompatError, bearer_token
from eventstrata.errors import ApiError

ErrorBody = Callable[[ApiError], dict[str, Any]]


def _q(name: str, kind: str = "string", desc: str = "", *, required: bool = False, many: bool = False,
       where: str = "query", bounds: tuple[int, int] | None = None,
       empty_ok: bool = False) -> dict[str, Any]:
    """One parameter of the OpenAPI document; ``bounds``: an integer's minimum and maximum;
    ``empty_ok``: an empty value is accepted (and means the default)."""
    schema: dict[str, Any] = {"type": kind}
    if bounds is not None:
        schema |= {"minimum": bounds[0], "maximum": bounds[1]}
    if many:
        schema = {"type": "array", "items": schema}
    param = {"name": name, "in": where, "required": required, "description": desc, "schema": schema}
    return param | {"allowEmptyValue": True} if empty_ok else param


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_STR_LIST = {"type": "array", "items": {"type": "string"}}
_DATE_RANGE = {"type": "object", "properties": {k: {"type": "string"} for k in ("gt", "gte", "lt", "lte")}}
_TRIEVE_HEADERS = [
    _q("Authorization", desc="`<key>` or `Bearer <key>`", required=True, where="header"),
    _q("TR-Dataset", desc="the dataset = your tenant", required=True, where="header"),
]
_TRIEVE_BODY = _body({
    "filter": {"type": ["object", "null"], "properties": {
        "date_range": _DATE_RANGE,
        "event_type": {"type": "string", "enum": list(trieve_api.EVENT_TYPES)},
        "is_conversion": {"type": "boolean"},
        "metadata_filter": {"type": "string", "description": 'path.attribute = "value"'},
        "user_id": {"type": "string"}}},
    "page": {"type": ["integer", "null"], "minimum": 0, "maximum": trieve_api.MAX_PAGE},
})
_FT_FILTERS = {"type": "object", "properties": {
    "name": _STR_LIST,
    "user": {"type": "object", "properties": {k: _STR_LIST for k in ("id", "realm", "group", "role")}}}}
_FT_DATES = {"startDate": {"type": "string"}, "endDate": {"type": "string"}, "filters": _FT_FILTERS}
_FT_BODY = _body({
    **_FT_DATES,
    "paging": {"type": "object", "required": ["page", "perPage"], "properties": {
        "page": {"type": "integer", "minimum": 1},
        "perPage": {"type": "integer", "minimum": 1, "maximum": fluidtopics_api.MAX_PER_PAGE}}},
    "sortOrder": {"type": "string", "description": "latestFirst | oldestFirst (case-insensitive)"},
}, ("startDate",))
_BEARER = [_q("Authorization", desc="`Bearer <key>`", where="header")]


def backend_of(request: Request) -> CompatBackend:
    """The backend over the app's query engine and key store (``app.state.engine`` /
    ``app.state.api_keys``, filled by the lifespan of ``create_app``)."""
    state = request.app.state
    return ServiceBackend(state.engine, state.api_keys, state.rate_limiter)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json(status: int, body: Any) -> Response:
    return JSONResponse(body, status_code=status)


async def _guard(handler: Callable[[], Awaitable[Response]], error_body: ErrorBody) -> Response:
    """Run ``handler``; vendor ``CompatError`` and engine ``ApiError`` become JSON responses."""
    try:
        return await handler()
    except CompatError as exc:
        return _json(exc.status, exc.body)
    except ApiError as exc:
        response = _json(exc.status, error_body(exc))
        if exc.retry_after is not None:  # a spent rate limit (429), a store that is down (503)
            response.headers["Retry-After"] = str(exc.retry_after)
        return response


VENDOR_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid parameters, in the vendor's error shape"},
    401: {"description": "Missing, unknown or revoked API key, or a key without the read scope "
                        "(the vendor's error shape)"},
    404: {"description": "No such event or route (the vendor's error shape)"},
    429: {"description": "The key's read budget is spent; Retry-After"},
    503: {"description": "The event store is temporarily unavailable; Retry-After"},
}
"""Error answers of the compatible endpoints, documented without a schema: each vendor has its own."""


# --------------------------------------------------------------------------------- Trieve
trieve_router = APIRouter(tags=["compat: Trieve"], responses=VENDOR_ERRORS)


def _trieve_error(exc: ApiError) -> dict[str, Any]:
    return {"message": exc.message}


async def _trieve_tenant(request: Request, backend: CompatBackend) -> str:
    headers = request.headers
    key, dataset = trieve_api.parse_auth(headers.get("authorization"), headers.get("tr-dataset"))
    tenant = await backend.tenant_of(key)
    # An unknown key and a key of another dataset answer alike (401): no dataset enumeration.
    if tenant is None or tenant != dataset:
        raise trieve_api.unauthorized()
    return tenant


@trieve_router.post("/api/analytics/events/all", summary="Trieve: Get All User Events",
                    openapi_extra={"parameters": _TRIEVE_HEADERS, **_TRIEVE_BODY})
async def trieve_events_all(request: Request) -> Response:
    async def run() -> Response:
        backend = backend_of(request)
        tenant = await _trieve_tenant(request, backend)
        q = trieve_api.parse_events_body(await request.body())
        page = await backend.page(tenant, q, now_ms=_now_ms())
        return _json(200, trieve_api.events_response([backend.render(e, "trieve") for e in page.events]))

    return await _guard(run, _trieve_error)


@trieve_router.get("/api/analytics/events/{event_id}", summary="Trieve: Get User Event By ID",
                   openapi_extra={"parameters": _TRIEVE_HEADERS})
async def trieve_event_by_id(event_id: str, request: Request) -> Response:
    async def run() -> Response:
        backend = backend_of(request)
        tenant = await _trieve_tenant(request, backend)
        event = await backend.get(tenant, event_id, now_ms=_now_ms())
        if event is None:
            raise trieve_api.not_found()
        return _json(200, backend.render(event, "trieve"))

    return await _guard(run, _trieve_error)


# ------------------------------------------------------------------------------- ThisData
thisdata_router = APIRouter(tags=["compat: ThisData"], responses=VENDOR_ERRORS)


def _thisdata_error(exc: ApiError) -> dict[str, Any]:
    return {"error": exc.message}


@thisdata_router.get("/v1/events.json", summary="ThisData: Get events", openapi_extra={"parameters": [
    _q("api_key", required=True), _q("user_id"), _q("after", desc="default 30 days ago, max 90"),
    _q("before"),
    _q("verb"), _q("verbs[]", many=True), _q("exclude_verb", desc="default page-view"),
    _q("exclude_verbs[]", many=True), _q("source_name"),
    _q("limit", "integer", "default 50 (also when empty)", bounds=(1, thisdata_api.MAX_LIMIT),
       empty_ok=True),
    _q("offset", "integer", "default 0 (also when empty)", bounds=(0, MAX_WINDOW - 1),
       empty_ok=True),
]})
async def thisdata_events(request: Request) -> Response:
    async def run() -> Response:
        backend = backend_of(request)
        params = request.query_params.multi_items()
        tenant = await backend.tenant_of(thisdata_api.api_key(params))
        if tenant is None:
            raise thisdata_api.unauthorized()
        now = _now_ms()
        q = thisdata_api.parse_query(params, now_ms=now)
        page = await backend.page(tenant, q, now_ms=now)
        total = page.total if page.total is not None else len(page.events)
        results = [backend.render(e, "thisdata") for e in page.events]
        return _json(200, thisdata_api.events_response(total, results))

    return await _guard(run, _thisdata_error)


# --------------------------------------------------------------------------- Fluid Topics
fluidtopics_router = APIRouter(tags=["compat: Fluid Topics"], responses=VENDOR_ERRORS)


def _ft_error(exc: ApiError) -> dict[str, Any]:
    return {"status": exc.status, "error": exc.code, "message": exc.message}


async def _bearer_tenant(request: Request, backend: CompatBackend, refused: CompatError) -> str:
    key = bearer_token(request.headers.get("authorization"), bare_allowed=False)
    tenant = None if key is None else await backend.tenant_of(key)
    if tenant is None:
        raise refused
    return tenant


@fluidtopics_router.post("/analytics/api/v1/events", summary="Fluid Topics: events",
                         openapi_extra={"parameters": _BEARER, **_FT_BODY})
async def fluidtopics_events(request: Request) -> Response:
    async def run() -> Response:
        backend = backend_of(request)
        tenant = await _bearer_tenant(request, backend, fluidtopics_api.unauthorized())
        now = _now_ms()
        q = fluidtopics_api.parse_body(await request.body(), now_ms=now)
        page = await backend.page(tenant, q.offset_query(), now_ms=now)
        total = page.total if page.total is not None else len(page.events)
        results = [backend.render(e, "fluidtopics") for e in page.events]
        return _json(200, fluidtopics_api.events_response(q, total, results))

    return await _guard(run, _ft_error)


@fluidtopics_router.post("/analytics/api/v1/events/count", summary="Fluid Topics: events count",
                         openapi_extra={"parameters": _BEARER, **_body(_FT_DATES, ("startDate",))})
async def fluidtopics_events_count(request: Request) -> Response:
    async def run() -> Response:
        backend = backend_of(request)
        tenant = await _bearer_tenant(request, backend, fluidtopics_api.unauthorized())
        now = _now_ms()
        q = fluidtopics_api.parse_body(await request.body(), now_ms=now, paging_allowed=False)
        count = await backend.count(tenant, q.flt, now_ms=now)
        return _json(200, fluidtopics_api.count_response(q, count))

    return await _guard(run, _ft_error)


# ---------------------------------------------------------------------------- Event store
eventstore_router = APIRouter(tags=["compat: event store"], responses=VENDOR_ERRORS)


def _es_error(exc: ApiError) -> dict[str, Any]:
    if exc.status == 400:
        details = [{"code": exc.code, "message": d.message, "path": d.path.split(".")} for d in exc.details]
        return {"error": "Invalid request body",
                "details": details or [{"code": exc.code, "message": exc.message, "path": []}]}
    return {"error": exc.code.upper(), "message": exc.message}


@eventstore_router.get("/api/event-stores/{eventStoreName}/events", summary="Event store: query events",
                       openapi_extra={"parameters": [*_BEARER, *(_q(n) for n in (
                           "streamId", "type", "eventId", "transactionId", "fromPosition", "toPosition",
                           "fromDate", "toDate", "phase", "includeArchived", "limit", "offset", "sortBy",
                           "sortDirection", "includeCount"))]})
async def eventstore_events(eventStoreName: str, request: Request) -> Response:
    async def run() -> Response:
        backend = backend_of(request)
        tenant = await _bearer_tenant(request, backend, eventstore_api.unauthorized())
        parsed = eventstore_api.parse_query(eventStoreName, request.query_params.multi_items())
        q = parsed.for_watermark(await backend.watermark(tenant)) if parsed.phase != "all" else parsed.query
        shown = parsed.query
        if q is None:
            total = 0 if shown.include_total else None
            return _json(200, eventstore_api.events_response(shown, [], total=total, has_more=False))
        # hasMore without a count: ask for one extra row (or for the exact total at the max limit)
        probe = q.limit < MAX_PAGE_SIZE and not q.include_total
        ask = replace(q, limit=q.limit + 1 if probe else q.limit, include_total=q.include_total or not probe)
        page = await backend.page(tenant, ask, now_ms=_now_ms())
        events = page.events[: q.limit]
        has_more = len(page.events) > q.limit if probe else q.offset + len(events) < (page.total or 0)
        rendered = [backend.render(e, "eventstore") for e in events]
        body = eventstore_api.events_response(shown, rendered, total=page.total, has_more=has_more)
        return _json(200, body)

    return await _guard(run, _es_error)


ROUTERS: tuple[APIRouter, ...] = (trieve_router, thisdata_router, fluidtopics_router, eventstore_router)
