"""The archiver and the query engine on ``MemoryHotStore`` and a local Parquet archive (no
network): a pass moves the due windows to Parquet, publishes and mirrors the watermark and
removes exactly what it archived from the hot tier; a cursor walk that spans the pass, counts
and lookups stay exact across the two tiers. The same handoff on real Redis (and its crashes):
``tests/integration/test_archive_tier.py``."""

from __future__ import annotations

import random
from pathlib import Path

from eventstrata.archive.archiver import Archiver, ArchiverConfig
from eventstrata.archive.destination import LocalDestination
from eventstrata.archive.reader import ColdReader
from eventstrata.hotstore.memory import MemoryHotStore
from eventstrata.hotstore.read import Sources
from eventstrata.model import Event
from eventstrata.query.engine import QueryEngine
from eventstrata.query.filters import EventFilter, Order

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_796_083_200_000  # a UTC midnight


def make_events(n: int) -> list[Event]:
    rng = random.Random(11)
    return [Event(id=f"e{i:05d}", tenant="acme", type=rng.choice(("view", "buy")),
                  timestamp=T0 + rng.randrange(3 * DAY), received_at=T0, format="native",
                  user_id=rng.choice(("ann", "bob", "cy")), data={"i": i})
            for i in range(n)]


async def walk(engine: QueryEngine, flt: EventFilter, order: Order, *, now: int, pages_before: int,
               between: Archiver) -> list[str]:
    """Every page of ``flt``, with one archive pass after ``pages_before`` pages."""
    got: list[str] = []
    cursor = None
    for i in range(1000):
        if i == pages_before:
            await between.run_once(now)
        page = await engine.page("acme", flt, order=order, limit=37, cursor=cursor, now_ms=now)
        got += [e.id for e in page.events]
        cursor = page.next_cursor
        if cursor is None:
            return got
    raise AssertionError("the walk did not end")


async def test_a_pass_hands_windows_over_and_reads_stay_exact_across_it(tmp_path: Path) -> None:
    events = make_events(900)
    by_time = sorted(events, key=lambda e: (e.timestamp, e.id))
    cfg = ArchiverConfig(retention_ms=DAY, window_ms=HOUR, grace_ms=0, lease_ms=5000)
    cases: list[tuple[EventFilter, Order]] = [(EventFilter(), "asc"), (EventFilter(user_ids=("bob",)), "desc"),
                                              (EventFilter(types=("buy",), user_ids=("ann", "cy")), "asc")]
    for n, (flt, order) in enumerate(cases):
        store = MemoryHotStore(window_ms=HOUR)
        await store.write(events)
        dest = LocalDestination(tmp_path / f"archive-{n}")
        cold = ColdReader(dest)
        engine = QueryEngine(store, cold, secret=b"s" * 32)
        archiver = Archiver(store, dest, cfg)
        try:
            now = T0 + 3 * DAY + HOUR // 2
            want = [e.id for e in (by_time if order == "asc" else by_time[::-1]) if flt.matches(e)]
            assert await walk(engine, flt, order, now=now, pages_before=2, between=archiver) == want
            w = await store.watermark("acme")
            assert w == now - DAY - (now - DAY) % HOUR
            below = [e for e in events if e.timestamp < w]
            assert below and (await store.count("acme", Sources("a"), lo=0, hi=None))[1] == len(events) - len(below)
            assert await store.windows("acme") == sorted({e.timestamp - e.timestamp % HOUR
                                                          for e in events if e.timestamp >= w})
            assert await engine.count("acme", flt, now_ms=now) == len(want)
            old = next(e for e in below if flt.matches(e))
            got = await engine.get("acme", old.id, now_ms=now)  # from the archive
            assert got is not None and (got.id, got.data, got.timestamp) == (old.id, old.data, old.timestamp)
            (again,) = await archiver.run_once(now)  # nothing more is due
            assert (again.events_read, again.removed, again.watermark_ms) == (0, 0, w)
        finally:
            archiver.close()
            cold.close()
