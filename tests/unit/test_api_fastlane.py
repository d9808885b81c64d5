"""``api.fastlane.FastLane`` as an ASGI app: which requests it serves itself, what it puts in the
scope, how it renders errors. No network: the app is called directly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from eventstrata.api import native_routes
from eventstrata.api.fastlane import FastLane
from eventstrata.errors import ApiError


def _app(behaviour: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/events")
    async def events(request: Request) -> Response:
        behaviour["calls"] = behaviour.get("calls", 0) + 1
        behaviour["route_seen"] = request.scope.get("route")
        if "raise" in behaviour:
            raise behaviour["raise"]
        return JSONResponse({"q": request.query_params.get("q")})

    return app


async def _call(lane: FastLane, method: str, path: str, query: bytes = b"") -> tuple[int, bytes]:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                             "query_string": query, "headers": [], "root_path": "", "scheme": "http",
                             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "http_version": "1.1"}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await lane(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def _lane(behaviour: dict[str, Any], downstream_calls: list[str]) -> FastLane:
    app = _app(behaviour)

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        downstream_calls.append(f"{scope['method']} {scope['path']}")
        await Response(b"down", status_code=299)(scope, receive, send)

    def on_api_error(exc: ApiError) -> Response:
        return JSONResponse({"code": exc.code}, status_code=exc.status)

    def on_unexpected(request: Request, exc: BaseException) -> Response:
        return JSONResponse({"unexpected": type(exc).__name__}, status_code=500)

    routes = {r.path: r for r in app.routes if isinstance(r, APIRoute)}
    return FastLane(downstream, routes, (on_api_error, on_unexpected))


def test_serves_get_of_its_paths_and_passes_everything_else_down() -> None:
    behaviour: dict[str, Any] = {}
    down: list[str] = []
    lane = _lane(behaviour, down)
    assert asyncio.run(_call(lane, "GET", "/v1/events", b"q=x")) == (200, b'{"q":"x"}')
    assert behaviour["calls"] == 1
    route = behaviour["route_seen"]
    assert route is not None and route.path == "/v1/events"  # the metrics label comes from it
    for method, path in (("HEAD", "/v1/events"), ("POST", "/v1/events"), ("GET", "/v1/events/"),
                         ("GET", "/v1/events.json"), ("GET", "/other")):
        assert asyncio.run(_call(lane, method, path)) == (299, b"down")
    assert len(down) == 5 and behaviour["calls"] == 1


@pytest.mark.parametrize(("exc", "status", "body"), [
    (ApiError(401, "unauthorized", "no"), 401, b'{"code":"unauthorized"}'),
    (ApiError(400, "invalid_parameter", "bad"), 400, b'{"code":"invalid_parameter"}'),
    (KeyError("x"), 500, b'{"unexpected":"KeyError"}'),
])
def test_errors_are_rendered_by_the_apps_handlers(exc: Exception, status: int, body: bytes) -> None:
    lane = _lane({"raise": exc}, [])
    assert asyncio.run(_call(lane, "GET", "/v1/events")) == (status, body)


def test_a_route_under_another_path_or_method_is_refused_at_construction() -> None:
    app = _app({})

    @app.post("/v1/post")
    async def post(request: Request) -> Response:
        return Response()

    routes = {r.path: r for r in app.routes if isinstance(r, APIRoute)}
    errors = (lambda e: Response(), lambda r, e: Response())
    with pytest.raises(ValueError, match="not a GET route"):
        FastLane(_lane({}, []).app, {"/v1/other": routes["/v1/events"]}, errors)
    with pytest.raises(ValueError, match="not a GET route"):
        FastLane(_lane({}, []).app, {"/v1/post": routes["/v1/post"]}, errors)


def test_the_apps_fast_routes_are_the_native_endpoints() -> None:
    routes = native_routes.fast_routes()
    assert set(routes) == {"/v1/events", "/v1/events/count", "/v1/events/{event_id}"}
    assert routes["/v1/events"].endpoint is native_routes.list_events
    assert routes["/v1/events/count"].endpoint is native_routes.count_events
    assert routes["/v1/events/{event_id}"].endpoint is native_routes.get_event


def test_a_trailing_path_parameter_serves_one_segment_and_exact_paths_win() -> None:
    app = FastAPI()
    seen: list[Any] = []

    @app.get("/v1/events/count")
    async def count(request: Request) -> Response:
        return JSONResponse({"count": 1})

    @app.get("/v1/events/{event_id}")
    async def one(request: Request) -> Response:
        seen.append((request.path_params, request.scope["route"].path))
        return JSONResponse({"id": request.path_params["event_id"]})

    down: list[str] = []

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        down.append(scope["path"])
        await Response(b"down", status_code=299)(scope, receive, send)

    routes = {r.path: r for r in app.routes if isinstance(r, APIRoute)}
    lane = FastLane(downstream, routes, (lambda e: Response(), lambda r, e: Response()))
    assert asyncio.run(_call(lane, "GET", "/v1/events/evt 1:{x}")) == (200, b'{"id":"evt 1:{x}"}')
    assert seen == [({"event_id": "evt 1:{x}"}, "/v1/events/{event_id}")]
    assert asyncio.run(_call(lane, "GET", "/v1/events/count")) == (200, b'{"count":1}')
    for path in ("/v1/events/", "/v1/events/a/b", "/v1/events", "/v1/eventsx/a"):
        assert asyncio.run(_call(lane, "GET", path)) == (299, b"down")
    assert asyncio.run(_call(lane, "HEAD", "/v1/events/a")) == (299, b"down")
    assert len(seen) == 1 and len(down) == 5
    bad = {"/v1/{t}/events/{event_id}": APIRoute("/v1/{t}/events/{event_id}", one, methods=["GET"])}
    with pytest.raises(ValueError, match="only the last segment"):
        FastLane(downstream, bad, (lambda e: Response(), lambda r, e: Response()))
