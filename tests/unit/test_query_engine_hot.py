"""The query engine over the hot tier, on ``MemoryHotStore`` (no network): every filter and
order walked page by page with cursors gives exactly the matching events in order, counts and
buckets are exact, offsets agree with cursors, and a scan bounded by ``hot_scan_cap`` still
walks everything. The archive holds nothing here (W = 0: the engine never asks it for a range);
the tiers' merge is tested on real Parquet in the integration tests."""

from __future__ import annotations

import random

import pytest
from empty_archive import NoArchive

from eventstrata.errors import ApiError
from eventstrata.hotstore.memory import MemoryHotStore
from eventstrata.model import Event
from eventstrata.query.engine import QueryEngine
from eventstrata.query.filters import EventFilter, Order, SortKey

T0 = 1_796_000_000_000
HOUR = 3_600_000
USERS = ("ann", "bo b", "çé", None)
TYPES = ("view", "buy", "sign up")


def make_events(n: int, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    times = [T0 + rng.randrange(30 * HOUR) for _ in range(n // 4)]
    return [Event(id=f"{rng.choice(('x', 'é', 'a b'))}{i}", tenant="acme", type=rng.choice(TYPES),
                  timestamp=rng.choice(times), received_at=T0, format="native", user_id=rng.choice(USERS),
                  name=rng.choice(("a", "b", None)), stream_id=rng.choice(("s1", "s2", None)),
                  data={"k": rng.randrange(3)})
            for i in range(n)]


@pytest.fixture(scope="module")
async def stored() -> tuple[MemoryHotStore, list[Event]]:
    store = MemoryHotStore(chunk_max=64)
    events = make_events(600)
    res = await store.write(events)
    return store, [e.with_positions(g, s) for e, (g, s) in zip(events, res.positions, strict=True)]


def filters(rng: random.Random) -> EventFilter:
    users = tuple(rng.sample([u for u in USERS if u is not None], rng.randint(0, 2)))
    types = tuple(rng.sample(TYPES, rng.randint(0, 2)))
    since = T0 + rng.randrange(30 * HOUR) if rng.random() < 0.3 else None
    until = T0 + rng.randrange(30 * HOUR) if rng.random() < 0.3 else None
    return EventFilter(user_ids=users, types=types, since_ms=since, until_ms=until,
                       names=("a",) if rng.random() < 0.2 else (),
                       stream_id="s1" if rng.random() < 0.2 else None,
                       data_eq=((("k",), 1),) if rng.random() < 0.15 else ())


def expected(events: list[Event], flt: EventFilter, order: Order, sort: SortKey) -> list[str]:
    key = (lambda e: (e.timestamp, e.id)) if sort == "time" else (lambda e: (e.global_position, e.id))
    return [e.id for e in sorted((e for e in events if flt.matches(e)), key=key, reverse=order == "desc")]


async def walk(engine: QueryEngine, flt: EventFilter, order: Order, sort: SortKey, limit: int) -> list[str]:
    got: list[str] = []
    cursor = None
    for _ in range(10_000):
        page = await engine.page("acme", flt, order=order, sort=sort, limit=limit, cursor=cursor, now_ms=T0)
        got += [e.id for e in page.events]
        cursor = page.next_cursor
        if cursor is None:
            return got
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("scan_cap", [50_000, 40])
async def test_every_filter_walks_exactly_the_matching_events_in_order(
        stored: tuple[MemoryHotStore, list[Event]], scan_cap: int) -> None:
    store, events = stored
    engine = QueryEngine(store, NoArchive(), secret=b"s" * 32, hot_scan_cap=scan_cap)
    rng = random.Random(scan_cap)
    sparse = [EventFilter(names=("a",), data_eq=((("k",), 1),)),  # ~1 in 9: pages end at the cap
              EventFilter(types=("buy",), stream_id="s1", names=("b",))]
    for i in range(60):
        flt = sparse[i % 2] if i < 8 else filters(rng)
        order: Order = rng.choice(("asc", "desc"))
        sort: SortKey = rng.choice(("time", "gpos"))
        want = expected(events, flt, order, sort)
        assert await walk(engine, flt, order, sort, rng.choice((1, 7, 50))) == want, (flt, order, sort)


async def test_counts_buckets_offsets_and_lookups_are_exact(stored: tuple[MemoryHotStore, list[Event]]) -> None:
    store, events = stored
    engine = QueryEngine(store, NoArchive(), secret=b"s" * 32)
    rng = random.Random(5)
    for _ in range(40):
        flt = filters(rng)
        matching = [e for e in events if flt.matches(e)]
        assert await engine.count("acme", flt, now_ms=T0) == len(matching), flt
        buckets: dict[int, int] = {}
        for e in matching:
            buckets[e.timestamp - e.timestamp % HOUR] = buckets.get(e.timestamp - e.timestamp % HOUR, 0) + 1
        assert await engine.count_buckets("acme", flt, bucket_ms=HOUR, now_ms=T0) == dict(sorted(buckets.items()))
        offset, limit = rng.randrange(0, 40), rng.randint(1, 20)
        page = await engine.page_offset("acme", flt, offset=offset, limit=limit, include_total=True, now_ms=T0)
        assert [e.id for e in page.events] == expected(events, flt, "desc", "time")[offset:offset + limit]
        assert page.total == len(matching)
    for e in rng.sample(events, 20):
        got = await engine.get("acme", e.id, now_ms=T0)
        assert got is not None and got.to_json() == e.to_json()
    assert await engine.get("acme", "never", now_ms=T0) is None
    assert await engine.get("other", events[0].id, now_ms=T0) is None  # another tenant sees nothing


async def test_a_cursor_is_refused_for_another_filter_or_tenant(stored: tuple[MemoryHotStore, list[Event]]) -> None:
    store, _ = stored
    engine = QueryEngine(store, NoArchive(), secret=b"s" * 32)
    page = await engine.page("acme", EventFilter(types=("view",)), limit=2, now_ms=T0)
    assert page.next_cursor is not None
    for tenant, flt in (("acme", EventFilter(types=("buy",))), ("other", EventFilter(types=("view",)))):
        with pytest.raises(ApiError) as err:
            await engine.page(tenant, flt, limit=2, cursor=page.next_cursor, now_ms=T0)
        assert err.value.code == "invalid_cursor"
