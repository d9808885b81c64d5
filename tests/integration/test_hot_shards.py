"""One tenant's hot data spread over shards (``EVENTSTRATA_HOT_SHARDS``) on the real 3-master
Redis Cluster: the memory of one tenant divides over the masters, every read answers exactly,
a redelivery changes no byte, and a write that stopped between its steps is completed by the
retry with each event stored and announced once, in position order."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from ingest_util import BASE_TS, hot_inventory, tail_events

from eventstrata.config import Settings
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.read import Sources, count, read_ids, read_seq, scan
from eventstrata.hotstore.writer import Chunk, RedisHotWriter
from eventstrata.keys import KeyLayout, TenantKeys, encode_part, user_part
from eventstrata.model import Event
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

TENANT = "big"
SHARDS = 12


def events(n: int, *, users: int = 200, start: int = 0, user_prefix: str = "user") -> list[Event]:
    return [
        Event(id=f"s-{i}", tenant=TENANT, type=("view", "click", "buy")[i % 3],
              timestamp=BASE_TS + (i * 7_919) % (3 * 86_400_000), received_at=BASE_TS, format="native",
              user_id=f"{user_prefix} {i % users}" if i % 11 else None, stream_id=f"st-{i % 4}" if i % 2 else None,
              data={"i": i, "pad": "x" * 200})
        for i in range(start, start + n)
    ]


async def all_keys(redis: Any, lay: KeyLayout) -> list[str]:
    tk = lay.tenant(TENANT)
    out: list[str] = []
    for base in tk.bases:
        out += [k.decode() async for k in redis.scan_iter(match=f"{base}:*", count=1000)]
    return sorted(out)


async def walk(redis: Any, lay: KeyLayout, src: Sources, order: str, limit: int) -> list[str]:
    tk = lay.tenant(TENANT)
    out: list[str] = []
    after: tuple[int, str] | None = None
    while True:
        r = await scan(redis, tk, src, lo=0, hi=None, order=order, after=after, limit=limit)
        out += [row.id for row in r.rows]
        if r.complete:
            return out
        assert r.boundary is not None
        after = r.boundary


def by_time(evs: list[Event], order: str) -> list[str]:
    return [e.id for e in sorted(evs, key=lambda e: (e.timestamp, e.id.encode()), reverse=order == "desc")]


class StoppingWriter(RedisHotWriter):
    """A writer whose first call of write.lua's operation ``stop_at`` fails (a pipeline of calls
    counts as one): a write that stops between its steps."""

    def __init__(self, *args: Any, stop_at: str | None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.stop_at = stop_at

    async def _run(self, chunks: list[Chunk]) -> list[tuple[Chunk, Any]]:
        if chunks and chunks[0].args[0] == self.stop_at:
            self.stop_at = None
            raise ConnectionError("stopped here by the test")
        return await super()._run(chunks)


@dataclass
class Sharded:
    """A test's settings (the 3-master Cluster, ``SHARDS`` shards), client, layout, tenant keys."""

    settings: Settings
    redis: Any
    lay: KeyLayout
    tk: TenantKeys

    def writer(self, chunk_max: int = 100, stop_at: str | None = None) -> StoppingWriter:
        return StoppingWriter(self.redis, self.lay, window_ms=self.settings.window_ms, tail_maxlen=100_000,
                              chunk_max=chunk_max, stop_at=stop_at)


@pytest.fixture
async def sharded(settings_factory: Any) -> AsyncIterator[Sharded]:
    s = settings_factory(redis_cluster=True, hot_shards=SHARDS)
    redis: Any = connect_redis(s)
    yield Sharded(s, redis, s.layout(), s.layout().tenant(TENANT))
    await redis.aclose()


async def test_one_tenant_spreads_over_the_masters_and_reads_exactly(sharded: Sharded) -> None:
    s, redis, lay, tk = sharded.settings, sharded.redis, sharded.lay, sharded.tk
    w = RedisHotWriter(redis, lay, window_ms=s.window_ms, tail_maxlen=100_000, chunk_max=200)
    evs = events(3000)
    res = await w.write(evs)
    assert res.stored == 3000
    assert sorted(g for g, _ in res.positions) == list(range(1, 3001))
    # memory: every master holds part of the tenant, none more than half
    per_node: Counter[str] = Counter()
    for k in await all_keys(redis, lay):
        node = redis.get_node_from_key(k)
        per_node[node.name] += int(await redis.memory_usage(k, samples=0) or 0)
    masters = {n.name for n in redis.get_primaries()}
    assert set(per_node) == masters, per_node
    assert max(per_node.values()) <= sum(per_node.values()) / 2, per_node
    # a user's events live in one shard; each shard's keys in one slot
    inv = await hot_inventory(redis, tk)
    assert sorted(inv.bodies) == sorted(e.id for e in evs) == sorted(inv.by_type) == sorted(inv.tenant_wide)
    for base in tk.shard_bases:
        slots = {redis.keyslot(k) for k in await all_keys(redis, lay) if k.startswith(base + ":")}
        assert len(slots) == 1
    for e in evs[:50]:
        u = user_part(e.user_id)
        assert await redis.exists(tk.shard_for(u).user_set(u, e.timestamp - e.timestamp % 86_400_000))
    # reads: walks in both orders at page sizes that cut across shards, counts, ids, positions
    for order in ("asc", "desc"):
        assert await walk(redis, lay, Sources("a"), order, 37) == by_time(evs, order)
        clicks = [e for e in evs if e.type == "click"]
        assert await walk(redis, lay, Sources("t", ((encode_part("click"),),)), order, 50) == by_time(clicks, order)
    two = ["user 3", "user 150"]
    mine = [e for e in evs if e.user_id in two]
    assert await walk(redis, lay, Sources("u", tuple((user_part(u),) for u in two)), "desc", 7) == by_time(mine, "desc")
    w_after, total, buckets = await count(redis, tk, Sources("a"), lo=0, hi=None, bucket_ms=86_400_000)
    assert (w_after, total, sum(buckets.values())) == (0, 3000, 3000)
    # every event, counted from the hour counts (whole hours) and the type sets (the edges)
    tss = sorted(e.timestamp for e in evs)
    for lo, hi in ((0, None), (tss[10] + 1, tss[-10]), (tss[5], tss[6] + 1)):
        expected = sum(1 for e in evs if e.timestamp >= lo and (hi is None or e.timestamp < hi))
        assert (await count(redis, tk, Sources("a"), lo=lo, hi=hi))[1] == expected, (lo, hi)
    stored, _ = await read_ids(redis, tk, [e.id for e in evs[::97]] + ["absent"])
    codec = BodyCodec()
    got = [codec.stored_event(r.body, r.ref, r.id, r.ts) for r in stored[:-1] if r is not None]
    assert [e.id for e in got] == [e.id for e in evs[::97]] and stored[-1] is None
    assert [(e.global_position, e.stream_position) for e in got] == list(res.positions[::97])
    seq = await read_seq(redis, tk, after=100, order="asc", limit=500)
    assert [r.gpos for r in seq] == list(range(101, 601)) and all(r.row is not None for r in seq)
    assert await tail_events(redis, tk.tail) == 3000


async def test_redelivery_changes_no_byte_and_adds_no_tail_entry(sharded: Sharded) -> None:
    redis, lay = sharded.redis, sharded.lay
    w = sharded.writer()
    evs = events(600)
    await w.write(evs)

    async def dump() -> dict[str, bytes]:
        return {k: await redis.dump(k) for k in await all_keys(redis, lay)}

    before = await dump()
    changed = [Event(id=e.id, tenant=TENANT, type="other", timestamp=e.timestamp + 5, received_at=BASE_TS + 1,
                     format="native", user_id="someone else", data={"new": True}) for e in evs[::3]]
    again = await w.write(evs + changed)
    assert again.stored == 0 and again.duplicates == 600 + len(changed)
    assert await dump() == before


@pytest.mark.parametrize("step", ["store", "confirm"], ids=["after-reserve", "after-store"])
async def test_a_write_stopped_between_its_steps_is_completed_by_the_retry(sharded: Sharded, step: str) -> None:
    """The first write stops after its reservation (or after the shards stored, before the
    confirm); meanwhile another writer stores newer events of the tenant: they are readable,
    but the tail announces nothing past the stopped write's positions. The retry (what the
    worker's redelivery does) stores each event once, and the tail then announces every
    position once, in order."""
    redis, lay, tk = sharded.redis, sharded.lay, sharded.tk
    first, other = sharded.writer(stop_at=step), sharded.writer()
    a, b = events(250), events(150, start=250)
    with pytest.raises(ConnectionError):
        await first.write(a)
    res_b = await other.write(b)
    assert sorted(g for g, _ in res_b.positions) == list(range(251, 401))
    assert await tail_events(redis, tk.tail) == 0  # positions 1..250 are not confirmed yet
    assert await read_seq(redis, tk, after=0, order="asc", limit=10) == []
    seen = await walk(redis, lay, Sources("a"), "asc", 100)
    assert len(seen) == len(set(seen)) and {e.id for e in b} <= set(seen) <= {e.id for e in a + b}
    if step == "confirm":  # stopped after the shards stored: readable before the tail announces it
        assert seen == by_time(a + b, "asc")
    res_a = await first.write(a)  # the retry
    assert res_a.stored == 0 and sorted(g for g, _ in res_a.positions) == list(range(1, 251))
    inv = await hot_inventory(redis, tk)
    assert sorted(inv.bodies) == sorted(e.id for e in a + b) == sorted(inv.tenant_wide) == sorted(inv.by_type)
    assert await tail_events(redis, tk.tail) == 400
    seq = await read_seq(redis, tk, after=0, order="asc", limit=1000)
    assert [r.gpos for r in seq] == list(range(1, 401)) and all(r.row is not None for r in seq)


async def test_a_pending_event_redelivered_with_another_user_moves(sharded: Sharded) -> None:
    """A reservation whose write stopped after the shards stored it, then a delivery of the same
    ids with other users and times (a producer's resend): the event is stored once, where the
    new delivery says, and nothing is left at the old place."""
    redis, lay, tk = sharded.redis, sharded.lay, sharded.tk
    w = sharded.writer(stop_at="confirm")
    a = events(120)
    with pytest.raises(ConnectionError):
        await w.write(a)
    moved = [Event(id=e.id, tenant=TENANT, type=e.type, timestamp=e.timestamp + 1, received_at=BASE_TS,
                   format="native", user_id=f"mover {i % 9}", data={"moved": True}) for i, e in enumerate(a)]
    res = await w.write(moved)
    assert res.stored == 0
    inv = await hot_inventory(redis, tk)
    assert sorted(inv.bodies) == sorted(e.id for e in a) == sorted(inv.tenant_wide) == sorted(inv.by_type)
    stored, _ = await read_ids(redis, tk, [e.id for e in moved])
    codec = BodyCodec()
    assert [codec.stored_event(r.body, r.ref, r.id, r.ts).user_id for r in stored if r is not None] == [
        e.user_id for e in moved]
    assert await walk(redis, lay, Sources("u", ((user_part("mover 3"),),)), "asc", 10) == by_time(
        [e for e in moved if e.user_id == "mover 3"], "asc")
    assert await tail_events(redis, tk.tail) == 120
