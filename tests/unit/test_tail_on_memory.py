"""The live tail's hub, catch-up and sessions on ``MemoryHotStore`` (no network): subscribers
that resume from any position while writes go on get every matching event after it exactly
once and in position order -- from the tail's announcements, from the query tiers where the tail
no longer reaches, then live. The same properties on real Redis: ``tests/integration/
test_tail_hub.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from empty_archive import NoArchive

from eventstrata.hotstore.memory import MemoryHotStore
from eventstrata.model import Event
from eventstrata.query.engine import QueryEngine
from eventstrata.query.filters import EventFilter
from eventstrata.tail.catchup import CatchUp
from eventstrata.tail.hub import TailHub
from eventstrata.tail.resume import StartPoint
from eventstrata.tail.session import EventItem, Lagged, TailItem, TailSession

WAIT_S = 10.0
T0 = 1_796_000_000_000


def make(start: int, n: int, tenant: str = "acme") -> list[Event]:
    return [Event(id=f"{tenant}-{i}", tenant=tenant, type=("view", "buy")[i % 2], timestamp=T0 + i,
                  received_at=T0, format="native", user_id=f"u{i % 3}", data={"i": i})
            for i in range(start, start + n)]


async def take(it: AsyncIterator[TailItem], n: int) -> tuple[list[int], list[TailItem]]:
    """Positions of the next ``n`` events, and the other items seen on the way."""
    items: list[TailItem] = []
    left = n
    async with asyncio.timeout(WAIT_S):
        while left:
            items.append(await anext(it))
            left -= isinstance(items[-1], EventItem)
    return [i.entry.gpos for i in items if isinstance(i, EventItem)], [i for i in items if not isinstance(i, EventItem)]


async def test_resumed_subscribers_get_each_event_once_in_order_while_writes_go_on() -> None:
    store = MemoryHotStore(tail_maxlen=40, chunk_max=10)  # the tail reaches back 40 positions only
    engine = QueryEngine(store, NoArchive(), secret=b"s" * 32)
    hub = TailHub(store, max_subscribers=100, block_ms=50)
    await hub.start()
    try:
        for i in range(0, 200, 25):
            await store.write(make(i, 25) + make(i, 3, tenant="other"))  # positions 1..200
        buys = EventFilter(types=("buy",))
        starts = {0: EventFilter(), 120: buys, 170: EventFilter(), 199: buys}  # tiers / tail / live
        sessions = {}
        for after, flt in starts.items():
            sub = hub.subscribe("acme", flt)
            catchup = CatchUp(store, engine, page_size=16, now_ms=lambda: T0)
            sessions[after] = TailSession(hub, sub, StartPoint(after), catchup).items().__aiter__()

        async def produce() -> None:
            for i in range(200, 300, 10):
                await store.write(make(i, 10))
                await asyncio.sleep(0.005)

        producer = asyncio.create_task(produce())
        for after, flt in starts.items():
            want = [g for g in range(after + 1, 301) if flt.matches(make(g - 1, 1)[0])]
            got, other = await take(sessions[after], len(want))
            assert got == want, after
            assert not [o for o in other if isinstance(o, Lagged)], after
        await producer
    finally:
        await hub.stop()


async def test_a_subscriber_that_falls_behind_is_told_and_catches_up_from_the_tiers() -> None:
    store = MemoryHotStore(chunk_max=50)
    engine = QueryEngine(store, NoArchive(), secret=b"s" * 32)
    hub = TailHub(store, max_subscribers=10, block_ms=50, buffer_capacity=20)
    await hub.start()
    try:
        sub = hub.subscribe("acme", EventFilter())
        it = TailSession(hub, sub, StartPoint(None), CatchUp(store, engine, page_size=7, now_ms=lambda: T0)
                         ).items().__aiter__()
        await sub.ready.wait()
        await store.write(make(0, 100))  # 100 events into a buffer of 20: overflow
        got, _ = await take(it, 100)
        assert got == list(range(1, 101))
    finally:
        await hub.stop()
