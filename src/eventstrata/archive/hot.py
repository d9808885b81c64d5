"""The archiver's Redis side: list and read hot windows, mirror the watermark, hold the lease,
remove archived events. Every key name comes from ``keys.TenantKeys``; every multi-key
operation touches keys of one tenant only (hash tag ``{T}``), so it also works on a cluster.

All functions are coroutines doing network I/O; they raise ``redis.RedisError`` subclasses on
connection problems (the caller retries the whole pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventstrata.keys import TenantKeys, member
from eventstrata.redisconn import RedisClient, reply

# Chunk sizes: no Redis command touches more than this many members.
SCAN_COUNT = 1000
REMOVE_CHUNK = 250  # events per removal script (≤ 4 ZREM + 2 HDEL each, one member per call)

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

# KEYS: ids, seq, win, bodies(W), all, then the secondary index keys referenced below.
# ARGV: W, then per event 5 values: id, member, i_user, i_type, i_user_type (1-based KEYS index
# of that index key, 0 = none). Atomic per chunk, so an ingest script never sees an event half
# removed. Removes the window from `win` once its body hash is empty (Redis drops the empty hash).
_REMOVE = """
local n = 0
for i = 2, #ARGV, 5 do
  local id, m = ARGV[i], ARGV[i + 1]
  for j = 2, 4 do
    local k = tonumber(ARGV[i + j])
    if k > 0 then redis.call('ZREM', KEYS[k], m) end
  end
  redis.call('ZREM', KEYS[5], m)
  redis.call('ZREM', KEYS[2], m)
  redis.call('HDEL', KEYS[1], id)
  n = n + redis.call('HDEL', KEYS[4], id)
end
if redis.call('HLEN', KEYS[4]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return n
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


async def tenants(redis: RedisClient, tenants_key: str) -> list[str]:
    """Every tenant in ``es:tenants``, sorted."""
    raw: Any = await reply(redis.smembers(tenants_key))
    return sorted(m.decode() for m in raw)


async def hot_windows(redis: RedisClient, tk: TenantKeys) -> list[int]:
    """Window starts listed in the tenant's ``win`` zset, ascending."""
    raw: Any = await reply(redis.zrange(tk.windows, 0, -1))
    return sorted(int(m) for m in raw)


StoredBody = tuple[bytes, bytes | None]
"""A stored body and its ``ids`` record (``ts|gpos|spos``; None when absent)."""


async def read_window(redis: RedisClient, tk: TenantKeys, window: int) -> dict[str, StoredBody]:
    """Every stored body of window ``window`` with its ``ids`` record (``ts|gpos|spos``, None if
    absent): id → (body, ref). Bodies are read with HSCAN in chunks of ``SCAN_COUNT``, each
    chunk's refs with one HMGET."""
    out: dict[str, StoredBody] = {}
    cursor = 0
    while True:
        scanned: Any = await reply(redis.hscan(tk.bodies(window), cursor, count=SCAN_COUNT))
        cursor, chunk = scanned
        if chunk:
            fields = list(chunk)
            refs: Any = await reply(redis.hmget(tk.ids, fields))
            for k, ref in zip(fields, refs, strict=True):
                out[k.decode("utf-8", "surrogatepass")] = (chunk[k], ref)
        if cursor == 0:
            return out


async def remove_events(redis: RedisClient, tk: TenantKeys, window: int, refs: Sequence[HotRef]) -> int:
    """Remove archived events of ``window`` from every hot structure (body, the 4 index zsets, ``ids``,
    ``seq``), ``REMOVE_CHUNK`` events per atomic script; drop the window from ``win`` once its
    body hash is empty. Idempotent. Returns the number of bodies deleted."""
    removed = 0
    if not refs:
        await _eval(redis, _REMOVE, [tk.ids, tk.seq, tk.windows, tk.bodies(window), tk.all], [window])
        return 0
    for start in range(0, len(refs), REMOVE_CHUNK):
        chunk = refs[start:start + REMOVE_CHUNK]
        keys = [tk.ids, tk.seq, tk.windows, tk.bodies(window), tk.all]
        index: dict[str, int] = {}

        def slot(k: str, keys: list[str] = keys, index: dict[str, int] = index) -> int:
            if k not in index:
                keys.append(k)
                index[k] = len(keys)
            return index[k]

        args: list[Any] = [window]
        for r in chunk:
            iu = slot(tk.by_user(r.user_id)) if r.user_id is not None else 0
            it = slot(tk.by_type(r.type))
            iut = slot(tk.by_user_type(r.user_id, r.type)) if r.user_id is not None else 0
            args += [r.id, member(r.ts, r.id), iu, it, iut]
        removed += int(await _eval(redis, _REMOVE, keys, args))
    return removed


async def mirror_watermark(redis: RedisClient, tk: TenantKeys, watermark_ms: int) -> int:
    """Raise the Redis mirror of W to ``watermark_ms`` (never lowers it); returns the value now."""
    return int(await _eval(redis, _MAX_SET, [tk.watermark], [watermark_ms]))


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
