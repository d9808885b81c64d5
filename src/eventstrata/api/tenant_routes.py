"""``GET /v1/tenant``: who a key is — its tenant and scopes — and the tenant's tiers at a glance
(the archive watermark, the last global position). What a client shows after sign-in (the web
console does) and polls for the tenant's ingest rate."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from eventstrata.api.deps import request_grant
from eventstrata.api.models import UNAUTHORIZED, error_responses
from eventstrata.api.responses import OrjsonResponse
from eventstrata.auth import SCOPES
from eventstrata.query.engine import QueryEngine
from eventstrata.timeutil import format_ms

router = APIRouter(tags=["events"], responses=error_responses({401: UNAUTHORIZED}))


@router.get("/v1/tenant", summary="The key's tenant, scopes and tiers")
async def tenant_info(request: Request) -> OrjsonResponse:
    """``{"tenant", "scopes", "archive_watermark", "archive_watermark_ms", "global_position",
    "time", "time_ms"}`` for a key that may read: events before the watermark are archived
    (``null`` / 0 before the first archive pass), the others hot; ``global_position`` is the
    tenant's last global position (how many events it has stored), read at ``time``."""
    tenant, granted = await request_grant(request)
    scopes = [s for s in SCOPES if s in granted]
    engine: QueryEngine = request.app.state.engine
    watermark = await engine.watermark(tenant)
    position = await request.app.state.hot.last_position(tenant)
    now_ms = int(time.time() * 1000)
    return OrjsonResponse({
        "tenant": tenant, "scopes": scopes,
        "archive_watermark": format_ms(watermark) if watermark else None,
        "archive_watermark_ms": watermark, "global_position": position,
        "time": format_ms(now_ms), "time_ms": now_ms,
    })
