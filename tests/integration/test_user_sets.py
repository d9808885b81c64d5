"""A user's busy day is cut into small sets: none holds more than ``user_set_max`` members
(except one millisecond that holds more on its own), the registry ``us`` lists the cuts, every
read (pages in both orders with cursors, user+type pages, counts with buckets, get by id, reads
by position, type pages) follows them, and removing the day drops its registry field. Real
Redis, one slot and three shards."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from eventstrata.hotstore import read as hot_read
from eventstrata.hotstore.handoff import HotRef, remove_events
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import (
    DAY_MS,
    KeyLayout,
    TenantKeys,
    encode_part,
    split_member,
    user_part,
    user_set_starts,
)
from eventstrata.model import Event

pytestmark = pytest.mark.integration

HOUR = 3_600_000
CAP = 8
BUSY, QUIET = "busy@example.com", "quiet"


def _event(i: int, user: str, ts: int, rng: random.Random) -> Event:
    return Event(id=f"ev-{i:05d}", tenant="acme", type=rng.choice(("view", "click", "buy")), timestamp=ts,
                 received_at=ts + 3, format="native", user_id=user, data={"i": i})


def _events(day: int) -> list[list[Event]]:
    """Write batches: the busy user's events in random order, then in time order (appends
    after every member), then 3 * CAP in one millisecond; a quiet user's few."""
    rng = random.Random(7)
    batches: list[list[Event]] = []
    i = 0
    for _ in range(6):  # random order, all over the day's first 20 hours
        batch = []
        for _ in range(70):
            batch.append(_event(i, BUSY, day + rng.randrange(20 * HOUR), rng))
            i += 1
        batches.append(batch)
    for k in range(5):  # appends: each batch after everything stored
        batches.append([_event(i + j, BUSY, day + 20 * HOUR + k * 60_000 + j * 100, rng) for j in range(25)])
        i += 25
    batches.append([_event(i + j, BUSY, day + 22 * HOUR, rng) for j in range(3 * CAP)])
    i += 3 * CAP
    batches.append([_event(i + j, QUIET, day + j * HOUR, rng) for j in range(5)])
    return batches


async def _user_sets(r: Any, tk: TenantKeys, user: str, day: int) -> list[tuple[int, list[tuple[bytes, float]]]]:
    """(start, members with scores) of every user set of ``user``'s day, checked against the
    registry: each set's members lie in its time range."""
    shard = tk.shard_for(user_part(user))
    u = user_part(user)
    starts = user_set_starts(day, await r.hget(shard.user_sets, shard.user_sets_field(u, day)))
    out = []
    for j, s in enumerate(starts):
        members = await r.zrange(shard.user_set(u, s), 0, -1, withscores=True)
        end = starts[j + 1] if j + 1 < len(starts) else day + DAY_MS
        assert all(s <= sc < end for _, sc in members), (s, end)
        out.append((s, members))
    keys = [k async for k in r.scan_iter(f"{shard.base}:u:{u}:*")]
    assert sorted(int(k.rsplit(b":", 1)[1]) for k in keys) == [s for s, m in out if m]
    return out


async def _walk(r: Any, tk: TenantKeys, src: hot_read.Sources, order: str, lo: int, hi: int,
                limit: int) -> list[str]:
    got: list[str] = []
    after = None
    while True:
        res = await hot_read.scan(r, tk, src, lo=lo, hi=hi, order=order, after=after, limit=limit,
                                  examine=50)
        got += [row.id for row in res.rows]
        if res.complete:
            return got
        assert res.boundary is not None
        after = res.boundary


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_a_busy_day_is_cut_and_every_read_follows_the_cuts(redis_url: str, key_prefix: str,
                                                                 shards: int) -> None:
    r = Redis.from_url(redis_url)
    layout = KeyLayout(key_prefix, shards, user_set_max=CAP)
    tk = layout.tenant("acme")
    w = RedisHotWriter(r, layout, window_ms=HOUR, tail_maxlen=100_000)
    day = (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
    stored: dict[str, Event] = {}
    batches = _events(day)
    for batch in batches:
        res = await w.write(batch)
        assert res.stored == len(batch)
        stored.update({e.id: e.with_positions(*p) for e, p in zip(batch, res.positions, strict=True)})
    busy = sorted((e for e in stored.values() if e.user_id == BUSY), key=lambda e: (e.timestamp, e.id))

    # the layout: small sets, in time order, the registry naming each one
    sets = await _user_sets(r, tk, BUSY, day)
    assert len(sets) > len(busy) // CAP
    big = [(s, m) for s, m in sets if len(m) > CAP]
    assert [len({sc for _, sc in m}) for _, m in big] == [1]  # only the one millisecond of 3 * CAP
    assert sum(len(m) for _, m in sets) == len(busy)
    assert sorted(split_member(m)[0] for _, ms in sets for m, _ in ms) == sorted(e.id for e in busy)
    assert [len(m) for _, m in await _user_sets(r, tk, QUIET, day)] == [5]  # never cut: one set, no field

    # every read follows the cuts
    u = user_part(BUSY)
    want = [e.id for e in busy]
    for limit in (1, 7, 50):
        assert await _walk(r, tk, hot_read.Sources("u", ((u,),)), "asc", day, day + DAY_MS, limit) == want
        assert await _walk(r, tk, hot_read.Sources("u", ((u,),)), "desc", day, day + DAY_MS, limit) == want[::-1]
    lo, hi = day + 5 * HOUR + 17, day + 21 * HOUR
    in_range = [e for e in busy if lo <= e.timestamp < hi]
    assert await _walk(r, tk, hot_read.Sources("u", ((u,),)), "desc", lo, hi, 9) == [e.id for e in in_range][::-1]
    both = hot_read.Sources("u", ((u,), (user_part(QUIET),)))
    assert await _walk(r, tk, both, "asc", day, day + DAY_MS, 11) == [
        e.id for e in sorted(stored.values(), key=lambda e: (e.timestamp, e.id))]
    t = encode_part("buy")
    buys = [e.id for e in busy if e.type == "buy"]
    assert await _walk(r, tk, hot_read.Sources("ut", ((u, t),)), "desc", day, day + DAY_MS, 6) == buys[::-1]
    assert await _walk(r, tk, hot_read.Sources("t", ((t,),)), "asc", day, day + DAY_MS, 13) == [
        e.id for e in sorted(stored.values(), key=lambda e: (e.timestamp, e.id)) if e.type == "buy"]
    _, total, buckets = await hot_read.count(r, tk, hot_read.Sources("u", ((u,),)), lo=lo, hi=hi, bucket_ms=HOUR)
    assert total == len(in_range) and sum(buckets.values()) == total
    _, n_buy, _ = await hot_read.count(r, tk, hot_read.Sources("ut", ((u, t),)), lo=day, hi=day + DAY_MS)
    assert n_buy == len(buys)
    got = await hot_read.read_events(r, tk, list(stored), codec=w._codec)
    assert got == list(stored.values())
    by_pos = await hot_read.read_seq(r, tk, after=None, order="asc", limit=10_000)
    assert [row.id for row in by_pos] == [e.id for e in sorted(stored.values(), key=lambda e: e.global_position or 0)]

    # a redelivery changes nothing; removing every window of the day drops the registry field
    before = await r.hgetall(tk.shard_for(u).user_sets)
    assert (await w.write(batches[0] + batches[-2])).stored == 0
    assert await r.hgetall(tk.shard_for(u).user_sets) == before and before
    by_window: dict[int, list[HotRef]] = {}
    for e in stored.values():
        assert e.global_position is not None
        by_window.setdefault(e.timestamp - e.timestamp % HOUR, []).append(
            HotRef(e.id, e.timestamp, e.user_id, e.type, e.global_position))
    removed = 0
    for window, refs in sorted(by_window.items()):
        removed += await remove_events(r, tk, window, HOUR, refs)
    assert removed == len(stored)
    for base in tk.bases:
        assert [k async for k in r.scan_iter(f"{base}:u:*")] == []
        assert not await r.exists(f"{base}:us")
    await r.aclose()


async def test_default_cap_keeps_every_set_a_listpack(redis_url: str, key_prefix: str) -> None:
    """With the default cap (Redis' default zset-max-listpack-entries), 1,000 events of one
    user in one day, in random order, end up in listpack-encoded sets only."""
    r = Redis.from_url(redis_url)
    layout = KeyLayout(key_prefix)
    w = RedisHotWriter(r, layout, window_ms=HOUR, tail_maxlen=100_000)
    day = (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
    rng = random.Random(3)
    events = [_event(i, BUSY, day + rng.randrange(DAY_MS), rng) for i in range(1000)]
    for k in range(0, 1000, 250):
        await w.write(events[k:k + 250])
    tk = layout.tenant("acme")
    sets = await _user_sets(r, tk, BUSY, day)
    assert len(sets) >= 1000 // layout.user_set_max
    assert sum(len(m) for _, m in sets) == 1000
    for s, _ in sets:
        assert await r.object("encoding", tk.user_set(user_part(BUSY), s)) == b"listpack"
    await r.aclose()
