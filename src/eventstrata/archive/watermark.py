"""The archive watermark W of a tenant: durable in the manifest, mirrored in Redis
(``TenantKeys.watermark``) where queries read it once per query.

Invariant: the Redis mirror is never above the manifest's W (it is raised only after the
manifest is published), so a query splitting at the mirror never misses an event.
"""

from __future__ import annotations

import asyncio

from eventstrata.archive.destination import Destination
from eventstrata.archive.store import load_manifest
from eventstrata.hotstore import handoff
from eventstrata.keys import KeyLayout
from eventstrata.redisconn import RedisClient


async def get_watermark(redis: RedisClient, layout: KeyLayout, tenant: str) -> int:
    """W of ``tenant`` as queries must use it (the Redis mirror); 0 when nothing was archived.
    One GET; raises ``redis.RedisError`` on connection problems."""
    return await handoff.read_watermark(redis, layout.tenant(tenant))


async def repair_mirror(redis: RedisClient, layout: KeyLayout, dest: Destination, tenant: str) -> int:
    """Raise the Redis mirror to the manifest's W (after a crash between publishing and
    mirroring, or after Redis lost data); never lowers it. Returns the mirror's value.
    Call while holding the tenant's archiver lease (the archiver does, at the start of a pass)."""
    manifest = await asyncio.to_thread(load_manifest, dest, tenant)
    return await handoff.mirror_watermark(redis, layout.tenant(tenant), manifest.watermark_ms)
