"""The hot tier's side of erasing a user (``eventstrata.erasure`` runs the job): tombstones,
and removing every stored event of one user from every hot structure.

A tombstone is the field ``<user part>`` of ``TenantKeys.tombstones`` holding the time (epoch
ms) of the user's erasure: from the moment it is written, the write script drops every event
of that user whose time is before it (``hotstore/write.lua``), atomically with the writes, so
a replay of the topic or a producer sending old events again stores nothing of them. Events
timed after the erasure are stored as usual.

``erase_user`` lists the user's events from their user sets (those of every day the tenant's,
or the user's shard's, ``days`` lists: ``u:<u>:D`` and the later starts its ``us`` field
lists; a user's events are all there) and removes
each from its user set, its type index set, its position's seq value and its
id record, with the archiver's removal script (``handoff.remove_events``, atomic per chunk and
idempotent). The tail stream's entries hold only counts of positions; a position left without
an event makes a tail reader catch up from the query tiers, which no longer hold it.

Coroutines doing network I/O; they raise ``redis.RedisError`` subclasses.
"""

from __future__ import annotations

from typing import Any

from eventstrata.hotstore.handoff import PartRef, remove_events
from eventstrata.hotstore.scripts import MAX_FIELDS, call
from eventstrata.keys import TenantKeys, split_member, user_part, user_set_starts
from eventstrata.redisconn import RedisClient, reply


async def record_tombstone(redis: RedisClient, tk: TenantKeys, user_id: str | None, at_ms: int) -> None:
    """From now on, drop the user's events timed before ``at_ms`` (a later tombstone of the
    same user raises it; an earlier one changes nothing)."""
    prev: Any = await call(redis, MAX_FIELDS, tk.tombstones, [user_part(user_id), str(at_ms)])
    del prev


async def tombstones(redis: RedisClient, tk: TenantKeys) -> dict[str, int]:
    """User part → erasure time of every tombstone of the tenant."""
    raw: Any = await reply(redis.hgetall(tk.tombstones))
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}


async def drop_tombstones(redis: RedisClient, tk: TenantKeys, users: list[str]) -> int:
    """Remove the tombstones of these user parts (their lifetime ended); returns how many."""
    if not users:
        return 0
    n: int = await reply(redis.hdel(tk.tombstones, *users))
    return n


async def user_refs(redis: RedisClient, tk: TenantKeys, user_id: str | None) -> list[PartRef]:
    """Every event of the user stored in the hot tier, in time order."""
    u = user_part(user_id)
    shard = tk.shard_for(u)
    raw_days: Any = await reply(redis.zrange(shard.days, 0, -1))
    days = sorted(int(x) for x in raw_days)
    if not days:
        return []
    registered: Any = await reply(redis.hmget(shard.user_sets, [shard.user_sets_field(u, d) for d in days]))
    pipe = redis.pipeline(transaction=False)  # every set of the user, in time order, one round trip
    for d, field in zip(days, registered, strict=True):
        for start in user_set_starts(d, field):
            pipe.zrange(shard.user_set(u, start), 0, -1, withscores=True)
    refs: list[PartRef] = []
    for members in await pipe.execute():
        for member, score in members:
            eid, rest = split_member(bytes(member))
            type_part, gpos, _ = rest.split(b"|", 2)
            refs.append(PartRef(eid, int(score), u, type_part.decode(), int(gpos)))
    return refs


async def erase_user(redis: RedisClient, tk: TenantKeys, user_id: str | None, window_ms: int) -> int:
    """Remove every hot event of the user (see the module docstring); returns how many bodies
    were removed. Idempotent: a second call after a completed one removes 0."""
    by_window: dict[int, list[PartRef]] = {}
    for r in await user_refs(redis, tk, user_id):
        by_window.setdefault(r.ts - r.ts % window_ms, []).append(r)
    removed = 0
    for window, refs in sorted(by_window.items()):
        removed += await remove_events(redis, tk, window, window_ms, refs)
    return removed
