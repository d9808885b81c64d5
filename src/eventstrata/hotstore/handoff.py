"""The hot tier's side of the handoff to the archive (used by ``archive.archiver`` and
``archive.watermark``): list and read hot windows, mirror the watermark, hold the archiver's
lease, remove archived events. Every key name comes from ``keys.TenantKeys``; every call touches
the keys of one slot only (the tenant's, or one of its shards'), so it also works on a cluster.

All functions are coroutines doing network I/O; they raise ``redis.RedisError`` subclasses on
connection problems (the caller retries the whole pass).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventstrata.hotstore.read import Row, Sources, scan
from eventstrata.hotstore.scripts import REMOVE, call
from eventstrata.keys import TenantKeys, encode_part, user_part
from eventstrata.redisconn import RedisClient, reply

# Chunk sizes: no Redis command touches more than this many members.
SCAN_COUNT = 1000
REMOVE_CHUNK = 250  # events per removal call

_MAX_SET = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then redis.call('SET', KEYS[1], ARGV[1]); return new end
return cur
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

async def _eval(redis: RedisClient, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    return await reply(redis.eval(script, len(keys), *keys, *args))


@dataclass(frozen=True, slots=True)
class HotRef:
    """What removing one archived event from Redis needs to know."""

    id: str
    ts: int
    user_id: str | None
    type: str
    gpos: int

    def args(self) -> list[Any]:
        """Its arguments of ``hotstore/remove.lua``: time, id, user part, type part, position."""
        return [self.ts, self.id, user_part(self.user_id), encode_part(self.type), self.gpos]


@dataclass(frozen=True, slots=True)
class PartRef:
    """``HotRef`` with the user and type already as key parts (read back from a body member)."""

    id: str
    ts: int
    user: str
    type_part: str
    gpos: int

    def args(self) -> list[Any]:
        return [self.ts, self.id, self.user, self.type_part, self.gpos]


async def tenants(redis: RedisClient, tenants_key: str) -> list[str]:
    """Every tenant in ``es:tenants``, sorted."""
    raw: Any = await reply(redis.smembers(tenants_key))
    return sorted(m.decode() for m in raw)


async def hot_windows(redis: RedisClient, tk: TenantKeys) -> list[int]:
    """Window starts listed in the tenant's ``win`` zset, ascending."""
    raw: Any = await reply(redis.zrange(tk.windows, 0, -1))
    return sorted(int(m) for m in raw)


async def read_window(redis: RedisClient, tk: TenantKeys, window: int, window_ms: int
                      ) -> dict[str, Row]:
    """Every stored event of window ``window``: id → its row (time, id, ref ``gpos|spos``,
    body). Read in time order, ``SCAN_COUNT`` events per read-script call."""
    out: dict[str, Row] = {}
    after: tuple[int, str] | None = None
    while True:
        res = await scan(redis, tk, Sources("a"), lo=window, hi=window + window_ms, order="asc",
                         after=after, limit=SCAN_COUNT)
        for row in res.rows:
            out[row.id] = row
        if res.complete:
            return out
        after = res.boundary


async def remove_events(redis: RedisClient, tk: TenantKeys, window: int, window_ms: int,
                        refs: Sequence[HotRef | PartRef]) -> int:
    """Remove archived events of ``window`` from every hot structure (``hotstore/remove.lua``),
    ``REMOVE_CHUNK`` events per atomic call; the window leaves ``win`` once none of its events
    is left. Idempotent. Returns the number of bodies deleted."""
    if tk.sharded:
        return await _remove_sharded(redis, tk, window, window_ms, refs)
    removed = 0
    for start in range(0, max(len(refs), 1), REMOVE_CHUNK):
        args: list[Any] = ["all", tk.base, window, window_ms, ""]
        for r in refs[start:start + REMOVE_CHUNK]:
            args += r.args()
        removed += int(await call(redis, REMOVE, tk.id_buckets, args))
    return removed


async def _remove_sharded(redis: RedisClient, tk: TenantKeys, window: int, window_ms: int,
                          refs: Sequence[HotRef | PartRef]) -> int:
    """``remove_events`` for a sharded tenant: each chunk's events leave their shards (per shard
    atomically), then their positions and ids leave the tenant's slot; the window leaves ``win``
    once every shard reports none of its events left."""
    shards = tk.shards()
    removed = 0
    left = dict.fromkeys(range(len(shards)), -1)
    for start in range(0, len(refs), REMOVE_CHUNK):
        chunk = refs[start:start + REMOVE_CHUNK]
        by: dict[int, list[Any]] = {}
        for r in chunk:
            args = r.args()
            by.setdefault(tk.shard_index(args[2]), []).extend(args)
        for s, args in by.items():
            got, left[s] = await call(redis, REMOVE, shards[s].id_buckets, ["shard", shards[s].base, window,
                                                                     window_ms, "", *args])
            removed += int(got)
        await call(redis, REMOVE, tk.id_buckets, ["coord", tk.base, window, window_ms, "",
                                           *(a for r in chunk for a in r.args())])
    for s, n in left.items():
        if n < 0:  # a shard this removal did not touch: ask it too
            _, left[s] = await call(redis, REMOVE, shards[s].id_buckets,
                                    ["shard", shards[s].base, window, window_ms, ""])
    if all(int(n) == 0 for n in left.values()):
        await call(redis, REMOVE, tk.id_buckets, ["coord", tk.base, window, window_ms, "1"])
    return removed


async def mirror_watermark(redis: RedisClient, tk: TenantKeys, watermark_ms: int) -> int:
    """Raise the Redis mirror of W to ``watermark_ms`` (never lowers it); returns the value now.
    A sharded tenant's shards hold a mirror each (a shard's reads take W with its events,
    atomically); they are raised after the tenant's own, before any removal from them, so no
    shard's mirror is ever above the tenant's."""
    now = int(await _eval(redis, _MAX_SET, [tk.watermark], [watermark_ms]))
    if tk.sharded:
        await asyncio.gather(*(_eval(redis, _MAX_SET, [s.watermark], [now]) for s in tk.shards()))
    return now


def parse_watermark(raw: bytes | str | None) -> int:
    """The stored value of a tenant's ``wm`` key as W (0 when absent: nothing archived). Pure."""
    return int(raw) if raw else 0


async def read_watermark(redis: RedisClient, tk: TenantKeys) -> int:
    raw: Any = await reply(redis.get(tk.watermark))
    return parse_watermark(raw)


async def acquire_lease(redis: RedisClient, tk: TenantKeys, holder: str, ttl_ms: int) -> bool:
    """``SET lease holder NX PX ttl``; also True when ``holder`` already holds it (renewed)."""
    acquired: Any = await reply(redis.set(tk.lease, holder, nx=True, px=ttl_ms))
    if acquired:
        return True
    return await renew_lease(redis, tk, holder, ttl_ms)


async def renew_lease(redis: RedisClient, tk: TenantKeys, holder: str, ttl_ms: int) -> bool:
    """Extend the lease if ``holder`` still holds it; False when it was lost."""
    return bool(await _eval(redis, _RENEW, [tk.lease], [holder, ttl_ms]))


async def release_lease(redis: RedisClient, tk: TenantKeys, holder: str) -> None:
    await _eval(redis, _RELEASE, [tk.lease], [holder])
