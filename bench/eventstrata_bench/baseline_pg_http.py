"""PostgreSQL served by the same HTTP stack as the product: the benchmark's five hot queries
answered over HTTP from the baseline's ``events`` table (``baseline_pg``).

One process, FastAPI on uvicorn with uvloop + httptools, as ``eventstrata serve`` runs the
API; the same paths and parameters as the native API for the benchmark's requests, so the same
wrk scripts load both. A bearer key resolves to a tenant from an in-memory map (the API trusts a
key it found valid for ``EVENTSTRATA_API_KEY_CACHE``; here the lookup is free). Queries run on a
pool of ``BASELINE_POOL`` connections with prepared statements; page bodies are the table's
``body::text`` joined into the response without parsing -- what a competent minimal service
would do.

Run: ``python -m eventstrata_bench.baseline_pg_http`` with ``BASELINE_DSN``, ``BASELINE_PORT``,
``BASELINE_KEYS`` (JSON ``{key: tenant}``) and ``BASELINE_POOL`` in the environment. Blocks
until SIGTERM/SIGINT. A benchmark tool, not part of the product.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from eventstrata_bench.baseline_pg import QUERIES

JSON = "application/json"


class Pool:
    """``size`` psycopg async connections handed out one request at a time."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._free: asyncio.Queue[Any] = asyncio.Queue()

    async def open(self) -> None:
        import psycopg

        for _ in range(self._size):
            self._free.put_nowait(await psycopg.AsyncConnection.connect(self._dsn, autocommit=True))

    async def close(self) -> None:
        while not self._free.empty():
            await self._free.get_nowait().close()

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = await self._free.get()
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql, params, prepare=True)
                rows: list[Any] = await cur.fetchall()
                return rows
        finally:
            self._free.put_nowait(conn)


def create_app(dsn: str, keys: dict[str, str], pool_size: int) -> FastAPI:
    """The baseline app: ``keys`` maps bearer keys to tenants."""
    pool = Pool(dsn, pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    def tenant_of(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return keys.get(auth[7:]) if auth.startswith("Bearer ") else None

    def page(rows: list[Any]) -> Response:
        body = b'{"events":[' + b",".join(r[0].encode() for r in rows) + b'],"next_cursor":null}'
        return Response(body, media_type=JSON)

    def unauthorized() -> Response:
        return Response(b'{"error":{"code":"unauthorized"}}', status_code=401, media_type=JSON)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"ok":true}', media_type=JSON)

    @app.get("/v1/events/count")
    async def count(request: Request) -> Response:
        tenant = tenant_of(request)
        if tenant is None:
            return unauthorized()
        rows = await pool.fetch(QUERIES["count for user"], (tenant, request.query_params["user_id"]))
        return Response(orjson.dumps({"count": rows[0][0]}), media_type=JSON)

    @app.get("/v1/events/{event_id}")
    async def get(event_id: str, request: Request) -> Response:
        tenant = tenant_of(request)
        if tenant is None:
            return unauthorized()
        rows = await pool.fetch(QUERIES["get by id"], (tenant, event_id))
        if not rows:
            return Response(b'{"error":{"code":"not_found"}}', status_code=404, media_type=JSON)
        return Response(rows[0][0].encode(), media_type=JSON)

    @app.get("/v1/events")
    async def events(request: Request) -> Response:
        tenant = tenant_of(request)
        if tenant is None:
            return unauthorized()
        q = request.query_params
        user, type_, since = q.get("user_id"), q.get("type"), q.get("since")
        if user is not None and type_ is not None:
            rows = await pool.fetch(QUERIES["user+type newest 50"], (tenant, user, type_))
        elif user is not None:
            rows = await pool.fetch(QUERIES["user newest 50"], (tenant, user))
        elif type_ is not None and since is not None:
            rows = await pool.fetch(QUERIES["type newest 50, last hour"], (tenant, type_, int(since)))
        else:
            return Response(b'{"error":{"code":"unsupported"}}', status_code=400, media_type=JSON)
        return page(rows)

    return app


def main() -> None:
    import uvicorn

    keys: dict[str, str] = orjson.loads(os.environ["BASELINE_KEYS"])
    app = create_app(os.environ["BASELINE_DSN"], keys, int(os.environ.get("BASELINE_POOL", "8")))
    config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ["BASELINE_PORT"]), log_level="warning",
                            access_log=False, lifespan="on", loop="uvloop", http="httptools")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
