"""``MemoryHotStore``: the hot tier's write and read contract in memory (no network).

``tests/integration/test_hotstore_contract.py`` checks that it answers every read as Redis
does; these tests pin the contract itself, so a change of either shows here first."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.handoff import HotRef
from eventstrata.hotstore.memory import MemoryHotStore
from eventstrata.hotstore.read import Sources
from eventstrata.hotstore.tailentry import Announcement
from eventstrata.keys import encode_part, user_part
from eventstrata.model import Event

T0 = 1_796_000_000_000
CODEC = BodyCodec()


def ev(i: int, *, tenant: str = "acme", ts: int | None = None, user: str | None = "u1", type_: str = "view",
       stream: str | None = None) -> Event:
    return Event(id=f"e{i}", tenant=tenant, type=type_, timestamp=T0 + i * 1000 if ts is None else ts,
                 received_at=T0, format="native", user_id=user, stream_id=stream, data={"i": i})


async def test_a_redelivery_stores_nothing_announces_nothing_and_keeps_the_first_positions() -> None:
    store = MemoryHotStore(chunk_max=2)
    first = await store.write([ev(1, stream="s"), ev(2), ev(3, stream="s")])
    assert (first.stored, first.duplicates) == (3, 0)
    assert first.positions == ((1, 1), (2, None), (3, 2))
    # two chunks of at most 2 events: two announcements
    assert (await store.announced_after("acme", 0, count=10))[0] == [Announcement(1, 2), Announcement(3, 3)]
    changed = replace(ev(2), data={"other": True})
    again = await store.write([ev(3, stream="s"), changed, ev(4, stream="s")])
    assert (again.stored, again.duplicates) == (1, 2)
    assert again.positions == ((3, 2), (2, None), (4, 3))
    assert (await store.announced_after("acme", 3, count=10))[0] == [Announcement(4, 4)]
    (row,) = await store.rows("acme", ["e2"])
    assert row is not None and CODEC.stored_event(row.body, row.ref, row.id, row.ts).data == {"i": 2}


async def test_tenants_are_apart() -> None:
    store = MemoryHotStore()
    await store.write([ev(1), ev(2, tenant="other"), ev(3, tenant="other")])
    assert await store.last_position("acme") == 1
    assert await store.last_position("other") == 2
    assert await store.rows("acme", ["e2"]) == [None]
    assert (await store.count("acme", Sources("a"), lo=0, hi=None))[1] == 1


async def test_scans_order_by_time_then_id_and_continue_after_the_boundary() -> None:
    store = MemoryHotStore()
    events = [ev(i, ts=T0 + (i % 3) * 1000, user=("u1", "u2")[i % 2], type_=("view", "buy")[i % 3 == 0])
              for i in range(12)]
    await store.write(events)
    for src, keep in ((Sources("a"), lambda e: True),
                      (Sources("u", ((user_part("u2"),),)), lambda e: e.user_id == "u2"),
                      (Sources("t", ((encode_part("buy"),),)), lambda e: e.type == "buy"),
                      (Sources("ut", ((user_part("u1"), encode_part("view")),)),
                       lambda e: e.user_id == "u1" and e.type == "view")):
        for order in ("asc", "desc"):
            want = [e.id for e in sorted(filter(keep, events), key=lambda e: (e.timestamp, e.id.encode()),
                                         reverse=order == "desc")]
            got: list[str] = []
            after = None
            while True:
                r = await store.scan("acme", src, lo=0, hi=None, order=order, after=after, limit=5)
                got += [row.id for row in r.rows]
                if r.complete:
                    break
                assert r.boundary == (r.rows[-1].ts, r.rows[-1].id)
                after = r.boundary
            assert got == want, (src, order)


async def test_the_watermark_clamps_a_first_read_and_removal_forgets_the_ids() -> None:
    store = MemoryHotStore()
    await store.write([ev(i) for i in range(1, 11)])
    assert await store.mirror_watermark("acme", T0 + 5000) == T0 + 5000
    assert await store.mirror_watermark("acme", T0) == T0 + 5000  # never lowered
    r = await store.scan("acme", Sources("a"), lo=0, hi=None, order="asc", after=None, limit=100,
                         first=True, then_w=True)
    assert [row.id for row in r.rows] == [f"e{i}" for i in range(5, 11)]
    assert (r.w, r.w_after) == (T0 + 5000, T0 + 5000)
    assert await store.count("acme", Sources("a"), lo=0, hi=None, clamp=True) == (T0 + 5000, 6, {})
    refs = [HotRef(f"e{i}", T0 + i * 1000, "u1", "view", i) for i in (1, 2, 2)]
    assert await store.windows("acme") == [T0 - T0 % 3_600_000]
    assert await store.remove_events("acme", T0 - T0 % 3_600_000, 3_600_000, refs) == 2
    assert [s.gpos for s in await store.by_position("acme", after=None, order="asc", limit=3)] == [3, 4, 5]
    assert (await store.write([ev(1)])).positions == ((11, None),)  # forgotten: stored again


async def test_counts_and_buckets() -> None:
    store = MemoryHotStore()
    await store.write([ev(i, ts=T0 + i * 600_000) for i in range(10)])  # one every 10 minutes
    w, total, buckets = await store.count("acme", Sources("a"), lo=T0 + 1, hi=T0 + 3_600_000, bucket_ms=1_800_000)
    assert (w, total) == (0, 5)
    assert sum(buckets.values()) == 5 and all(b % 1_800_000 == 0 for b in buckets)


async def test_by_position_reads_a_range_both_ways() -> None:
    store = MemoryHotStore()
    await store.write([ev(i) for i in range(1, 21)])
    got = await store.by_position("acme", after=15, order="desc", limit=4, least=10)
    assert [s.gpos for s in got] == [14, 13, 12, 11]
    assert all(s.row is not None and s.row.id == s.id for s in got)
    got = await store.by_position("acme", after=None, order="asc", limit=100, least=18, greatest=19)
    assert [s.gpos for s in got] == [18, 19]


async def test_offsets_are_max_set_but_stay_below_a_record_that_lost_writes() -> None:
    store = MemoryHotStore()
    res = await store.write([ev(1)], covers=[("t|0", 10)])
    assert res.recorded == {("acme", "t|0"): None}
    await store.write([ev(2)], covers=[("t|0", 7)])  # never lowered
    assert await store.read_offsets(["t|0"]) == {("acme", "t|0"): 10}
    # the writer expects at least 12 (it saw that acknowledged): 10 means writes were lost
    prev = await store.record_offsets(["acme"], [("t|0", 20)], expected={("acme", "t|0"): 12})
    assert prev == {("acme", "t|0"): 10}
    assert await store.read_offsets(["t|0"]) == {("acme", "t|0"): 10}
    assert await store.mark_lineage([("t|0", 5)]) == {"t|0": None}
    assert await store.read_lineage(["t|0", "t|1"]) == {"t|0": 5, "t|1": None}


async def test_an_event_with_positions_is_refused() -> None:
    with pytest.raises(ValueError, match="already carries positions"):
        await MemoryHotStore().write([ev(1).with_positions(1, None)])


async def test_a_blocked_read_of_the_tail_wakes_on_a_write_and_times_out_without_one() -> None:
    store = MemoryHotStore()
    assert await store.announced_after("acme", 0, count=10, block_ms=20) == ([], [])
    waiting = asyncio.create_task(store.announced_after("acme", 0, count=10, block_ms=5000))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await store.write([ev(1), ev(2)])
    assert await asyncio.wait_for(waiting, 1) == ([Announcement(1, 2)], [])
    assert await store.last_announced("acme") == 2
    assert await store.first_announced("acme") == 1


async def test_the_tail_keeps_the_newest_positions() -> None:
    store = MemoryHotStore(tail_maxlen=5, chunk_max=2)
    await store.write([ev(i) for i in range(1, 11)])
    assert await store.first_announced("acme") == 5  # entries (5, 6) .. (9, 10) cover the newest 5


async def test_the_archiver_lease_has_one_holder_until_it_expires() -> None:
    now = [100.0]
    store = MemoryHotStore(clock=lambda: now[0])
    assert await store.acquire_lease("acme", "a", 1000)
    assert not await store.acquire_lease("acme", "b", 1000)
    assert await store.acquire_lease("other", "b", 1000)
    assert await store.renew_lease("acme", "a", 1000) and not await store.renew_lease("acme", "b", 1000)
    now[0] += 1.5  # expired
    assert not await store.renew_lease("acme", "a", 1000)
    assert await store.acquire_lease("acme", "b", 1000)
    await store.release_lease("acme", "a")  # not its holder: nothing happens
    assert not await store.acquire_lease("acme", "a", 1000)
    await store.release_lease("acme", "b")
    assert await store.acquire_lease("acme", "a", 1000)


async def test_stream_positions_count_per_store_and_stream() -> None:
    store = MemoryHotStore()
    events = [replace(ev(i, stream=("s", "t")[i % 2]), store=("default", "b", "c")[i % 3]) for i in range(12)]
    res = await store.write(events)
    by_stream: dict[tuple[str, str | None], list[int | None]] = {}
    for e, (_, spos) in zip(events, res.positions, strict=True):
        by_stream.setdefault((e.store, e.stream_id), []).append(spos)
    assert len(by_stream) == 6
    assert all(p == [1, 2] for p in by_stream.values()), by_stream
