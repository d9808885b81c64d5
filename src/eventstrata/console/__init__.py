"""The web console: a single-page app served by the API process at ``/console`` (``/``
redirects there). Its files are plain ES modules and CSS in ``static/`` (no build step; see
this folder's README.md); every request the page makes goes through the public API with the
signed-in key.

``router`` serves ``index.html`` at ``/console`` and the files of ``static/`` at
``/console/assets/<name>``, read once at import, with an ``ETag`` (``304`` on a match),
``Cache-Control: no-cache`` (always revalidated, so a new release is picked up at once) and a
Content-Security-Policy that allows only this origin's scripts, styles and connections. None
of these routes needs a key, and none is in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from eventstrata.errors import ApiError, ErrorDetail

PATH = "/console"
ASSETS = f"{PATH}/assets"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """The files of ``static/`` by name (``.html``, ``.js`` and ``.css`` only). Reads the
    package's files; raises ``FileNotFoundError`` when ``index.html`` is missing."""
    out: dict[str, Asset] = {}
    for f in resources.files(__package__).joinpath("static").iterdir():
        suffix = f.name[f.name.rfind("."):]
        if f.is_file() and suffix in _TYPES:
            body = f.read_bytes()
            out[f.name] = Asset(body, _TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    if "index.html" not in out:
        raise FileNotFoundError("eventstrata/console/static/index.html")
    return out


_ASSETS = load_assets()
router = APIRouter(include_in_schema=False)


def _serve(request: Request, asset: Asset) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "Content-Security-Policy": CSP}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse(PATH, status_code=307)


@router.get(PATH)
@router.get(f"{PATH}/")
async def console_page(request: Request) -> Response:
    return _serve(request, _ASSETS["index.html"])


@router.get(ASSETS + "/{name}")
async def console_asset(request: Request, name: str) -> Response:
    asset = _ASSETS.get(name)
    if asset is None or name == "index.html":
        raise ApiError(404, "not_found", "no such console file", (ErrorDetail("name", name[:64]),))
    return _serve(request, asset)
