"""ThisData's `GET /v1/events` shares its path with our native `GET /v1/events`.

ThisData clients authenticate with an ``api_key`` query parameter and never send an
``Authorization`` header; native clients always send a Bearer key. ``ThisDataAlias`` routes a
``GET /v1/events`` that carries ``api_key`` and no ``Authorization`` header to the ThisData
endpoint (``/v1/events.json``); everything else is untouched. ``is_thisdata_request`` is the pure
rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

NATIVE_PATH = "/v1/events"
THISDATA_PATH = "/v1/events.json"


def is_thisdata_request(method: str, path: str, query_string: bytes,
                        header_names: Iterable[bytes]) -> bool:
    """True for a ThisData-style request to the shared path (see module docstring)."""
    if method != "GET" or path != NATIVE_PATH:
        return False
    if any(name.lower() == b"authorization" for name in header_names):
        return False
    return any(k == "api_key" for k, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))


class ThisDataAlias:
    """ASGI middleware applying ``is_thisdata_request`` by rewriting the path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_thisdata_request(
            scope["method"], scope["path"], scope.get("query_string", b""), (k for k, _ in scope["headers"])
        ):
            scope = {**scope, "path": THISDATA_PATH, "raw_path": THISDATA_PATH.encode()}
        await self.app(scope, receive, send)
