"""Idempotence: the same id any number of times is one event with one position; a replay of
the whole topic into a fresh consumer group stores nothing new and moves no position; a
redelivery with other payloads changes no byte of the hot tier."""

from __future__ import annotations

import dataclasses

import pytest
from ingest_util import (
    BASE_TS,
    fresh_group,
    hot_inventory,
    id_count,
    jmsg,
    native,
    produce,
    run_until,
    snapshot,
    stored_ids,
    tail_events,
)
from redis.asyncio import Redis

from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import KeyLayout
from eventstrata.model import Event

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_same_id_many_times_is_one_event_one_position(settings_factory, kafka_bootstrap, shards):
    s = settings_factory(topic_partitions=4, hot_shards=shards)
    msgs = []
    for copy in range(40):  # 40 deliveries of evt-0, spread over all partitions
        msgs.append(jmsg(native(0, stream_id="order-9"), es_format="native"))
        msgs.append(jmsg(native(copy + 1, stream_id="order-9"), es_format="native"))
    n = await produce(kafka_bootstrap, s.topic, msgs)
    assert await run_until(s, lambda p: p.totals["processed"] >= n) == 0
    r = Redis.from_url(s.redis_url)
    tk = s.layout().tenant("acme")
    assert len(await stored_ids(r, tk)) == 41
    assert int(await r.get(tk.gpos)) == 41
    assert int(await r.hget(tk.spos, "order-9")) == 41
    assert await tail_events(r, tk.tail) == 41
    inv = await hot_inventory(r, tk)
    assert len(inv.bodies) == len(inv.tenant_wide) == len(inv.by_type) == 41
    assert set(inv.bodies) == set(inv.ids) and len(set(inv.bodies)) == 41
    assert sorted(inv.positions) == list(range(1, 42))
    await r.aclose()


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_replay_from_offset_zero_in_fresh_group_changes_nothing(settings_factory, kafka_bootstrap,
                                                                      shards):
    s = settings_factory(topic_partitions=4, hot_shards=shards)
    msgs = [jmsg(native(i, tenant=("acme", "globex")[i % 2], stream_id=f"s{i % 5}"), es_format="native")
            for i in range(3000)]
    msgs += [(b"{broken", [], None)] * 3
    n = await produce(kafka_bootstrap, s.topic, msgs)
    assert await run_until(s, lambda p: p.totals["processed"] >= n) == 0
    r = Redis.from_url(s.redis_url)
    before = await snapshot(r, s.key_prefix)
    assert await id_count(r, KeyLayout(s.key_prefix, shards).tenant("acme")) == 1500

    replay = dataclasses.replace(s, consumer_group=fresh_group())
    seen = []

    def done(p):
        seen.append(p)
        return p.totals["processed"] >= n

    assert await run_until(replay, done) == 0
    stats = seen[0].totals
    assert stats["stored"] == 0 and stats["duplicates"] == 3000
    after = await snapshot(r, s.key_prefix)
    assert after == before
    await r.aclose()


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_redelivery_with_other_payloads_changes_no_byte(redis_url, key_prefix, shards):
    """The same ids again -- the same payloads, and payloads that differ in data, user, type and
    time -- report the stored positions and leave every hot key as it was: no body, index,
    position or tail entry changes (first write wins)."""
    r = Redis.from_url(redis_url)
    w = RedisHotWriter(r, KeyLayout(key_prefix, shards), window_ms=3_600_000, tail_maxlen=10_000)
    evs = [Event.from_dict(native(i, stream_id=f"s{i % 3}") | {"tenant": "acme", "received_at": BASE_TS,
                                                                  "format": "native"})
           for i in range(300)]
    first = await w.write(evs)
    assert first.stored == 300
    before = await snapshot(r, key_prefix)
    other = [dataclasses.replace(e, data={"changed": True}, user_id=f"x{i}", type="other",
                                 timestamp=e.timestamp - 86_400_000 * (i % 2))
             for i, e in enumerate(evs)]
    for batch in (evs, other, evs[::-1] + other):
        res = await w.write(batch)
        assert res.stored == 0 and res.duplicates == len(batch)
        assert dict(zip((e.id for e in batch), res.positions, strict=True)) == dict(
            zip((e.id for e in evs), first.positions, strict=True))
        assert await snapshot(r, key_prefix) == before
    await r.aclose()
