"""The tail hub and sessions against a real Redis, fed by the real hot-tier writer (the ingest
Lua script that appends ``<gpos>-0`` entries to ``es:{T}:tail``)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from conftest import SMALL_USER_SETS
from eventstrata.errors import ApiError
from eventstrata.hotstore import handoff
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import POS_GAP, KeyLayout
from eventstrata.localstack.redis import RedisServer
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter
from eventstrata.redisconn import RedisClient
from eventstrata.tail.catchup import CatchUp, CatchUpUnavailable
from eventstrata.tail.hub import TailHub, events_between
from eventstrata.tail.resume import StartPoint
from eventstrata.tail.session import (
    EventItem,
    Heartbeat,
    Lagged,
    Reconnect,
    TailFailed,
    TailItem,
    TailSession,
)

pytestmark = pytest.mark.integration

WAIT_S = 30.0  # upper bound for anything we wait for (not an assertion on speed)


def make_events(tenant: str, start: int, n: int, *, types: tuple[str, ...] = ("view", "click", "buy")) -> list[Event]:
    now = int(time.time() * 1000)
    return [
        Event(
            id=f"{tenant}-e{i}",
            tenant=tenant,
            type=types[i % len(types)],
            timestamp=now - 1000 + (i % 500),
            received_at=now,
            format="native",
            user_id=f"u{i % 7}",
            data={"i": i},
        )
        for i in range(start, start + n)
    ]


class Env:
    def __init__(self, redis: RedisClient, layout: KeyLayout, maxlen: int = 100_000) -> None:
        self.redis = redis
        self.layout = layout
        self.writer = RedisHotWriter(redis, layout, window_ms=3_600_000, tail_maxlen=maxlen)
        self.produced: dict[str, list[Event]] = {}

    async def produce(self, tenant: str, n: int, per_write: int = 500, **kw: Any) -> list[Event]:
        """Store ``n`` events, ``per_write`` per write call (each call's new events are one tail
        entry, and the tail is trimmed by whole entries)."""
        have = self.produced.setdefault(tenant, [])
        events = make_events(tenant, len(have), n, **kw)
        for i in range(0, len(events), per_write):
            res = await self.writer.write(events[i : i + per_write])
            for e, (gpos, spos) in zip(events[i : i + per_write], res.positions, strict=True):
                have.append(e.with_positions(gpos, spos))
        return have[-n:]

    def hub(self, **kw: Any) -> TailHub:
        kw.setdefault("max_subscribers", 1000)
        kw.setdefault("block_ms", 200)
        return TailHub(RedisHotStore(self.redis, self.layout), **kw)

    def catchup(self, page_size: int = 500) -> CatchUp:
        return CatchUp(RedisHotStore(self.redis, self.layout), None, page_size=page_size, now_ms=lambda: int(time.time() * 1000))


@pytest.fixture(params=[1, 3], ids=["one-slot", "3-shards"])
async def env(redis_url: str, key_prefix: str, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """The tail over a tenant in one slot, and over one spread over 3 shards (on the one Redis:
    the shards are hash tags), whose writes announce positions at their confirm step."""
    redis = Redis.from_url(redis_url)
    try:
        yield Env(redis, KeyLayout(key_prefix, request.param, SMALL_USER_SETS))
    finally:
        await redis.aclose()


async def until(cond: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


async def take_events(it: AsyncIterator[TailItem], n: int, *, other: list[TailItem] | None = None) -> list[int]:
    """Positions of the next ``n`` events (other items go to ``other``)."""
    got: list[int] = []
    if n == 0:
        return got

    async def run() -> None:
        async for item in it:
            if isinstance(item, EventItem):
                got.append(item.entry.gpos)
                if len(got) == n:
                    return
            elif other is not None:
                other.append(item)
            if isinstance(item, Reconnect | TailFailed):
                return

    await asyncio.wait_for(run(), WAIT_S)
    return got


async def test_live_only_then_resume_matrix_from_the_stream(env: Env) -> None:
    hub = env.hub()
    await hub.start()
    try:
        await env.produce("acme", 20)  # history: 1..20
        # live only: starts at the head, sees only what comes next
        sub = hub.subscribe("acme", EventFilter())
        it = TailSession(hub, sub, StartPoint(None), env.catchup()).items().__aiter__()
        await sub.ready.wait()
        assert sub.buffer.floor == 20
        await env.produce("acme", 5)
        assert await take_events(it, 5) == [21, 22, 23, 24, 25]
        hub.unsubscribe(sub)

        cases = {0: list(range(1, 31)), 25: list(range(26, 31)), 24: list(range(25, 31)), 7: list(range(8, 31))}
        sessions = {}
        for after in cases:
            s = hub.subscribe("acme", EventFilter())
            sessions[after] = (s, TailSession(hub, s, StartPoint(after), env.catchup(page_size=4)).items().__aiter__())
        # the resumed sessions first catch up (1..25) then get live events 26..30
        firsts = {after: await take_events(it2, 25 - after) for after, (_s, it2) in sessions.items()}
        await env.produce("acme", 5)
        for after, expected in cases.items():
            rest = await take_events(sessions[after][1], 5)
            assert firsts[after] + rest == expected, after
        produced = [e.global_position for e in env.produced["acme"]]
        assert produced == list(range(1, 31))
    finally:
        await hub.stop()


async def test_filters_and_tenant_isolation(env: Env) -> None:
    hub = env.hub()
    await hub.start()
    try:
        filters = {
            "all": EventFilter(),
            "buy": EventFilter(types=("buy",)),
            "u3": EventFilter(user_ids=("u3",)),
            "u3-click": EventFilter(user_ids=("u3",), types=("click",)),
            "data": EventFilter(data_eq=((("i",), 5),)),
        }
        subs = {}
        for name, flt in filters.items():
            for tenant in ("ta", "tb"):
                s = hub.subscribe(tenant, flt)
                subs[(tenant, name)] = (s, TailSession(hub, s, StartPoint(None), env.catchup()).items().__aiter__())
        for s, _it in subs.values():
            await s.ready.wait()
        await env.produce("ta", 300)
        await env.produce("tb", 120)
        for (tenant, name), (_s, it) in subs.items():
            expected = [e for e in env.produced[tenant] if filters[name].matches(e)]
            got: list[EventItem] = []

            async def collect(it: AsyncIterator[TailItem] = it, want: int = len(expected), got: list[EventItem] = got) -> None:
                async for item in it:
                    if isinstance(item, EventItem):
                        got.append(item)
                        if len(got) == want:
                            return

            await asyncio.wait_for(collect(), WAIT_S)
            assert [g.entry.event.id for g in got] == [e.id for e in expected], (tenant, name)
            assert all(g.entry.event.tenant == tenant for g in got)
            # nothing further is pending for this subscriber (in particular nothing of the other tenant)
            assert len(subs[(tenant, name)][0].buffer) == 0
    finally:
        await hub.stop()


async def test_subscriber_limit_and_shutdown_reconnect(env: Env) -> None:
    hub = env.hub(max_subscribers=2)
    await hub.start()
    s1 = hub.subscribe("lim", EventFilter())
    s2 = hub.subscribe("lim", EventFilter(types=("buy",)))
    with pytest.raises(ApiError) as exc:
        hub.subscribe("lim", EventFilter())
    assert exc.value.status == 429 and exc.value.code == "too_many_subscribers"
    other = hub.subscribe("other-tenant", EventFilter())  # the limit is per tenant
    hub.unsubscribe(other)
    it = TailSession(hub, s1, StartPoint(None), env.catchup()).items().__aiter__()
    await s1.ready.wait()
    await env.produce("lim", 3)
    assert await take_events(it, 3) == [1, 2, 3]
    items: list[TailItem] = []

    async def drain() -> None:
        try:
            async for item in it:
                items.append(item)
        finally:
            hub.unsubscribe(s1)

    task = asyncio.create_task(drain())
    await asyncio.sleep(0)
    hub.unsubscribe(s2)
    await hub.stop(grace_s=WAIT_S)
    await asyncio.wait_for(task, WAIT_S)
    assert items == [Reconnect(3)]
    with pytest.raises(ApiError) as exc2:
        hub.subscribe("lim", EventFilter())
    assert exc2.value.status == 503


async def test_heartbeat_carries_the_position_of_an_idle_filtered_tail(env: Env) -> None:
    hub = env.hub()
    await hub.start()
    try:
        sub = hub.subscribe("hb", EventFilter(types=("never",)))
        it = TailSession(hub, sub, StartPoint(None), env.catchup(), heartbeat_s=0.05).items().__aiter__()
        await sub.ready.wait()
        await env.produce("hb", 10)
        await until(lambda: hub.head("hb") == 10, "reader at 10")

        async def first_heartbeat_at_10() -> Heartbeat:
            async for item in it:
                assert not isinstance(item, EventItem)
                if isinstance(item, Heartbeat) and item.position == 10:
                    return item
            raise AssertionError("ended")

        assert await asyncio.wait_for(first_heartbeat_at_10(), WAIT_S) == Heartbeat(10)
    finally:
        await hub.stop()


async def test_slow_subscriber_gets_lagged_then_every_event_once(env: Env) -> None:
    hub = env.hub(buffer_capacity=100)
    await hub.start()
    try:
        sub = hub.subscribe("slow", EventFilter())
        it = TailSession(hub, sub, StartPoint(None), env.catchup()).items().__aiter__()
        await sub.ready.wait()
        await env.produce("slow", 1)
        assert await take_events(it, 1) == [1]  # live now; then it stops reading
        await env.produce("slow", 9_999)
        await until(lambda: hub.head("slow") == 10_000, "reader at 10000")
        assert sub.buffer.overflowed
        other: list[TailItem] = []
        got = await take_events(it, 9_999, other=other)
        assert other[0] == Lagged(position=1, head=10_000)
        assert got == list(range(2, 10_001))  # every event, once, in order
        assert all(isinstance(o, Lagged | Heartbeat) for o in other)
    finally:
        await hub.stop()


async def test_resume_older_than_the_stream_without_tiers_fails_explicitly(redis_url: str, key_prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    env = Env(redis, KeyLayout(key_prefix), maxlen=10)
    hub = env.hub()
    await hub.start()
    try:
        await env.produce("trim", 500, per_write=3)
        first = await env.catchup().stream_first("trim")
        assert first is not None and first > 2
        sub = hub.subscribe("trim", EventFilter())
        items = []
        async for item in TailSession(hub, sub, StartPoint(0), env.catchup()).items():
            items.append(item)
        assert len(items) == 1 and isinstance(items[0], TailFailed) and items[0].status == 410
        hub.unsubscribe(sub)
    finally:
        await hub.stop()
        await redis.aclose()


async def test_resume_older_than_the_stream_catches_up_from_the_tiers(
    redis_url: str, key_prefix: str, tmp_path: Any
) -> None:
    from eventstrata.archive.destination import LocalDestination
    from eventstrata.archive.reader import ColdReader
    from eventstrata.query.engine import QueryEngine

    redis = Redis.from_url(redis_url)
    env = Env(redis, KeyLayout(key_prefix), maxlen=10)
    cold = ColdReader(LocalDestination(tmp_path / "archive"))
    engine = QueryEngine(RedisHotStore(redis, env.layout), cold, secret=b"s" * 32)
    catchup = CatchUp(RedisHotStore(redis, env.layout), engine, page_size=64, now_ms=lambda: int(time.time() * 1000))
    hub = env.hub()
    await hub.start()
    try:
        await env.produce("trim", 500, per_write=3, types=("view", "click", "buy"))
        first = await catchup.stream_first("trim")
        assert first is not None and first > 100  # the stream no longer holds the early positions
        buy = EventFilter(types=("buy",))
        cases: dict[tuple[int, str], tuple[EventFilter, StartPoint]] = {
            (0, "all"): (EventFilter(), StartPoint(0)),
            (3, "buy"): (buy, StartPoint(3)),
            (499, "all"): (EventFilter(), StartPoint(499)),
            (500, "all"): (EventFilter(), StartPoint(500)),
        }
        sessions = {}
        for key, (flt, start) in cases.items():
            s = hub.subscribe("trim", flt)
            sessions[key] = (flt, start, TailSession(hub, s, start, catchup).items().__aiter__())
        for _key, (flt, start, it) in sessions.items():
            await until(lambda: hub.is_ready("trim"), "ready")
            assert start.after is not None
            expected = [g for e in env.produced["trim"] if flt.matches(e) and (g := e.global_position or 0) > start.after]
            assert await take_events(it, len(expected)) == expected
        await env.produce("trim", 30)
        for _key, (flt, start, it) in sessions.items():
            assert start.after is not None
            expected = [e.global_position or 0 for e in env.produced["trim"][500:] if flt.matches(e)]
            assert await take_events(it, len(expected)) == expected
    finally:
        await hub.stop()
        cold.close()
        await redis.aclose()


async def test_a_catch_up_from_the_tiers_delivers_late_events_not_archived_yet(
    redis_url: str, key_prefix: str, tmp_path: Any
) -> None:
    """Late events (times below the archive watermark, stored after their window was archived)
    are only in Redis until the next archive pass. A subscriber catching up from the tiers (the
    stream no longer holds its position) gets the archived events and the late ones once each,
    in position order, then the live ones: a position-ordered read does not stop the hot tier at
    the watermark."""
    from eventstrata.archive.archiver import ArchiverConfig
    from eventstrata.archive.destination import LocalDestination
    from eventstrata.archive.reader import ColdReader
    from eventstrata.archive.service import redis_archiver
    from eventstrata.query.engine import QueryEngine

    redis = Redis.from_url(redis_url)
    env = Env(redis, KeyLayout(key_prefix), maxlen=10)
    dest = LocalDestination(tmp_path / "archive")
    cold = ColdReader(dest)
    engine = QueryEngine(RedisHotStore(redis, env.layout), cold, secret=b"s" * 32)
    catchup = CatchUp(RedisHotStore(redis, env.layout), engine, page_size=16, now_ms=lambda: int(time.time() * 1000))
    archiver = redis_archiver(redis, env.layout, dest, ArchiverConfig(
        retention_ms=86_400_000, window_ms=3_600_000, grace_ms=0, lease_ms=5000, compact_files=1000,
        archive_retention_ms=0))
    hub = env.hub()
    await hub.start()
    try:
        await env.produce("late", 3)
        await archiver.run_once(int(time.time() * 1000) + 2 * 86_400_000)  # archives their window
        late = await env.produce("late", 450, per_write=3)  # below W: late, only in Redis
        assert max(e.timestamp for e in late) < await engine.watermark("late")
        first = await catchup.stream_first("late")
        assert first is not None and first > 4  # the stream no longer holds the early positions
        sub = hub.subscribe("late", EventFilter())
        it = TailSession(hub, sub, StartPoint(0), catchup).items().__aiter__()
        assert await take_events(it, 453) == list(range(1, 454))
        await env.produce("late", 5)
        assert await take_events(it, 5) == list(range(454, 459))
    finally:
        await hub.stop()
        archiver.close()
        cold.close()
        await redis.aclose()


async def test_an_announced_event_gone_from_the_hot_tier_sends_readers_to_the_tiers(env: Env) -> None:
    """The stream announces positions; the events come from the hot tier by position. When one
    is no longer there (archived and removed since), that stretch is read from the tiers: the
    catch-up without tiers says so instead of skipping it, and past it the stream serves."""
    evs = await env.produce("gone", 10, per_write=4)
    tk = env.layout.tenant("gone")
    assert [e.gpos for e in await events_between(RedisHotStore(env.redis, env.layout), "gone", 0, 10) or []] == list(range(1, 11))
    e5 = evs[4]
    assert e5.global_position == 5
    window = e5.timestamp - e5.timestamp % 3_600_000
    await handoff.remove_events(env.redis, tk, window, 3_600_000,
                            [handoff.HotRef(e5.id, e5.timestamp, e5.user_id, e5.type, 5)])
    assert await events_between(RedisHotStore(env.redis, env.layout), "gone", 0, 10) is None
    assert await events_between(RedisHotStore(env.redis, env.layout), "gone", 3, 4) is not None
    catchup = env.catchup()
    with pytest.raises(CatchUpUnavailable):
        await catchup.read_page("gone", EventFilter(), 0)
    page = await catchup.read_page("gone", EventFilter(), 5)
    assert page.source == "stream" and [x.gpos for x in page.entries] == list(range(6, 11))
    assert page.exhausted and page.position == 10


async def test_since_delivers_events_from_a_time_in_position_order_then_live(env: Env) -> None:
    hub = env.hub()
    await hub.start()
    try:
        events = await env.produce("since", 40)
        cut = sorted(e.timestamp for e in events)[20]
        flt = EventFilter(since_ms=cut)
        sub = hub.subscribe("since", flt)
        it = TailSession(hub, sub, StartPoint(0), env.catchup(page_size=7)).items().__aiter__()
        expected = [e.global_position or 0 for e in events if e.timestamp >= cut]
        assert 0 < len(expected) < 40
        assert await take_events(it, len(expected)) == expected
        more = await env.produce("since", 10)
        exp_more = [e.global_position for e in more if e.timestamp >= cut]
        assert await take_events(it, len(exp_more)) == exp_more
    finally:
        await hub.stop()


def reader_task(tenant: str) -> asyncio.Task[Any] | None:
    found = [t for t in asyncio.all_tasks() if t.get_name() == f"tail-reader:{tenant}" and not t.done()]
    return found[0] if found else None


async def test_readers_leave_after_their_read_and_are_never_cancelled(env: Env) -> None:
    """A reader leaves on its own once its tenant has no subscriber (or the hub stops): it is not
    cancelled inside a blocking XREAD (which can lose the cancellation in redis-py, see hub.py),
    and a new subscriber meanwhile gets a reader of its own that delivers."""
    hub = env.hub(block_ms=200)
    await hub.start()
    try:
        sub = hub.subscribe("quit", EventFilter())
        await sub.ready.wait()
        first = reader_task("quit")
        assert first is not None
        hub.unsubscribe(sub)
        sub2 = hub.subscribe("quit", EventFilter())  # while the first reader is still in its XREAD
        it = TailSession(hub, sub2, StartPoint(None), env.catchup()).items().__aiter__()
        await sub2.ready.wait()
        done, _ = await asyncio.wait({first}, timeout=WAIT_S)
        assert first in done and not first.cancelled()
        second = reader_task("quit")
        assert second is not None and second is not first
        await env.produce("quit", 3)
        assert await take_events(it, 3) == [1, 2, 3]
        t0 = time.monotonic()
        await hub.stop(grace_s=0)
        assert second.done() and not second.cancelled()
        assert time.monotonic() - t0 < WAIT_S
    finally:
        await hub.stop()


async def test_hub_on_redis_cluster(redis_cluster_url: str, key_prefix: str) -> None:
    from redis.asyncio.cluster import RedisCluster

    cluster = RedisCluster.from_url(redis_cluster_url)
    env = Env(cluster, KeyLayout(key_prefix))
    hub = env.hub()
    await hub.start()
    try:
        tenants = [f"c{i}" for i in range(4)]  # spread over slots: one reader per tenant, no CROSSSLOT
        for t in tenants:
            await env.produce(t, 5)
        subs = {t: hub.subscribe(t, EventFilter()) for t in tenants}
        its = {t: TailSession(hub, s, StartPoint(2), env.catchup()).items().__aiter__() for t, s in subs.items()}
        for t in tenants:
            assert await take_events(its[t], 3) == [3, 4, 5]
        for t in tenants:
            await env.produce(t, 2)
        for t in tenants:
            assert await take_events(its[t], 2) == [6, 7]
    finally:
        await hub.stop()
        await cluster.aclose()


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_positions_that_jump_after_redis_changed_nodes_reach_subscribers_without_a_lag(
        tmp_path: Path, key_prefix: str, shards: int) -> None:
    """A restarted Redis (another node: it may have lost writes) gives the next positions far
    above the old ones, and a Redis restored from an earlier copy too; the tail entry that
    follows says which positions were left empty, so a live subscriber and one resuming from
    before get every event, in order, without being sent ``lagged``."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    server.wait_ready()
    redis = Redis.from_url(server.url, retry=Retry(ConstantBackoff(0.1), 20),
                           retry_on_error=[RedisConnectionError])
    env = Env(redis, KeyLayout(key_prefix, shards, SMALL_USER_SETS))
    hub = env.hub()
    await hub.start()
    other: list[TailItem] = []
    try:
        await env.produce("jump", 10)  # positions 1..10
        sub = hub.subscribe("jump", EventFilter())
        live = TailSession(hub, sub, StartPoint(None), env.catchup()).items().__aiter__()
        await sub.ready.wait()
        assert sub.buffer.floor == 10

        server.stop()  # a restart that keeps the data: the next positions jump all the same
        shutil.copytree(server.state_dir / "appendonlydir", tmp_path / "copy")
        server.start()
        server.wait_ready()
        await env.produce("jump", 5)
        got = await take_events(live, 5, other=other)
        assert got == [e.global_position for e in env.produced["jump"][10:]]
        assert got[0] > 10 + POS_GAP and got == list(range(got[0], got[0] + 5))

        server.stop()  # back to the copy: positions 11.. are lost, and are never given again
        shutil.rmtree(server.state_dir / "appendonlydir")
        shutil.copytree(tmp_path / "copy", server.state_dir / "appendonlydir")
        server.start()
        server.wait_ready()
        await env.produce("jump", 3)
        again = await take_events(live, 3, other=other)
        assert again == [e.global_position for e in env.produced["jump"][15:]] and again[0] > got[-1]
        assert not [i for i in other if isinstance(i, Lagged | Reconnect | TailFailed)], other

        # a subscriber resuming from before the jumps reads them from the stream, in order
        resumed = hub.subscribe("jump", EventFilter())
        it = TailSession(hub, resumed, StartPoint(3), env.catchup()).items().__aiter__()
        mine: list[TailItem] = []
        assert await take_events(it, 10, other=mine) == list(range(4, 11)) + again
        assert not [i for i in mine if isinstance(i, Lagged | Reconnect | TailFailed)], mine
    finally:
        await hub.stop()
        await redis.aclose()
        server.stop()
