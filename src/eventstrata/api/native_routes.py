"""Native read routes (docs/API.md). Thin: authenticate → parse (``query.params``, pure) → engine →
serialize. Query parameters are declared for the OpenAPI document; validation happens in
``query.params`` on the raw query string (so repeatable and ``data.<path>`` parameters work)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.routing import APIRoute

from eventstrata.api.deps import Tenant, request_tenant
from eventstrata.api.models import (
    UNAUTHORIZED,
    CountResult,
    ErrorBody,
    EventModel,
    EventsPage,
    QueryBody,
    error_responses,
)
from eventstrata.api.paramdoc import documented
from eventstrata.api.responses import OrjsonResponse
from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.formats.common import loads_bounded
from eventstrata.formats.render import render
from eventstrata.hotstore.stored import StoredEvents
from eventstrata.model import FORMATS, Event, Format
from eventstrata.native_shape import native_event
from eventstrata.query.engine import QueryEngine
from eventstrata.query.params import (
    BUCKET_MS,
    QueryRequest,
    bucket_starts,
    parse_query_body,
    parse_query_items,
)
from eventstrata.timeutil import format_ms

router = APIRouter(tags=["events"])
FAST_PATHS = ("/v1/events", "/v1/events/count", "/v1/events/{event_id}")
"""Routes whose endpoints take only the ``Request`` and are served by ``api.fastlane`` (a path
ending in one ``{parameter}`` serves every single non-empty path segment in its place that no
other fast path names)."""


def fast_routes() -> dict[str, APIRoute]:
    """``FAST_PATHS`` → their GET routes of ``router``."""
    found = {r.path: r for r in router.routes
             if isinstance(r, APIRoute) and r.path in FAST_PATHS and "GET" in (r.methods or ())}
    missing = set(FAST_PATHS) - set(found)
    if missing:
        raise RuntimeError(f"no GET route for {sorted(missing)}")
    return found

_ERR = error_responses({400: "Invalid parameters", 401: UNAUTHORIZED})

Str = Annotated[str | None, Query(min_length=1, max_length=1024)]
StrList = Annotated[list[str] | None, Query(max_length=100)]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _engine(request: Request) -> QueryEngine:
    engine: QueryEngine = request.app.state.engine
    return engine


def native_events(events: Sequence[Event]) -> list[Any]:
    """``native_event`` of each event, ready for ``orjson.dumps``: for a ``StoredEvents`` (a page
    read from the hot tier) its stored native JSON as ``orjson.Fragment``s, nothing decoded."""
    if isinstance(events, StoredEvents):
        return [orjson.Fragment(j) for j in events.native_json()]
    return [native_event(e) for e in events]


async def _run_page(request: Request, tenant: str, q: QueryRequest) -> OrjsonResponse:
    engine = _engine(request)
    now = _now_ms()
    if q.offset is not None:
        page = await engine.page_offset(tenant, q.filter, order=q.order, sort=q.sort, limit=q.limit,
                                        offset=q.offset, include_total=q.include_total, now_ms=now)
    else:
        page = await engine.page(tenant, q.filter, order=q.order, sort=q.sort, limit=q.limit,
                                 cursor=q.cursor, include_total=q.include_total, now_ms=now)
    body: dict[str, Any] = {"events": native_events(page.events), "next_cursor": page.next_cursor}
    if page.total is not None:
        body["total"] = page.total
    return OrjsonResponse(body)


def _filter_spec(
    user_id: StrList = None,
    type: StrList = None,
    exclude_type: StrList = None,
    name: StrList = None,
    realm: StrList = None,
    group: StrList = None,
    role: StrList = None,
    source: Str = None,
    session_id: Str = None,
    stream_id: Str = None,
    transaction_id: Str = None,
    is_conversion: bool | None = None,
) -> None:
    """The filters ``GET /v1/events`` and ``GET /v1/events/count`` share (OpenAPI only)."""


Filters = Annotated[None, Depends(_filter_spec)]
"""``_filter_spec``'s parameters in a spec. FastAPI documents a spec's own parameters first, then
each dependency's in order: the specs below take their parameters through dependencies only,
so the filters come first and the route's own parameters after them."""


def _list_page_spec(
    since: Annotated[str | None, Query(description="ISO 8601 (offset optional, none = UTC) or epoch ms; "
                                       "inclusive.")] = None,
    until: Annotated[str | None, Query(description="Exclusive end; same formats as since.")] = None,
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    include_total: bool = False,
) -> None:
    """The time range and paging parameters of ``GET /v1/events`` (OpenAPI only)."""


def _list_spec(tenant: Tenant, filters: Filters,
               page: Annotated[None, Depends(_list_page_spec)]) -> None:
    """The parameters of ``GET /v1/events`` (OpenAPI only; see ``api.paramdoc``)."""


@router.get("/v1/events", response_model=EventsPage, responses=_ERR, summary="List events",
            openapi_extra=documented(_list_spec, "/v1/events"))
async def list_events(request: Request) -> OrjsonResponse:
    """Filtered, cursor-paginated events of the caller's tenant, newest first by default.

    Besides the declared parameters, `data.<path>=<value>` and `metadata.<path>=<value>` filter on
    nested fields (value: a JSON literal when it parses as one, else a string). Repeatable
    parameters OR their values; different parameters AND. See docs/API.md for limits."""
    tenant = await request_tenant(request)
    q = parse_query_items(request.query_params.multi_items())
    return await _run_page(request, tenant, q)


@router.post("/v1/events/query", response_model=EventsPage, responses=_ERR, summary="Query events (JSON)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": QueryBody.model_json_schema()}}}})
async def query_events(request: Request, tenant: Tenant) -> OrjsonResponse:
    """The parameters of `GET /v1/events` as a JSON object."""
    raw = await request.body()
    try:
        body = loads_bounded(raw) if raw else None
    except ValueError as exc:  # malformed, or nested deeper than formats.common.MAX_DEPTH
        raise ApiError(400, "invalid_body", "the request body is not valid JSON",
                       (ErrorDetail("", str(exc)),)) from None
    q = parse_query_body(body)
    return await _run_page(request, tenant, q)


def _count_range_spec(
    since: Annotated[str | None, Query(description="Required with bucket.")] = None,
    until: Annotated[str | None, Query(description="Required with bucket.")] = None,
    bucket: Annotated[Literal["1m", "1h", "1d"] | None, Query(description="Per-bucket counts.")] = None,
) -> None:
    """The time range and buckets of ``GET /v1/events/count`` (OpenAPI only)."""


def _count_spec(tenant: Tenant, filters: Filters,
                counting: Annotated[None, Depends(_count_range_spec)]) -> None:
    """The parameters of ``GET /v1/events/count`` (OpenAPI only; see ``api.paramdoc``)."""


@router.get("/v1/events/count", response_model=CountResult, responses=_ERR, summary="Count events",
            openapi_extra=documented(_count_spec, "/v1/events/count"))
async def count_events(request: Request) -> OrjsonResponse:
    """Exact number of matching events; with `bucket`, also per time bucket (UTC-aligned,
    every bucket of [since, until) listed, zeros included)."""
    tenant = await request_tenant(request)
    q = parse_query_items(request.query_params.multi_items(), allow_bucket=True)
    engine = _engine(request)
    now = _now_ms()
    if q.bucket is None:
        return OrjsonResponse({"count": await engine.count(tenant, q.filter, now_ms=now)})
    flt = q.filter
    if flt.since_ms is None or flt.until_ms is None:
        raise ApiError(400, "invalid_parameter", "bucket needs since and until",
                       (ErrorDetail("bucket", "give since and until with bucket"),))
    size = BUCKET_MS[q.bucket]
    starts = bucket_starts(flt.since_ms, flt.until_ms, size)
    counts = await engine.count_buckets(tenant, flt, bucket_ms=size, now_ms=now)
    buckets = [{"start": format_ms(s), "count": counts.get(s, 0)} for s in starts]
    total = sum(counts.get(s, 0) for s in starts)
    return OrjsonResponse({"count": total, "buckets": buckets})


MAX_EVENT_ID = 512
"""Longest event id ``GET /v1/events/{event_id}`` accepts (characters)."""


def _get_spec(tenant: Tenant,
              event_id: Annotated[str, Path(min_length=1, max_length=MAX_EVENT_ID)],
              format: Annotated[Format | None, Query(
                  description="render the event in this format's shape (the compatible "
                              "endpoints' renderers) instead of the native JSON")] = None) -> None:
    """The parameters of ``GET /v1/events/{event_id}`` (OpenAPI only; see ``api.paramdoc``)."""


@router.get("/v1/events/{event_id}", response_model=EventModel,
            responses={**_ERR, 404: {"model": ErrorBody, "description": "No such event in this tenant"}},
            summary="Get one event", openapi_extra=documented(_get_spec, "/v1/events/{event_id}"))
async def get_event(request: Request) -> OrjsonResponse:
    """The event with this id in the caller's tenant (either tier): its native JSON, or with
    ``format`` its shape in that format (``formats.render``: what the compatible endpoints
    answer for it)."""
    tenant = await request_tenant(request)
    event_id: str = request.path_params["event_id"]
    if len(event_id) > MAX_EVENT_ID:
        raise ApiError(400, "invalid_parameter", "invalid request parameters",
                       (ErrorDetail("event_id", f"String should have at most {MAX_EVENT_ID} characters"),))
    as_format = _render_format(request)
    e = await _engine(request).get(tenant, event_id, now_ms=_now_ms())
    if e is None:
        raise ApiError(404, "not_found", "no event with this id",
                       (ErrorDetail("event_id", "not found"),))
    return OrjsonResponse(native_event(e) if as_format is None else render(e, as_format))


def _render_format(request: Request) -> Format | None:
    """The ``format`` parameter of a get by id (None when absent). Raises ``ApiError(400)`` for
    a value that is not one of ``model.FORMATS`` or a repeated one."""
    values = request.query_params.getlist("format")
    if not values:
        return None
    for f in FORMATS:
        if values == [f]:
            return f
    raise ApiError(400, "invalid_parameter", "invalid parameter 'format'",
                   (ErrorDetail("format", f"must be one of {', '.join(FORMATS)}"),))
