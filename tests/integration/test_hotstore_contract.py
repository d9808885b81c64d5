"""The in-memory hot store answers every read as Redis does.

``MemoryHotStore`` is what the unit tests of the query engine and the live tail run on, so it
must keep the contract of the Redis hot tier (``hotstore.interface``). The same events -- several
users, types, days and streams, ids with spaces, accents and NUL bytes, equal times, and
redeliveries with the same and with other payloads -- are written through ``RedisHotWriter``
and through ``MemoryHotStore``; then hundreds of random reads (scans of every index family in
both orders from random cursors and ranges, counts with buckets, reads by id and by position,
the tail's announcements) must answer alike, before and after the archiver moved the oldest
windows away. On one Redis slot and on a tenant spread over 3 shards of the Redis Cluster.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import pytest
from ingest_util import BASE_TS

from eventstrata.config import Settings
from eventstrata.hotstore import handoff
from eventstrata.hotstore.interface import HotStore, RedisHotStore
from eventstrata.hotstore.memory import MemoryHotStore
from eventstrata.hotstore.read import Row, ScanResult, Sources
from eventstrata.hotstore.tailentry import Announcement
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import encode_part, user_part
from eventstrata.model import Event
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

T = TypeVar("T")
TENANT = "acme"
HOUR = 3_600_000
DAY = 24 * HOUR
USERS = ("alice", "bob", "c d", "ünï", None, "x|y")
TYPES = ("view", "click", "buy", "a b")
CHUNK = 100


def make_events(rng: random.Random, n: int, *, tenant: str = TENANT, start: int = 0) -> list[Event]:
    times = [BASE_TS - rng.randrange(3 * DAY) for _ in range(n // 3)]  # shared by several: ties
    out = []
    for i in range(start, start + n):
        eid = rng.choice((f"e{i}", f"é {i}", f"n\0{i}", f"{i:06d}"))
        out.append(Event(id=eid, tenant=tenant, type=rng.choice(TYPES),
                         timestamp=rng.choice(times) if rng.random() < 0.4 else BASE_TS - rng.randrange(3 * DAY),
                         received_at=BASE_TS, format="native", user_id=rng.choice(USERS),
                         stream_id=rng.choice(("st-0", "st-1", "\0st-1")) if rng.random() < 0.4 else None,
                         store=rng.choice(("default", "default", "b")),
                         data={"i": i, "pad": "x" * rng.randrange(50)}))
    return out


@dataclass
class Pair:
    settings: Settings
    redis: Any
    hot: RedisHotStore
    mem: MemoryHotStore
    writer: RedisHotWriter

    async def write(self, events: list[Event], covers: list[tuple[str, int]],
                    expected: dict[tuple[str, str], int] | None = None) -> None:
        got = await self.writer.write(events, covers=covers, expected=expected)
        want = await self.mem.write(events, covers=covers, expected=expected)
        assert (got.stored, got.duplicates, got.positions) == (want.stored, want.duplicates, want.positions)
        if self.settings.hot_shards == 1:  # a sharded tenant's shards keep records of their own
            assert got.recorded == want.recorded


@pytest.fixture(params=["one-slot", "3-shards"])
async def pair(request: pytest.FixtureRequest, settings_factory: Any) -> AsyncIterator[Pair]:
    s = settings_factory() if request.param == "one-slot" else settings_factory(redis_cluster=True, hot_shards=3)
    redis: Any = connect_redis(s)
    lay = s.layout()
    yield Pair(s, redis, RedisHotStore(redis, lay), MemoryHotStore(window_ms=s.window_ms, chunk_max=CHUNK),
               RedisHotWriter(redis, lay, window_ms=s.window_ms, tail_maxlen=100_000, chunk_max=CHUNK))
    await redis.aclose()


def random_sources(rng: random.Random) -> Sources:
    family = rng.choice(("a", "u", "t", "ut"))
    users = [user_part(u) for u in USERS] + [encode_part("nobody")]
    types = [encode_part(t) for t in TYPES]
    if family == "u":
        return Sources("u", tuple((u,) for u in rng.sample(users, rng.randint(1, 3))))
    if family == "t":
        return Sources("t", tuple((t,) for t in rng.sample(types, rng.randint(1, 2))))
    if family == "ut":
        return Sources("ut", tuple(dict.fromkeys((rng.choice(users), rng.choice(types))
                                                 for _ in range(rng.randint(1, 3)))))
    return Sources("a")


def random_range(rng: random.Random, times: list[int]) -> tuple[int, int | None]:
    pick = rng.random()
    if pick < 0.3:
        return 0, None
    a, b = sorted(rng.sample(times, 2))
    return (a, b) if pick < 0.7 else (a - a % HOUR, None if pick < 0.85 else b - b % DAY + DAY)


async def walk(store: HotStore, src: Sources, *, lo: int, hi: int | None, order: str, limit: int,
               after: tuple[int, str] | None) -> list[Row]:
    out: list[Row] = []
    while True:
        r = await store.scan(TENANT, src, lo=lo, hi=hi, order=order, after=after, limit=limit)
        out += r.rows
        if r.complete:
            return out
        after = r.boundary


def same_page(a: ScanResult, b: ScanResult, limit: int) -> bool:
    """The same rows and watermarks, and the same end: both complete, or both continuing from
    the same boundary -- except that a full page may end the range and say either (the next
    call then returns nothing)."""
    if (a.rows, a.w, a.w_after) != (b.rows, b.w, b.w_after):
        return False
    if (a.complete, a.boundary) == (b.complete, b.boundary):
        return True
    last = (a.rows[-1].ts, a.rows[-1].id) if a.rows else None
    return len(a.rows) == limit and all(r.complete or r.boundary == last for r in (a, b))


def positions(entries: list[Announcement]) -> list[int]:
    return [p for e in entries for p in range(e.first + e.empty, e.last + 1)]


async def both(pair: Pair, read: Callable[[HotStore], Awaitable[T]]) -> tuple[T, T]:
    """``read`` of Redis, then of the memory store."""
    return await read(pair.hot), await read(pair.mem)


async def compare(pair: Pair, rng: random.Random, events: list[Event], rounds: int) -> None:
    hot, mem = pair.hot, pair.mem
    times = sorted({e.timestamp for e in events})
    known = [(e.timestamp, e.id) for e in events]
    for _ in range(rounds):
        src = random_sources(rng)
        lo, hi = random_range(rng, times)
        order = rng.choice(("asc", "desc"))
        after = None if rng.random() < 0.4 else (rng.choice(known) if rng.random() < 0.7
                                                  else (rng.choice(times), ""))
        limit = rng.choice((1, 2, 7, 50, 1000))
        if rng.random() < 0.2:  # a page exactly as long as what is left
            limit = max(1, (await mem.count(TENANT, src, lo=lo, hi=hi))[1])
        first = rng.random() < 0.3
        q = (src, lo, hi, order, after, limit)
        if src.family != "ut":  # a (user, type) scan may stop early at its examine bound
            got, want = await both(pair, lambda s: s.scan(TENANT, src, lo=lo, hi=hi, order=order, after=after,
                                                          limit=limit, first=first, then_w=True))
            assert same_page(got, want, limit), (q, first, got, want)
        walks = await both(pair, lambda s: walk(s, src, lo=lo, hi=hi, order=order, limit=limit, after=after))
        assert walks[0] == walks[1], q
        bucket = rng.choice((None, HOUR, DAY))
        clamp = hot.counts_at_watermark(TENANT) and rng.random() < 0.5
        counts = await both(pair, lambda s: s.count(TENANT, src, lo=lo, hi=hi, bucket_ms=bucket, clamp=clamp))
        assert counts[0] == counts[1], (q, bucket, clamp)
        ids = [e.id for e in rng.sample(events, 5)] + ["never-stored"]
        assert await hot.rows(TENANT, ids) == await mem.rows(TENANT, ids)
        last = await mem.last_position(TENANT)
        at = rng.choice((None, rng.randint(0, last + 1)))
        least, greatest = rng.choice((None, rng.randint(1, last))), rng.choice((None, rng.randint(1, last)))
        n = rng.choice((1, 10, 500))
        seqs = await both(pair, lambda s: s.by_position(TENANT, after=at, order=order, limit=n, least=least,
                                                        greatest=greatest))
        assert seqs[0] == seqs[1], (at, order, n, least, greatest)
    assert await hot.last_position(TENANT) == await mem.last_position(TENANT)
    assert await hot.watermark(TENANT) == await mem.watermark(TENANT)
    got_tail, bad = await hot.announced_after(TENANT, 0, count=100_000)
    want_tail, _ = await mem.announced_after(TENANT, 0, count=100_000)
    assert not bad
    assert positions(got_tail) == positions(want_tail)
    if pair.settings.hot_shards == 1:  # a sharded write announces per confirm, not per chunk
        assert got_tail == want_tail
        assert await hot.last_announced(TENANT) == await mem.last_announced(TENANT)
        assert await hot.first_announced(TENANT) == await mem.first_announced(TENANT)


async def archive_before(pair: Pair, events: list[Event], watermark: int) -> None:
    """What the archiver does once the windows below ``watermark`` are in Parquet: raise W, then
    remove their events."""
    window_ms = pair.settings.window_ms
    assert await pair.hot.mirror_watermark(TENANT, watermark) == await pair.mem.mirror_watermark(
        TENANT, watermark)
    stored: dict[str, Event] = {}
    for e in events:
        stored.setdefault(e.id, e)  # the first write of an id is the stored one
    by_window: dict[int, list[Event]] = {}
    for e in stored.values():
        if e.timestamp < watermark:
            by_window.setdefault(e.timestamp - e.timestamp % window_ms, []).append(e)
    assert await pair.hot.windows(TENANT) == await pair.mem.windows(TENANT)
    for window, evs in sorted(by_window.items()):
        got = await pair.hot.read_window(TENANT, window, window_ms)
        assert got == await pair.mem.read_window(TENANT, window, window_ms)
        refs = [handoff.HotRef(e.id, e.timestamp, e.user_id, e.type, int(got[e.id].ref.split(b"|")[0]))
                for e in evs if e.id in got]
        removed = await pair.hot.remove_events(TENANT, window, window_ms, refs)
        assert removed == await pair.mem.remove_events(TENANT, window, window_ms, refs) == len(refs)
    assert await pair.hot.windows(TENANT) == await pair.mem.windows(TENANT)
    assert await pair.hot.tenants() == await pair.mem.tenants() == ["acme", "other"]


async def test_the_memory_store_answers_every_read_as_redis_does(pair: Pair) -> None:
    rng = random.Random(17)
    events = make_events(rng, 1500)
    others = make_events(rng, 200, tenant="other")  # another tenant's events change nothing
    written: list[Event] = []
    i = 0
    while i < len(events):
        n = rng.randint(1, 300)
        batch = events[i:i + n] + others[i // 8:i // 8 + 10]
        if written and rng.random() < 0.5:  # redeliveries: same ids, same or other payloads
            again = rng.sample(written, min(40, len(written)))
            batch += [e if rng.random() < 0.5 else replace(e, data={"changed": True}) for e in again]
            rng.shuffle(batch)
        # the offsets the batch covers, sometimes with a record the writer expects higher (lost)
        covers = [("t|0", i + n), (f"t|{rng.randrange(1, 3)}", rng.randrange(1000))]
        expected = {(TENANT, "t|0"): i + n + 1} if rng.random() < 0.2 else None
        await pair.write(batch, covers, expected)
        written += [e for e in batch if e.tenant == TENANT]
        i += n
    assert await pair.mem.last_position(TENANT) == len({e.id for e in events})
    # stream positions count per (store, stream): each one's are 1..n, in the order stored
    first: dict[str, Event] = {}
    for e in written:
        first.setdefault(e.id, e)
    rows = await pair.hot.rows(TENANT, list(first))
    streams: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for e, row in zip(first.values(), rows, strict=True):
        assert row is not None
        g, _, sp = row.ref.partition(b"|")
        if e.stream_id is not None:
            streams.setdefault((e.store, e.stream_id), []).append((int(g), int(sp)))
    assert len(streams) == 6
    for got in streams.values():
        assert [sp for _, sp in sorted(got)] == list(range(1, len(got) + 1))
    if pair.settings.hot_shards == 1:
        fields = ["t|0", "t|1", "t|2", "t|9"]
        assert await pair.writer.read_offsets(fields) == await pair.mem.read_offsets(fields)
        await pair.writer.mark_lineage([("t|0", 5), ("t|1", 7)])
        await pair.mem.mark_lineage([("t|0", 5), ("t|1", 7)])
        assert await pair.writer.mark_lineage([("t|0", 3), ("t|1", 9)]) == await pair.mem.mark_lineage(
            [("t|0", 3), ("t|1", 9)])
        assert await pair.writer.read_lineage(fields) == await pair.mem.read_lineage(fields)
    await compare(pair, rng, written, rounds=150)

    watermark = BASE_TS - 2 * DAY - (BASE_TS % HOUR)
    await archive_before(pair, written, watermark)
    assert (await pair.mem.count(TENANT, Sources("a"), lo=0, hi=watermark))[1] == 0
    await compare(pair, rng, written, rounds=100)

    late = make_events(rng, 300, start=5000)  # written after the archiver moved, some below W
    await pair.write(late + rng.sample(written, 30), [("t|0", 10_000)])
    await compare(pair, rng, written + late, rounds=100)
