"""The API application: ``create_app(settings)``.

The lifespan owns the Redis client, the cold reader (DuckDB), the query engine and the API-key
store, and puts them on ``app.state`` (``settings``, ``layout``, ``redis``, ``cold_reader``,
``engine``, ``api_keys``, ``metrics``) for every router — the native one here and the ones in
``eventstrata.api.routers.ROUTERS``.

Errors: every native error leaves as ``{"error": {"code", "message", "details"}}``:
``ApiError`` as given, request validation → 400 ``invalid_parameter``, unknown routes → 404,
wrong methods → 405, anything unexpected → 500 ``internal`` (logged with the request id, never
with credentials). A middleware assigns a request id (``X-Request-Id``, taken from the request
when sane), logs one JSON line per request and records latency by endpoint. ``GET /v1/events``
and ``GET /v1/events/count`` are served by ``api.fastlane.FastLane`` (the same endpoint
functions and error handlers, without FastAPI's routing layers).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventstrata.api import native_routes
from eventstrata.api.compat.alias import ThisDataAlias
from eventstrata.api.fastlane import FastLane
from eventstrata.api.models import ErrorBody, Health
from eventstrata.api.responses import OrjsonResponse
from eventstrata.api.routers import LIFESPAN_HOOKS, ROUTERS
from eventstrata.archive.destination import ArchiveUnavailable, open_destination
from eventstrata.archive.reader import ColdReader
from eventstrata.auth import ApiKeys, cursor_secret
from eventstrata.config import Settings, shared_metrics_dir
from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.gctune import tune_gc
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.query.engine import QueryEngine
from eventstrata.ratelimit import RateLimiter
from eventstrata.redisconn import connect_redis, is_outage

log = logging.getLogger("eventstrata.api")

_MERGE_FILES: Callable[[CollectorRegistry], object] = multiprocess.MultiProcessCollector
"""Registers, in a registry, the collector of every process's metric files (prometheus_client's
multiprocess mode); its constructor is unannotated upstream, this is the signature relied on."""
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ApiMetrics:
    """Prometheus collectors of one app (own registry: several apps may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "eventstrata_api_request_seconds", "HTTP request latency by endpoint",
            ["method", "endpoint", "status"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0))
        self.tier = Histogram(
            "eventstrata_query_tier_seconds", "Time spent reading one tier for one query",
            ["tier"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0))

    def observe_tier(self, tier: str, seconds: float) -> None:
        self.tier.labels(tier).observe(seconds)


class RequestContext:
    """Pure-ASGI middleware: request id, one JSON access-log line, latency histogram."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                cand = v.decode("latin-1")
                rid = cand if _RID.match(cand) else ""
                break
        rid = rid or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            dt = time.perf_counter() - t0
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope.get("method", ""), endpoint, str(status)).observe(dt)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={
                    "request_id": rid, "method": scope.get("method"), "path": scope.get("path"),
                    "endpoint": endpoint, "status": status, "ms": round(dt * 1000, 3),
                    "tenant": scope.get("state", {}).get("tenant"),
                })


def _error(status: int, code: str, message: str, details: list[ErrorDetail] | tuple[ErrorDetail, ...] = (),
           headers: Mapping[str, str] | None = None) -> OrjsonResponse:
    return OrjsonResponse(ApiError(status, code, message, tuple(details)).to_native(), status_code=status,
                          headers=headers)


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("query", "body", "path", "header")]
    return ".".join(parts)


def api_error_response(exc: ApiError) -> OrjsonResponse:
    """The response of an ``ApiError`` (401s say ``WWW-Authenticate: Bearer``; an error with a
    ``retry_after`` says ``Retry-After``)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return OrjsonResponse(exc.to_native(), status_code=exc.status, headers=headers or None)


RETRY_AFTER_S = 1
"""``Retry-After`` of a 503 answered while a store is unavailable."""
OUTAGE_LOG_EVERY_S = 10.0
"""An outage is logged at most once per this many seconds (with the count of requests since)."""


@dataclass(frozen=True, slots=True)
class Outage:
    """How a request that found a store unavailable is answered: the 503's code and message."""

    store: str
    code: str
    message: str


REDIS_OUTAGE = Outage("Redis", "unavailable", "the event store is temporarily unavailable; retry shortly")
ARCHIVE_OUTAGE = Outage("the archive", "archive_unavailable",
                        "the archive (events older than the hot tier) is temporarily unavailable; "
                        "retry shortly, or ask for recent events only")
_outage_log: dict[str, list[float]] = {}
"""Per store: [monotonic time of the last log line, requests answered since]."""


def outage_response(outage: Outage, exc: BaseException) -> OrjsonResponse:
    """The 503 for a request that found ``outage.store`` unavailable (Redis: ``redisconn.is_outage``;
    the archive: ``ArchiveUnavailable``, so hot-only requests never get here): the error envelope,
    ``Retry-After``; logged as a WARNING at most once per ``OUTAGE_LOG_EVERY_S`` per store, with
    the count of requests answered so since."""
    now = time.monotonic()
    last = _outage_log.setdefault(outage.store, [float("-inf"), 0.0])
    if now - last[0] >= OUTAGE_LOG_EVERY_S:
        log.warning("%s unavailable: answering 503", outage.store, extra={
            "error": type(exc).__name__, "detail": str(exc)[:200], "requests_since_last_log": int(last[1])})
        last[0], last[1] = now, 0.0
    else:
        last[1] += 1
    return _error(503, outage.code, outage.message, headers={"Retry-After": str(RETRY_AFTER_S)})


def internal_error_response(request: Request, exc: BaseException) -> OrjsonResponse:
    """Logs an unexpected error (with the request id and path, never credentials) and returns
    the 500 that names the request id -- or, when ``exc`` is a Redis outage or the archive's,
    the 503 of ``outage_response``."""
    if is_outage(exc):
        return outage_response(REDIS_OUTAGE, exc)
    if isinstance(exc, ArchiveUnavailable):
        return outage_response(ARCHIVE_OUTAGE, exc)
    rid = getattr(request.state, "request_id", "") if hasattr(request, "state") else ""
    log.error("unhandled error", extra={"request_id": rid, "path": request.url.path,
                                         "error": type(exc).__name__}, exc_info=exc)
    return _error(500, "internal", f"internal error (request id {rid})")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (for a 405's ``Allow``; Starlette
    names only those of the first route whose path matched). Pure over the app's routes."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})  # no method matches fully
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return api_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = [ErrorDetail(_loc(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in exc.errors()]
        return _error(400, "invalid_parameter", "invalid request parameters", details)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return _error(exc.status_code, code, str(exc.detail), headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return internal_error_response(request, exc)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def create_app(settings: Settings) -> FastAPI:
    """The API application for ``settings``. Nothing connects until the lifespan starts;
    startup raises if Redis is unreachable (the cursor secret is read from it)."""
    metrics = ApiMetrics()
    layout = settings.layout()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect_redis(settings)
        dest = open_destination(settings)
        cold = ColdReader(dest)
        try:
            secret = await cursor_secret(redis, layout, settings.cursor_secret)
            app.state.settings = settings
            app.state.layout = layout
            app.state.redis = redis
            app.state.cold_reader = cold
            app.state.archive_destination = dest
            app.state.api_keys = ApiKeys(redis, layout, cache_ttl_ms=settings.api_key_cache_ms)
            app.state.rate_limiter = RateLimiter(redis, layout, settings.rate_budgets())
            app.state.hot = RedisHotStore(redis, layout)
            app.state.engine = QueryEngine(app.state.hot, cold, secret=secret,
                                           observe=metrics.observe_tier)
            async with AsyncExitStack() as hooks:  # other areas' start/stop (routers.LIFESPAN_HOOKS)
                for hook in LIFESPAN_HOOKS:
                    await hooks.enter_async_context(hook(app))
                tune_gc()  # everything is imported and connected: freeze it (see gctune)
                try:
                    yield
                finally:
                    gc.unfreeze()  # let what start-up created be collected again (tests run many apps)
        finally:
            await redis.aclose()
            cold.close()

    app = FastAPI(
        title="eventstrata",
        version="0.1.0",
        description="Events from Kafka, hot in Redis, archived to Parquet; one read API. "
                    "Authenticate with `Authorization: Bearer <key>` (`eventstrata keys create`).",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    # innermost: the two hottest routes skip FastAPI's per-request layers (see api.fastlane)
    app.add_middleware(FastLane, routes=native_routes.fast_routes(),
                       errors=(api_error_response, internal_error_response))
    app.add_middleware(RequestContext, metrics=metrics)
    app.add_middleware(ThisDataAlias)  # outermost: GET /v1/events?api_key=… is ThisData's
    app.include_router(native_routes.router)
    for r in ROUTERS:
        app.include_router(r)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> OrjsonResponse:
        """Liveness: the process answers."""
        return OrjsonResponse({"status": "ok"})

    @app.get("/readyz", response_model=Health, tags=["ops"],
             responses={503: {"model": ErrorBody, "description": "A dependency is unreachable"}})
    async def readyz(request: Request) -> OrjsonResponse:
        """Readiness: Redis answers PING and the archive (directory or bucket) is readable (no
        Kafka)."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(request.app.state.redis.ping(), timeout=2.0)
            checks["redis"] = "ok"
        except Exception as exc:  # reported, not swallowed: the probe's answer is the report
            checks["redis"] = f"error: {type(exc).__name__}"
        try:
            dest = request.app.state.archive_destination
            await asyncio.wait_for(asyncio.to_thread(dest.check), timeout=5.0)
            checks["archive"] = "ok"
        except Exception as exc:  # reported, not swallowed: the probe's answer is the report
            checks["archive"] = f"error: {type(exc).__name__}"
        if all(v == "ok" for v in checks.values()):
            return OrjsonResponse({"status": "ready", "checks": checks})
        bad = [ErrorDetail(k, v) for k, v in checks.items() if v != "ok"]
        return _error(503, "not_ready", "a dependency is unreachable", bad)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        if shared_metrics_dir():
            # several API processes (processes.api): every process's values, from their files
            merged = CollectorRegistry()
            _MERGE_FILES(merged)
            return Response(generate_latest(merged), media_type=CONTENT_TYPE_LATEST)
        # this app's request/tier histograms + the process-wide collectors (tail hub, cold
        # retries, process and GC stats) registered in the default registry
        body = generate_latest(metrics.registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
