"""``FastLane``: the hottest read routes without FastAPI's per-request machinery.

``GET /v1/events``, ``GET /v1/events/count`` and ``GET /v1/events/{event_id}`` take only the
``Request`` (they parse their own query string or path parameter and authenticate with
``deps.request_tenant``), so nothing FastAPI does per request for them -- the router's match
over every route, the exception middleware, the exit-stack middleware, the route's
request/response wrappers, dependency solving -- changes their answer. This pure-ASGI
middleware, installed innermost of the user middlewares (inside ``RequestContext`` and
``ThisDataAlias``, so request ids, access logs, metrics and the ThisData alias apply as before),
calls those endpoint functions directly for exactly those method + path pairs (a one-segment
path parameter goes to ``scope["path_params"]``, as the router would put it), and renders their
errors with the app's own handlers (``app.api_error_response``,
``app.internal_error_response``). Everything else, including ``HEAD``, goes down the stack.

It sets ``scope["route"]`` to the route FastAPI would have matched, so the latency histogram
labels the request by the same endpoint path. OpenAPI is unchanged: the routes stay registered
(and serve any request the lane passes down, e.g. ``HEAD``). Measured with the quick probe
(``python -m eventstrata_bench.probes api``, 200k events, 8 connections), A/B against the
same code without it: see docs/ARCHITECTURE.md, "Read path".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from eventstrata.errors import ApiError

ErrorRenderers = tuple[Callable[[ApiError], Response], Callable[[Request, BaseException], Response]]


class FastLane:
    """See the module docstring. ``routes``: the GET paths to serve directly → their route (its
    ``endpoint`` is called with the ``Request``; the route itself goes to ``scope["route"]``).
    A path ending in ``/{name}`` serves any one non-empty segment (without ``/``) there that is
    not itself one of ``routes``, with ``scope["path_params"] = {name: segment}``, as the router
    would."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, APIRoute], errors: ErrorRenderers) -> None:
        self._routes: dict[str, APIRoute] = {}
        self._params: dict[str, tuple[str, APIRoute]] = {}  # "prefix/" -> (parameter, route)
        for path, r in routes.items():
            if r.path != path or "GET" not in (r.methods or ()):
                raise ValueError(f"FastLane: {path} is not a GET route ({r.path}, {r.methods})")
            prefix, _, last = path.rpartition("/")
            if last.startswith("{") and last.endswith("}"):
                if "{" in prefix:
                    raise ValueError(f"FastLane: only the last segment may be a parameter: {path}")
                self._params[prefix + "/"] = (last[1:-1], r)
            else:
                self._routes[path] = r
        self.app = app
        self._errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            route = self._routes.get(path)
            if route is None and self._params:
                prefix, sep, segment = path.rpartition("/")
                found = self._params.get(prefix + sep) if segment else None
                if found is not None:
                    name, route = found
                    scope["path_params"] = {name: segment}
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request = Request(scope, receive, send)
        on_api_error, on_unexpected = self._errors
        try:
            response = await route.endpoint(request)
        except ApiError as exc:
            response = on_api_error(exc)
        except Exception as exc:
            response = on_unexpected(request, exc)
        await response(scope, receive, send)
