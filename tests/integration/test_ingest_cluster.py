"""The hot write and read against a real 3-master Redis Cluster: each tenant's keys in its own
slot, positions and dedupe as on a single node, NOSCRIPT falls back to EVAL (both scripts)."""

from __future__ import annotations

import pytest
from ingest_util import BASE_TS, stored_ids, tail_events
from redis.asyncio.cluster import RedisCluster

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.read import Sources, count, read_ids, scan
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import KeyLayout, day_of, encode_part, short_member, type_set_of, user_part
from eventstrata.model import Event
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

TENANTS = ("acme", "globex", "initech", "umbrella", "t-5", "t.6")


def events(n: int) -> list[Event]:
    return [
        Event(id=f"c-{i}", tenant=TENANTS[i % len(TENANTS)], type=("x", "y:{z}")[i % 2],
              timestamp=BASE_TS + i * 60_000, received_at=BASE_TS, format="native",
              user_id=f"user {{{i % 5}}}" if i % 4 else None, stream_id=f"st-{i % 3}" if i % 2 else None)
        for i in range(n)
    ]


async def test_cluster_write_dedupe_positions_and_slots(settings_factory):
    s = settings_factory(redis_cluster=True)
    redis = connect_redis(s)
    assert isinstance(redis, RedisCluster)
    lay = KeyLayout(s.key_prefix)
    w = RedisHotWriter(redis, lay, window_ms=s.window_ms, tail_maxlen=1000, chunk_max=50)
    evs = events(1200)
    first = await w.write(evs)
    assert first.stored == 1200 and first.duplicates == 0
    # replay after a script flush on every node: NOSCRIPT -> EVAL fallback, nothing new
    await redis.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.ALL_NODES)
    second = await w.write(evs + evs[:10])
    assert second.stored == 0 and second.duplicates == 1210
    assert second.positions[:1200] == first.positions
    slots = set()
    for t in TENANTS:
        tk = lay.tenant(t)
        mine = [i for i, e in enumerate(evs) if e.tenant == t]
        assert len(await stored_ids(redis, tk)) == len(mine)
        assert sorted(first.positions[i][0] for i in mine) == list(range(1, len(mine) + 1))
        assert await tail_events(redis, tk.tail) == len(mine)
        e = evs[mine[1]]
        day = day_of(e.timestamp)
        u, ty = user_part(e.user_id), encode_part(e.type)
        keys = [tk.id_buckets, tk.id_bucket(0), tk.gpos, tk.seq_blocks, tk.seq_block(0), tk.tail, tk.windows, tk.user_set(u, day), tk.type_set(ty, type_set_of(e.timestamp)),
                tk.types_of_hour(type_set_of(e.timestamp))]
        assert await redis.zscore(tk.type_set(ty, type_set_of(e.timestamp)), short_member(e.id, u)) == e.timestamp
        if e.stream_id is not None:
            keys.append(tk.spos)
        tenant_slots = {redis.keyslot(k) for k in keys}
        assert len(tenant_slots) == 1
        slots |= tenant_slots
        for k in keys:
            assert await redis.exists(k) == 1, k
    assert len(slots) > 1  # tenants spread over slots
    assert {m.decode() for m in await redis.smembers(lay.tenants)} == set(TENANTS)
    await redis.aclose()


async def test_cluster_read_script_routes_to_the_tenant_slot(settings_factory):
    """read.lua on a Cluster: each tenant's call goes to its slot's node (after a SCRIPT FLUSH,
    through the EVAL fallback); by id it returns the stored events with their positions and
    None for an absent one, and its final GET reads that tenant's key; a first-page scan
    reads W first and clamps the range at it; a count reads W after."""
    s = settings_factory(redis_cluster=True)
    redis = connect_redis(s)
    lay = KeyLayout(s.key_prefix)
    w = RedisHotWriter(redis, lay, window_ms=s.window_ms, tail_maxlen=1000, chunk_max=50)
    evs = events(120)
    res = await w.write(evs)
    await redis.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.ALL_NODES)
    codec = BodyCodec()
    for t in TENANTS:
        tk = lay.tenant(t)
        await redis.set(tk.watermark, f"wm-{t}")
        mine = [i for i, e in enumerate(evs) if e.tenant == t]
        stored, wm = await read_ids(redis, tk, [evs[i].id for i in mine] + ["absent"], then_get=tk.watermark)
        got = [codec.stored_event(r.body, r.ref, r.id, r.ts) if r is not None else None for r in stored]
        assert wm == f"wm-{t}".encode()
        assert got[-1] is None
        for i, e in zip(mine, got, strict=False):
            assert e is not None and e.id == evs[i].id and e.user_id == evs[i].user_id
            assert (e.global_position, e.stream_position) == res.positions[i]
        _, no_get = await read_ids(redis, tk, [evs[mine[0]].id])
        assert no_get is None
        # a first page: W, the range clamped at it, newest first, with bodies
        w = evs[mine[len(mine) // 2]].timestamp
        await redis.set(tk.watermark, w)
        fp = await scan(redis, tk, Sources("a"), lo=0, hi=None, order="desc", after=None, limit=5,
                        first=True, then_w=True)
        newest = sorted((e for e in evs if e.tenant == t and e.timestamp >= w),
                        key=lambda e: (e.timestamp, e.id), reverse=True)[:5]
        assert fp.w == w and fp.w_after == w
        assert [codec.stored_event(r.body, r.ref, r.id, r.ts).id for r in fp.rows if r.body] == [e.id for e in newest]
        above, total, _ = await count(redis, tk, Sources("a"), lo=w, hi=None)
        assert above == w and total == sum(1 for e in evs if e.tenant == t and e.timestamp >= w)
    await redis.aclose()


async def test_cluster_offsets_recorded_in_each_tenants_slot(settings_factory):
    """The offsets a write covers land in every written tenant's own slot, atomically with its
    data; ``record_offsets`` / ``read_offsets`` span the tenants' slots; values never go down."""
    s = settings_factory(redis_cluster=True)
    redis = connect_redis(s)
    lay = KeyLayout(s.key_prefix)
    w = RedisHotWriter(redis, lay, window_ms=s.window_ms, tail_maxlen=1000, chunk_max=50)
    evs = events(300)
    res = await w.write(evs, covers=(("raw|0", 120), ("raw|1", 80)))
    assert res.recorded == {(t, f): None for t in TENANTS for f in ("raw|0", "raw|1")}
    for t in TENANTS:
        tk = lay.tenant(t)
        assert redis.keyslot(tk.offsets) == redis.keyslot(tk.id_buckets)
        assert await redis.hgetall(tk.offsets) == {b"raw|0": b"120", b"raw|1": b"80"}
    again = await w.write(evs[:6], covers=(("raw|0", 100),))  # lower: kept at 120
    assert again.recorded == {(t, "raw|0"): 120 for t in TENANTS}
    prev = await w.record_offsets(["acme", "globex"], (("raw|1", 95), ("raw|2", 4)))
    assert prev == {("acme", "raw|1"): 80, ("acme", "raw|2"): None,
                    ("globex", "raw|1"): 80, ("globex", "raw|2"): None}
    got = await w.read_offsets(["raw|0", "raw|1", "raw|2"])
    assert got[("acme", "raw|1")] == 95 and got[("initech", "raw|1")] == 80
    assert got[("t.6", "raw|2")] is None and got[("globex", "raw|0")] == 120
    assert len(got) == 3 * len(TENANTS)
    # a record below what the writer expects (Redis lost writes) is left where it is, by the
    # write and by the refresh, so it keeps pointing before the lost records; others move on
    lost = {("acme", "raw|0"): 500, ("globex", "raw|0"): 120}
    res = await w.write([e for e in evs if e.tenant in ("acme", "globex")][:8], covers=(("raw|0", 600),),
                        expected=lost)
    assert res.recorded == {("acme", "raw|0"): 120, ("globex", "raw|0"): 120}
    assert await redis.hget(lay.tenant("acme").offsets, "raw|0") == b"120"
    assert await redis.hget(lay.tenant("globex").offsets, "raw|0") == b"600"
    prev = await w.record_offsets(["acme", "initech"], (("raw|0", 700), ("raw|2", 9)),
                                  {("acme", "raw|0"): 500, ("initech", "raw|2"): 4})
    assert prev == {("acme", "raw|0"): 120, ("acme", "raw|2"): 4,
                    ("initech", "raw|0"): 120, ("initech", "raw|2"): None}
    got = await w.read_offsets(["raw|0", "raw|2"])
    assert got[("acme", "raw|0")] == 120 and got[("acme", "raw|2")] == 9
    assert got[("initech", "raw|0")] == 700 and got[("initech", "raw|2")] is None  # gone: stays gone
    await redis.aclose()
