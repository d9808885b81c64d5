"""Live-tail routes: ``GET /v1/tail`` (Server-Sent Events) and ``/v1/tail/ws`` (WebSocket).

Filters are those of ``GET /v1/events`` (``query.params.parse_query_items``); paging controls
(``order``, ``limit``, ``cursor``, ``offset``, ``sort``, ``include_total``) are rejected with 400.
Tail parameters: ``after=<position>`` (resume after that event id), the ``Last-Event-ID``
header (wins over ``after``), ``since=<time>`` (events with ``timestamp >= since`` in position
order, then live), ``access_token=<key>`` for clients that cannot set ``Authorization``
(browser ``EventSource``, WebSocket) — the header wins when both are given.

Errors before the stream starts (bad parameter 400, bad key 401, too many subscribers 429,
shutting down 503) use the native error shape; a WebSocket is closed with code 1008 (policy)
/ 1013 (try again later) after an ``error`` message instead. Frames: ``tail.wire``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import FrameType
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from starlette.requests import HTTPConnection

from eventstrata.api.deps import bearer, forbidden, spend, tenant_from_bearer
from eventstrata.auth import ApiKeys, MissingScope
from eventstrata.config import Settings
from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.hotstore.interface import HotStore, RedisHotStore
from eventstrata.query.filters import EventFilter
from eventstrata.query.params import parse_query_items
from eventstrata.redisconn import RedisClient, security_options
from eventstrata.tail.catchup import CatchUp, TierReader
from eventstrata.tail.hub import TailHub
from eventstrata.tail.resume import StartPoint, resolve_start
from eventstrata.tail.session import Reconnect, TailFailed, TailSession
from eventstrata.tail.wire import sse_frame, ws_message

router = APIRouter(tags=["tail"])

READER_CONNECTIONS = 1000

_TAIL_PARAMS = ("after", "access_token")
_NOT_FOR_TAIL = ("order", "limit", "cursor", "offset", "sort", "include_total", "bucket")


@dataclass(frozen=True, slots=True)
class TailRuntime:
    """What the tail routes need, kept on ``app.state.tail`` by ``start_tail``."""

    hub: TailHub
    catchup: CatchUp
    heartbeat_s: float
    restore_signals: Callable[[], None]
    readers: RedisClient


async def start_tail(settings: Settings, hot: HotStore, tiers: TierReader | None) -> TailRuntime:
    """Build and start the process's tail hub (call from the app lifespan; stop with
    ``stop_tail``). Does no I/O until the first subscriber. When a server (uvicorn) has
    installed SIGINT/SIGTERM handlers, chains onto them so open tails are told to reconnect
    as soon as shutdown begins (uvicorn drains connections before the lifespan shutdown)."""
    layout = settings.layout()
    readers = _reader_client(settings)
    hub = TailHub(RedisHotStore(readers, layout), max_subscribers=settings.tail_max_subscribers,
                  buffer_capacity=settings.tail_buffer)
    await hub.start()
    catchup = CatchUp(hot, tiers, now_ms=lambda: int(time.time() * 1000))
    restore = _chain_exit_signals(hub, asyncio.get_running_loop())
    return TailRuntime(hub, catchup, settings.tail_heartbeat_ms / 1000, restore, readers)


def _reader_client(settings: Settings) -> RedisClient:
    """The hub's own client: each tenant reader holds one of its connections while it blocks in
    XREAD, so the readers get their own pool (up to ``READER_CONNECTIONS`` tenants with
    subscribers per process) and can never starve the request path's pool."""
    options = security_options(settings, settings.redis_url)
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, socket_connect_timeout=5.0,
                                     max_connections=READER_CONNECTIONS, **options)
    return Redis.from_url(settings.redis_url, socket_connect_timeout=5.0, socket_timeout=None,
                          max_connections=READER_CONNECTIONS, **options)


async def stop_tail(runtime: TailRuntime) -> None:
    """Send ``reconnect`` to every subscriber, close their streams, stop the readers."""
    runtime.restore_signals()
    try:
        await runtime.hub.stop()
    finally:
        await runtime.readers.aclose()


@contextlib.asynccontextmanager
async def tail_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app lifespan hook (``routers.LIFESPAN_HOOKS``): ``app.state.tail`` while serving."""
    runtime = await start_tail(app.state.settings, app.state.hot, app.state.engine)
    app.state.tail = runtime
    try:
        yield
    finally:
        await stop_tail(runtime)


def _chain_exit_signals(hub: TailHub, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Wrap the current *callable* SIGINT/SIGTERM handlers (a server's) so they first schedule
    ``hub.request_stop`` on ``loop``. Returns the undo function. No-op off the main thread or
    when no server handler is installed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    installed: dict[int, tuple[Callable[[int, FrameType | None], Any], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous) or previous is signal.default_int_handler:
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.request_stop)
            previous(signum, frame)

        signal.signal(sig, handler)
        installed[sig] = (handler, previous)

    def restore() -> None:
        for sig, (handler, previous) in installed.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return restore


def parse_tail_params(items: list[tuple[str, str]]) -> tuple[EventFilter, str | None]:
    """Split tail parameters from filters; returns ``(filter, after)``. Raises ``ApiError`` 400."""
    bad = [ErrorDetail(name, "not supported by the live tail") for name, _ in items if name in _NOT_FOR_TAIL]
    if bad:
        raise ApiError(400, "invalid_parameter", f"invalid parameter {bad[0].path!r}: {bad[0].message}",
                       tuple(bad))
    afters = [v for name, v in items if name == "after"]
    if len(afters) > 1:
        raise ApiError(400, "invalid_parameter", "invalid parameter 'after': given more than once",
                       (ErrorDetail("after", "given more than once"),))
    req = parse_query_items([(n, v) for n, v in items if n not in _TAIL_PARAMS])
    return req.filter, (afters[0] if afters else None)


def _runtime(conn: HTTPConnection) -> TailRuntime:
    runtime: TailRuntime | None = getattr(conn.app.state, "tail", None)
    if runtime is None:
        raise ApiError(503, "unavailable", "the live tail is not running in this process")
    return runtime


async def tail_tenant(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """``Authorization: Bearer <key>``, else ``?access_token=<key>``; see ``tenant_from_bearer``."""
    if creds is None or not creds.credentials:
        token = request.query_params.get("access_token")
        if token:
            creds = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    return await tenant_from_bearer(request, creds)


def _start(conn: HTTPConnection, tenant: str) -> tuple[TailRuntime, TailSession]:
    """Validate parameters and register the subscriber (raises ``ApiError`` 400/429/503)."""
    flt, after = parse_tail_params(conn.query_params.multi_items())
    start: StartPoint = resolve_start(after, conn.headers.get("last-event-id"), flt.since_ms)
    runtime = _runtime(conn)
    sub = runtime.hub.subscribe(tenant, flt)
    return runtime, TailSession(runtime.hub, sub, start, runtime.catchup, heartbeat_s=runtime.heartbeat_s)


@router.get(
    "/v1/tail",
    summary="Live tail (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def tail_sse(request: Request, tenant: Annotated[str, Depends(tail_tenant)]) -> StreamingResponse:
    """Matching events as they are stored; see the module docstring and docs/API.md."""
    runtime, session = _start(request, tenant)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b": tail open\n\n"
            async for item in session.items():
                yield sse_frame(item)
        finally:
            runtime.hub.unsubscribe(session.subscriber)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/v1/tail/ws")
async def tail_ws(websocket: WebSocket) -> None:
    """The same items as JSON text messages. Closes with 1012 after ``reconnect`` (server
    restart), 1011 after an ``error`` item, 1008/1013 when the subscription is refused."""
    token = websocket.query_params.get("access_token")
    auth = websocket.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        token = auth[7:].strip()
    await websocket.accept()
    try:
        keys: ApiKeys = websocket.app.state.api_keys
        try:
            tenant = await keys.resolve(token) if token else None
        except MissingScope as exc:
            raise forbidden(exc) from None
        if tenant is None:
            raise ApiError(401, "unauthorized", "missing, invalid or revoked API key",
                           (ErrorDetail("access_token", "expected a valid key"),))
        await spend(websocket.app.state.rate_limiter, token or "", "reads")
        runtime, session = _start(websocket, tenant)
    except ApiError as exc:
        await websocket.send_text(orjson.dumps({"type": "error", **exc.to_native()}).decode())
        await websocket.close(code=1013 if exc.status in (429, 503) else 1008)
        return
    try:
        async for item in session.items():
            await websocket.send_text(ws_message(item).decode())
            if isinstance(item, Reconnect | TailFailed):
                await websocket.close(code=1012 if isinstance(item, Reconnect) else 1011)
                return
    except (WebSocketDisconnect, OSError):  # the client went away (uvicorn: ClientDisconnected)
        return
    finally:
        runtime.hub.unsubscribe(session.subscriber)
