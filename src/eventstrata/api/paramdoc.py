"""OpenAPI parameters for routes that parse their own query string.

``GET /v1/events`` and ``GET /v1/events/count`` validate the raw query string with
``query.params`` (repeatable and ``data.<path>`` parameters need that anyway), so FastAPI's own
per-request parsing and validation of the same declared parameters was pure overhead: about
a sixth of the CPU of a count request (measured with the API probe). Those routes take only the
``Request``; their parameters are declared once, as the signature of a *spec* function that is
never called for a request (parameters several routes share may come from a dependency it
names, ``Depends``), and ``documented`` turns that signature into the ``parameters`` and
``security`` of the route's OpenAPI operation, exactly as FastAPI itself would write them.

Pure apart from building a throw-away FastAPI app once per spec, at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI


def documented(spec: Callable[..., Any], path: str) -> dict[str, Any]:
    """``openapi_extra`` for a GET route at ``path``: the ``parameters`` (and ``security``)
    FastAPI derives from ``spec``'s signature. Raises ``KeyError`` when ``spec`` declares
    none (a spec without parameters is a mistake)."""
    app = FastAPI()
    app.add_api_route(path, spec, methods=["GET"])
    op = app.openapi()["paths"][path]["get"]
    out: dict[str, Any] = {"parameters": op["parameters"]}
    if "security" in op:
        out["security"] = op["security"]
    return out
