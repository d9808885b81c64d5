"""Two worker processes share a 4-partition topic; one is SIGKILLed in the middle of a
200,000-event ingest and restarted: afterwards every produced id is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from ingest_util import BASE_TS, committed, hot_inventory, id_count, produce, stored_ids, tail_events
from redis.asyncio import Redis

from eventstrata.keys import KeyLayout

pytestmark = pytest.mark.integration

N = 200_000
TENANTS = ("acme", "globex")
ROOT = Path(__file__).resolve().parents[2]


def messages():
    for i in range(N):
        t = TENANTS[i % 2]
        body = {"id": f"k-{i}", "tenant": t, "type": ("a", "b", "c")[i % 3], "user_id": f"u{i % 101}",
                "timestamp": BASE_TS - (i % 7) * 1_800_000 + i % 1000, "data": {"i": i, "pad": "p" * 400}}
        yield orjson.dumps(body), [("es-format", b"native")], f"{t}:u{i % 101}".encode()


def start_worker(settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env(), "EVENTSTRATA_LOG_LEVEL": "INFO"}
    return subprocess.Popen([sys.executable, "-m", "eventstrata.processes.ingest"], env=env, cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def stored_count(r: Redis, layout: KeyLayout) -> int:
    return sum([await id_count(r, layout.tenant(t)) for t in TENANTS])


@pytest.mark.parametrize("shards", [1, 3], ids=["one-slot", "3-shards"])
async def test_sigkill_one_of_two_workers_mid_ingest_every_event_exactly_once(settings_factory, kafka_bootstrap,
                                                                            tmp_path, shards):
    """Two workers ingest; one is killed (SIGKILL) mid-ingest and a new one takes its partitions.
    With 3 shards the killed worker's last write may stop between its reserve, store and confirm
    steps: its positions stay pending (the tail waits) until the redelivery completes them."""
    s = settings_factory(topic_partitions=4, tail_maxlen=1_000_000, hot_shards=shards)
    lay = s.layout()
    r = Redis.from_url(s.redis_url)
    a = start_worker(s, tmp_path / "a.log")
    b = start_worker(s, tmp_path / "b.log")
    procs = [a, b]
    try:
        assert await produce(kafka_bootstrap, s.topic, messages()) == N
        deadline = time.monotonic() + 300
        while await stored_count(r, lay) < N // 3:
            assert time.monotonic() < deadline, "ingest made no progress"
            assert a.poll() is None and b.poll() is None, (tmp_path / "a.log").read_text()[-3000:]
            await asyncio.sleep(0.1)
        a.send_signal(signal.SIGKILL)
        a.wait(30)
        killed_at = await stored_count(r, lay)
        assert killed_at < N, "the kill came too late to test anything"
        await asyncio.sleep(1.0)
        a2 = start_worker(s, tmp_path / "a2.log")
        procs.append(a2)
        while await stored_count(r, lay) < N:
            assert time.monotonic() < deadline, f"stuck at {await stored_count(r, lay)} of {N}"
            assert b.poll() is None and a2.poll() is None
            await asyncio.sleep(0.2)
        # let both commit, then stop them gracefully (SIGTERM drains and commits) -- once a2 has
        # its signal handlers (it logs "ingest worker started" after installing them): when b
        # alone stored the rest, a2 may still be starting, and a SIGTERM then just kills it
        while "ingest worker started" not in (tmp_path / "a2.log").read_text():
            assert time.monotonic() < deadline and a2.poll() is None, "the new worker did not start"
            await asyncio.sleep(0.1)
        for p in (b, a2):
            p.send_signal(signal.SIGTERM)
        for p in (b, a2):
            assert p.wait(60) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    produced = {f"k-{i}" for i in range(N)}
    ids: set[str] = set()
    members: list[str] = []
    for t in TENANTS:
        tk = lay.tenant(t)
        mine = await stored_ids(r, tk)
        ids |= set(mine)
        # every tenant's positions: 1..count, each assigned once
        count = len(mine)
        assert int(await r.get(tk.gpos)) == count
        assert await tail_events(r, tk.tail) == count
        inv = await hot_inventory(r, tk)
        assert sorted(inv.positions) == list(range(1, count + 1))
        members += inv.tenant_wide
        assert sorted(inv.bodies) == sorted(inv.tenant_wide) == sorted(inv.by_type) == sorted(inv.seq)
    assert len(produced - ids) == 0, "missing ids"
    assert ids == produced
    assert len(members) == N and set(members) == produced, "index sets: missing or duplicated"
    offsets = await committed(kafka_bootstrap, s.consumer_group, s.topic, 4)
    assert sum(v or 0 for v in offsets.values()) == N
    # ~500 MB of hot data: free the shared Redis for the rest of the session
    keys = [k async for k in r.scan_iter(f"{s.key_prefix}:*", count=10_000)]
    for i in range(0, len(keys), 1000):
        await r.unlink(*keys[i:i + 1000])
    await r.aclose()


def _batch(start: int, n: int):
    for i in range(start, start + n):
        body = {"id": f"s-{i}", "tenant": "acme", "type": "a", "user_id": f"u{i % 13}",
                "timestamp": BASE_TS + i, "data": {"i": i}}
        yield orjson.dumps(body), [("es-format", b"native")], f"acme:u{i % 13}".encode()


@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
async def test_a_worker_restarted_after_sigkill_resumes_per_its_membership(settings_factory, kafka_bootstrap,
                                                                          tmp_path, static):
    """A worker with a static group instance id (EVENTSTRATA_INGEST_INSTANCE_ID), SIGKILLed and
    started again with the same id, takes its partitions back at once: it stores new events well
    inside a session timeout (12 s here) that a dynamic member's replacement has to wait out
    (the broker keeps the dead member until then). Every event is stored once either way."""
    session_ms = 12_000
    s = settings_factory(topic_partitions=2, kafka_session_timeout_ms=session_ms,
                         ingest_instance_id="ingest-0" if static else "")
    tk = s.layout().tenant("acme")
    r = Redis.from_url(s.redis_url)
    procs = [start_worker(s, tmp_path / "w1.log")]
    try:
        assert await produce(kafka_bootstrap, s.topic, _batch(0, 500)) == 500
        deadline = time.monotonic() + 120
        while await id_count(r, tk) < 500:
            assert time.monotonic() < deadline, "the first worker stored nothing"
            await asyncio.sleep(0.1)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(30)
        procs.append(start_worker(s, tmp_path / "w2.log"))
        restarted = time.monotonic()
        assert await produce(kafka_bootstrap, s.topic, _batch(500, 500)) == 500
        while await id_count(r, tk) < 1000:
            assert time.monotonic() < restarted + 120, "the restarted worker stored nothing"
            assert procs[1].poll() is None, (tmp_path / "w2.log").read_text()[-3000:]
            await asyncio.sleep(0.1)
        resumed_s = time.monotonic() - restarted
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert sorted(await stored_ids(r, tk)) == sorted(f"s-{i}" for i in range(1000))
    await r.aclose()
    if static:
        assert resumed_s < session_ms / 1000 / 2, f"the static worker waited {resumed_s:.1f} s"
    else:
        assert resumed_s > session_ms / 1000 / 2, f"a dynamic member's replacement resumed in {resumed_s:.1f} s"
