"""A Redis that loses acknowledged writes is healed by replay from Kafka.

Ingest, copy Redis' data aside, ingest more (stored, acknowledged, offsets committed), then
restore the copy and restart Redis: the events written after the copy are gone from Redis
while Kafka's committed offsets are past them. The worker finds the offsets recorded with
the data below what it recorded itself (while running) or below the committed offsets (on
assignment) and replays: afterwards every event is stored exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from ingest_util import (
    committed,
    hot_inventory,
    id_count,
    jmsg,
    native,
    produce,
    snapshot,
    stored_ids,
    tail_events,
)
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from eventstrata.hotstore.tailentry import entry_count, first_position
from eventstrata.ingest.pipeline import IngestPipeline
from eventstrata.ingest.worker import run_worker
from eventstrata.keys import KeyLayout
from eventstrata.localstack.redis import RedisServer

pytestmark = pytest.mark.integration

TENANTS = ("acme", "globex")
N1, N2 = 2000, 2000


def messages(lo: int, hi: int):
    return [jmsg(native(i, tenant=TENANTS[i % 2], stream_id=f"s{i % 5}"), es_format="native")
            for i in range(lo, hi)]


async def stored(r: Redis, lay: KeyLayout) -> int:
    return sum([await id_count(r, lay.tenant(t)) for t in TENANTS])


async def wait_for(cond, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.1)


def restart(server: RedisServer, *, restore: Path | None = None, keep: Path | None = None) -> None:
    """Stop Redis (SIGTERM: the AOF is flushed), optionally copy its data aside (``keep``) or
    replace it with an earlier copy (``restore``), and start it again on the same port."""
    server.stop()
    data = server.state_dir / "appendonlydir"
    if keep is not None:
        shutil.copytree(data, keep)
    if restore is not None:
        shutil.rmtree(data)
        shutil.copytree(restore, data)
    server.start()
    server.wait_ready()


def own_redis(settings_factory, tmp_path: Path, shards: int) -> tuple[RedisServer, Any, KeyLayout, Redis]:
    """A Redis server of the test's own (to restart, roll back or wipe), settings using it, and a
    client that reconnects after each restart (its pooled connection is stale then)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    server.wait_ready()
    s = settings_factory(redis_url=server.url, topic_partitions=4, offsets_refresh_ms=200, hot_shards=shards)
    r = Redis.from_url(server.url, retry=Retry(ConstantBackoff(0.1), 5), retry_on_error=[RedisConnectionError])
    return server, s, s.layout(), r


class Worker:
    """An in-process ingest worker (``run_worker``) that keeps running across Redis restarts."""

    def __init__(self, settings) -> None:
        self.holder: list[IngestPipeline] = []
        self.task = asyncio.create_task(run_worker(settings, on_ready=self.holder.append))

    async def stop(self) -> int:
        deadline = time.monotonic() + 30
        while not self.holder:
            assert not self.task.done(), self.task.exception()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        self.holder[0].request_stop()
        return await asyncio.wait_for(self.task, 60)


async def cancel(worker: Worker | None) -> None:
    """Stop a worker a failed test left running."""
    if worker is not None:
        worker.task.cancel()
        await asyncio.gather(worker.task, return_exceptions=True)


Positions = dict[str, dict[int, str]]
"""Tenant → global position → the id of the event that holds it."""


async def positions(r: Redis, lay: KeyLayout) -> Positions:
    return {t: (await hot_inventory(r, lay.tenant(t))).positions for t in TENANTS}


async def announced(r: Redis, key: str) -> list[tuple[int, int, int]]:
    """The position ranges ``(first, first event, last)`` the tail stream's entries cover, in
    order (``first`` < ``first event`` when a jump left positions empty)."""
    out = []
    for entry_id, fields in await r.xrange(key, "-", "+"):
        last = int(entry_id.split(b"-")[0])
        out.append((first_position(entry_id, fields), last - entry_count(entry_id, fields) + 1, last))
    return out


async def check_exactly_once(r: Redis, lay: KeyLayout, n: int, before: Positions | None = None) -> None:
    """Every event stored once, under one position announced once by the tail; with ``before``
    (the positions read before Redis lost writes), no position was given to another event
    since, and a tail reader that had read up to any of those positions finds every event
    after it: the lost events came back above every position it had seen."""
    ids: set[str] = set()
    for t in TENANTS:
        tk = lay.tenant(t)
        mine = await stored_ids(r, tk)
        count = len(mine)
        ids |= set(mine)
        inv = await hot_inventory(r, tk)
        for members in (inv.bodies, inv.tenant_wide, inv.by_type, inv.seq):
            assert len(members) == len(set(members)) == count, "an index holds an event twice"
        assert len(inv.positions) == count and set(inv.positions.values()) == set(mine)
        assert int(await r.get(tk.gpos)) >= max(inv.positions)
        ranges = await announced(r, tk.tail)
        assert all(a[2] < b[0] for a, b in pairwise(ranges)), "a position announced twice"
        unannounced = sorted(g for g in inv.positions if not any(lo <= g <= hi for _, lo, hi in ranges))
        assert not unannounced, f"positions not announced: {unannounced[:5]} ({len(unannounced)})"
        assert await tail_events(r, tk.tail) == count
        if before is not None:
            old = before[t]
            reused = {g: (old[g], eid) for g, eid in inv.positions.items() if g in old and old[g] != eid}
            assert not reused, f"positions given to two events: {sorted(reused.items())[:5]}"
            for seen in sorted({0, *list(old)[:: max(1, len(old) // 4)], max(old)}):
                found = {eid for g, eid in old.items() if g <= seen} | {
                    eid for g, eid in inv.positions.items() if g > seen}
                assert found >= set(mine), f"a reader at {seen} misses {sorted(set(mine) - found)[:5]}"
    assert ids == {f"evt-{i}" for i in range(n)}


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_rolled_back_redis_is_healed_by_replay_while_running_and_on_assignment(
        settings_factory, kafka_bootstrap, tmp_path, shards):
    server, s, lay, r = own_redis(settings_factory, tmp_path, shards)
    worker = Worker(s)
    try:
        await produce(kafka_bootstrap, s.topic, messages(0, N1))
        await wait_for(lambda: _eq(stored(r, lay), N1), f"{N1} events stored")
        await asyncio.sleep(0.5)  # the refresh records the final offsets for both tenants
        restart(server, keep=tmp_path / "copy")  # the copy holds the first N1 events

        await produce(kafka_bootstrap, s.topic, messages(N1, N1 + N2))
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), f"{N1 + N2} events stored")
        await wait_for(lambda: _committed_all(kafka_bootstrap, s, N1 + N2), "offsets committed")

        # 1. while the worker runs, with no new events arriving
        before = await positions(r, lay)
        restart(server, restore=tmp_path / "copy")
        assert await stored(r, lay) == N1, "the restore brought back the copy"
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), "the lost events replayed")
        await check_exactly_once(r, lay, N1 + N2, before)
        assert await worker.stop() == 0
        worker = None

        # 2. with no worker running: the next one heals on assignment
        before = await positions(r, lay)
        restart(server, restore=tmp_path / "copy")
        assert await stored(r, lay) == N1
        worker = Worker(s)
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), "the lost events replayed on assignment")
        await check_exactly_once(r, lay, N1 + N2, before)
        assert await worker.stop() == 0
        worker = None
        offsets = await committed(kafka_bootstrap, s.consumer_group, s.topic, 4)
        assert sum(v or 0 for v in offsets.values()) == N1 + N2
    finally:
        await cancel(worker)
        await r.aclose()
        server.stop()


def wipe(server: RedisServer) -> None:
    """Stop Redis and start it again with an empty data directory (a lost volume, a new node)."""
    server.stop()
    shutil.rmtree(server.state_dir / "appendonlydir", ignore_errors=True)
    server.start()
    server.wait_ready()


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_a_wiped_redis_is_refilled_from_the_topic_while_running_and_on_assignment(
        settings_factory, kafka_bootstrap, tmp_path, shards):
    """No tenant record survives a wipe, so only the lineage mark can show the loss: the worker
    that finds its mark gone, and a worker assigned partitions with committed offsets but no
    mark, replay from the beginning -- including what earlier workers stored."""
    server, s, lay, r = own_redis(settings_factory, tmp_path, shards)
    worker: Worker | None = Worker(s)
    try:
        await produce(kafka_bootstrap, s.topic, messages(0, N1))
        await wait_for(lambda: _eq(stored(r, lay), N1), f"{N1} events stored")
        await wait_for(lambda: _committed_all(kafka_bootstrap, s, N1), "offsets committed")
        assert worker is not None and await worker.stop() == 0
        worker = Worker(s)  # starts reading at the committed offsets: N1 was stored by another worker
        await produce(kafka_bootstrap, s.topic, messages(N1, N1 + N2))
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), f"{N1 + N2} events stored")
        await asyncio.sleep(0.5)  # a refresh marks the lineage

        # 1. while the worker runs
        before = await positions(r, lay)
        wipe(server)
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), "the whole topic replayed")
        await check_exactly_once(r, lay, N1 + N2, before)
        assert await worker.stop() == 0
        worker = None

        # 2. with no worker running: the next one replays on assignment
        before = await positions(r, lay)
        wipe(server)
        worker = Worker(s)
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), "the whole topic replayed on assignment")
        await check_exactly_once(r, lay, N1 + N2, before)
        assert await worker.stop() == 0
        worker = None
    finally:
        await cancel(worker)
        await r.aclose()
        server.stop()


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_redelivered_batch_with_same_and_different_payloads_changes_no_event_byte(
        settings_factory, kafka_bootstrap, shards):
    """The same ids delivered again -- once as they were, once with other payloads (other data,
    other time) -- store nothing, change no byte of the events' keys and add no tail entry;
    only the offsets records move on."""
    s = settings_factory(topic_partitions=2, hot_shards=shards)
    lay = s.layout()
    first = messages(0, 600)
    await produce(kafka_bootstrap, s.topic, first)
    w = Worker(s)
    r = Redis.from_url(s.redis_url)
    try:
        await wait_for(lambda: _eq(stored(r, lay), 600), "600 events stored")
        await wait_for(lambda: _committed_all(kafka_bootstrap, s, 600), "offsets committed")
        before = await snapshot(r, s.key_prefix)
        changed = [jmsg(native(i, tenant=TENANTS[i % 2], stream_id="other", timestamp=native(i)["timestamp"] + 7,
                               data={"changed": True}), es_format="native") for i in range(600)]
        await produce(kafka_bootstrap, s.topic, first + changed)
        await wait_for(lambda: _committed_all(kafka_bootstrap, s, 600 * 3), "redeliveries committed")
        assert await w.stop() == 0
        w = None
        after = await snapshot(r, s.key_prefix)
        owners = {lay.tenant(t).offsets.encode() for t in TENANTS}
        offsets_keys = {f"{b}:offsets".encode() for t in TENANTS for b in lay.tenant(t).bases}
        assert {k: v for k, v in after.items() if k not in offsets_keys} == \
            {k: v for k, v in before.items() if k not in offsets_keys}
        for k in owners:
            assert after[k] != before[k], "the offsets record covers the redeliveries"
    finally:
        if w is not None:
            w.task.cancel()
            await asyncio.gather(w.task, return_exceptions=True)
        await r.aclose()


async def _eq(aw, n: int) -> bool:
    return await aw == n


async def _committed_all(bootstrap: str, s, n: int) -> bool:
    offsets = await committed(bootstrap, s.consumer_group, s.topic, s.topic_partitions)
    return sum(v or 0 for v in offsets.values()) == n


async def test_a_shard_that_lost_writes_is_healed_by_replay(settings_factory, kafka_bootstrap, tmp_path):
    """One shard of a sharded tenant rolls back alone (what a failover to a lagging replica does
    to one Cluster master): its keys -- the events and the offsets record it holds -- go back to
    a copy taken earlier, while the tenant's own slot still has every id and position. The
    running worker sees the shard's record below what it recorded, replays from there, and the
    replay stores the lost bodies again under their positions: every event once, no new tail
    entry."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    server.wait_ready()
    s = settings_factory(redis_url=server.url, topic_partitions=4, offsets_refresh_ms=200, hot_shards=3)
    lay = s.layout()
    r = Redis.from_url(server.url)
    worker = Worker(s)
    try:
        await produce(kafka_bootstrap, s.topic, messages(0, N1))
        await wait_for(lambda: _eq(stored(r, lay), N1), f"{N1} events stored")
        await asyncio.sleep(0.5)  # the refresh records the final offsets in every shard
        shard = lay.tenant(TENANTS[0]).shard_bases[1]
        copy = {k: (await r.dump(k), await r.pttl(k)) async for k in r.scan_iter(match=f"{shard}:*")}

        await produce(kafka_bootstrap, s.topic, messages(N1, N1 + N2))
        await wait_for(lambda: _eq(stored(r, lay), N1 + N2), f"{N1 + N2} events stored")
        await wait_for(lambda: _committed_all(kafka_bootstrap, s, N1 + N2), "offsets committed")
        before = await bodies(r, lay)
        assert before == N1 + N2
        tails = [await tail_events(r, lay.tenant(t).tail) for t in TENANTS]

        async for k in r.scan_iter(match=f"{shard}:*"):  # the shard's rollback
            await r.unlink(k)
        for k, (dumped, ttl) in copy.items():
            await r.restore(k, max(ttl, 0), dumped)
        assert await bodies(r, lay) < N1 + N2, "the rollback lost events of the shard"
        await wait_for(lambda: _eq(bodies(r, lay), N1 + N2), "the shard's lost events replayed")
        await check_exactly_once(r, lay, N1 + N2)
        assert [await tail_events(r, lay.tenant(t).tail) for t in TENANTS] == tails
        assert await worker.stop() == 0
        worker = None
    finally:
        await cancel(worker)
        await r.aclose()
        server.stop()


async def bodies(r: Redis, lay: KeyLayout) -> int:
    """Body members over the tenants' sets (each event's body is in one of them); polled while
    the worker writes (``check_exactly_once`` checks the settled state)."""
    return sum([len((await hot_inventory(r, lay.tenant(t), settled=False)).bodies) for t in TENANTS])
