"""What the compatible routers need from the rest of the service, behind one small Protocol.

``CompatBackend`` is implemented by ``ServiceBackend`` over the query engine, the API-key store,
the archive watermark and the format renderers that ``create_app`` puts on ``app.state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventstrata.api.compat.parsing import OffsetQuery
from eventstrata.api.deps import spend
from eventstrata.auth import ApiKeys, MissingScope
from eventstrata.formats.render import render
from eventstrata.model import Event, Format
from eventstrata.query.engine import QueryEngine
from eventstrata.query.filters import EventFilter
from eventstrata.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class OffsetPage:
    events: Sequence[Event]
    total: int | None


class CompatBackend(Protocol):
    """Async I/O edge of the compatible endpoints. Every method may raise
    ``eventstrata.errors.ApiError`` (client-visible) or a transport error (→ 500)."""

    async def tenant_of(self, key: str) -> str | None:
        """The tenant of an active API key that may read; ``None`` for an unknown or revoked
        key, or one without the ``read`` scope (each vendor answers it with its own 401).
        Spends the key's read budget: raises ``ApiError(429)`` when it is spent."""
        ...

    async def page(self, tenant: str, q: OffsetQuery, *, now_ms: int) -> OffsetPage:
        """One offset page of the tenant's events through the query engine."""
        ...

    async def count(self, tenant: str, flt: EventFilter, *, now_ms: int) -> int: ...

    async def get(self, tenant: str, event_id: str, *, now_ms: int) -> Event | None: ...

    async def watermark(self, tenant: str) -> int:
        """The tenant's archive watermark W (ms; 0 when nothing is archived)."""
        ...

    def render(self, event: Event, as_format: Format) -> dict[str, Any]:
        """The event in a vendor's shape (the formats package's renderer)."""
        ...


class ServiceBackend:
    """``CompatBackend`` over the objects ``create_app``'s lifespan puts on ``app.state``:
    ``engine`` (``QueryEngine``) and ``api_keys`` (``ApiKeys``); renders with
    ``formats.render.render``. Holds no state of its own (cheap to build per request)."""

    def __init__(self, engine: QueryEngine, api_keys: ApiKeys, limiter: RateLimiter) -> None:
        self._engine = engine
        self._keys = api_keys
        self._limiter = limiter

    async def tenant_of(self, key: str) -> str | None:
        try:
            tenant = await self._keys.resolve(key)
        except MissingScope:
            return None
        if tenant is not None:
            await spend(self._limiter, key, "reads")
        return tenant

    async def page(self, tenant: str, q: OffsetQuery, *, now_ms: int) -> OffsetPage:
        p = await self._engine.page_offset(
            tenant, q.flt, order=q.order, sort=q.sort, limit=q.limit, offset=q.offset,
            include_total=q.include_total, now_ms=now_ms,
        )
        return OffsetPage(p.events, p.total)

    async def count(self, tenant: str, flt: EventFilter, *, now_ms: int) -> int:
        return await self._engine.count(tenant, flt, now_ms=now_ms)

    async def get(self, tenant: str, event_id: str, *, now_ms: int) -> Event | None:
        return await self._engine.get(tenant, event_id, now_ms=now_ms)

    async def watermark(self, tenant: str) -> int:
        return await self._engine.watermark(tenant)

    def render(self, event: Event, as_format: Format) -> dict[str, Any]:
        return render(event, as_format)
