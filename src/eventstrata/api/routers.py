"""Routers of other areas included by ``create_app`` (compatible endpoints, live tail).

Each area appends its router here with one import line, e.g.::

    from eventstrata.api.compat.routes import router as compat_router
    ROUTERS.append(compat_router)

``LIFESPAN_HOOKS``: ``(app) -> async context manager`` entered by the app lifespan after
``app.state`` is filled (settings, redis, engine, …) and exited before Redis is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import APIRouter, FastAPI

from eventstrata.api.admin_routes import erasure_lifespan, users_router
from eventstrata.api.admin_routes import router as admin_router
from eventstrata.api.compat.routes import ROUTERS as COMPAT_ROUTERS
from eventstrata.api.ingest_routes import ingest_lifespan
from eventstrata.api.ingest_routes import router as ingest_router
from eventstrata.api.tail_routes import router as tail_router
from eventstrata.api.tail_routes import tail_lifespan
from eventstrata.api.tenant_routes import router as tenant_router
from eventstrata.console import router as console_router

ROUTERS: list[APIRouter] = []
LIFESPAN_HOOKS: list[Callable[[FastAPI], AbstractAsyncContextManager[None]]] = []

ROUTERS.append(tail_router)
ROUTERS.append(ingest_router)
ROUTERS.append(admin_router)
ROUTERS.append(users_router)
ROUTERS.append(tenant_router)
ROUTERS.append(console_router)
ROUTERS.extend(COMPAT_ROUTERS)
LIFESPAN_HOOKS.append(tail_lifespan)
LIFESPAN_HOOKS.append(ingest_lifespan)
LIFESPAN_HOOKS.append(erasure_lifespan)
