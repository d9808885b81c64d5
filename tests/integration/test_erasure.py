"""Erasing a user against the real stack (Kafka, the ingest worker, Redis, the archiver, the
API): the user's events in both tiers and in the topic; after the erasure no read, count,
get by id, compatible endpoint or tail resumed from the start returns any of them; a replay of
the topic from offset 0 brings none back; other users' events, positions and totals are
untouched; a job that died midway is completed by the next archive pass; an erasure racing an
archive pass loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import httpx
import orjson
import pytest
from api_support import serving
from ingest_util import jmsg, produce, run_until
from typer.testing import CliRunner

from eventstrata import erasure
from eventstrata.archive.destination import open_destination
from eventstrata.archive.service import run_archiver
from eventstrata.auth import ApiKeys
from eventstrata.cli import app
from eventstrata.client import AsyncClient
from eventstrata.config import Settings
from eventstrata.redisconn import connect_redis
from eventstrata.timeutil import format_ms

pytestmark = pytest.mark.integration
HOUR = 3_600_000
USERS = ("victim", "alice", "bob", "carol")


def _events(now: int) -> list[dict[str, Any]]:
    """60 events per user over the last 3 days (half older than the 1-day hot retention)."""
    return [{"id": f"{u}-{i}", "tenant": "acme", "type": ("view", "buy")[i % 2], "user_id": u,
             "timestamp": now - 72 * HOUR + i * 70 * 60_000 + k * 1000, "data": {"i": i}}
            for i in range(60) for k, u in enumerate(USERS)]


async def _setup(settings_factory: Any, shards: int) -> tuple[Settings, dict[str, str], list[dict[str, Any]], int]:
    s = settings_factory(topic_partitions=1, hot_retention_ms=24 * HOUR, archive_grace_ms=1,
                         api_key_cache_ms=0, hot_shards=shards)
    now = int(time.time() * 1000)
    events = _events(now)
    n = await produce(s.kafka_bootstrap, s.topic, [jmsg(e, es_format="native") for e in events], partition=0)
    await run_until(s, lambda p: p.totals["processed"] >= n)
    reports = await run_archiver(s, once=True, now_ms=now)
    assert reports[0].rows_written > 0
    redis: Any = connect_redis(s)
    try:
        keys = ApiKeys(redis, s.layout())
        return s, {"admin": await keys.create("acme", scopes=("read", "admin")),
                   "read": await keys.create("acme", scopes=("read",))}, events, n
    finally:
        await redis.aclose()


async def _all(c: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await c.get("/v1/events", params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        out += r.json()["events"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


async def _tail_from_start(url: str, key: str, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def read() -> None:
        async with AsyncClient(url, key) as es:
            async for e in es.tail(after="0"):
                got.append(e)
                if len(got) >= n:
                    return

    await asyncio.wait_for(read(), 60)
    return got


@pytest.mark.parametrize("shards", [1, 3])
async def test_an_erased_user_is_gone_from_every_surface_and_stays_gone(settings_factory, shards) -> None:
    s, keys, events, n = await _setup(settings_factory, shards)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    async with serving(s) as url, httpx.AsyncClient(base_url=url, headers={
            "Authorization": f"Bearer {keys['read']}"}, timeout=60) as c:
        before = await _all(c, since="2000-01-01")
        assert len(before) == len(events)
        kept = {e["id"]: e["global_position"] for e in before if e["user_id"] != "victim"}

        r = await c.delete("/v1/users/victim", headers=admin)
        assert r.status_code == 202, r.text
        job = r.json()
        deadline = time.monotonic() + 60
        while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            job = (await c.get(f"/v1/erasures/{job['id']}", headers=admin)).json()
        assert job["status"] == "done", job
        assert job["hot_removed"] > 0 and job["cold_removed"] > 0
        assert job["hot_removed"] + job["cold_removed"] == 60

        after = await _all(c, since="2000-01-01")
        assert {e["id"]: e["global_position"] for e in after} == kept  # others untouched, positions too
        assert await _all(c, user_id="victim", since="2000-01-01") == []
        count = (await c.get("/v1/events/count", params={"since": "2000-01-01"})).json()["count"]
        assert count == len(kept)
        assert (await c.get("/v1/events/count", params={"user_id": "victim", "since": "2000-01-01"})).json() == {
            "count": 0}
        for eid in ("victim-0", "victim-59"):  # one cold, one hot
            assert (await c.get(f"/v1/events/{eid}")).status_code == 404
        td = await c.get("/v1/events.json", params={"api_key": keys["read"], "user_id": "victim",
                                                    "after": format_ms(int(time.time() * 1000) - 5 * 24 * HOUR)})
        assert td.status_code == 200 and td.json()["results"] == [], td.text
        tailed = await _tail_from_start(url, keys["read"], len(kept))
        assert sorted(e["id"] for e in tailed) == sorted(kept)

        # a replay of the whole topic stores none of the victim's events again
        replay = dataclasses.replace(s, consumer_group=f"g-replay-{shards}-{time.time_ns()}")
        await run_until(replay, lambda p: p.totals["processed"] >= n)
        await run_archiver(s, once=True, now_ms=int(time.time() * 1000))
        assert await _all(c, user_id="victim", since="2000-01-01") == []
        assert len(await _all(c, since="2000-01-01")) == len(kept)
        # events timed after the erasure are accepted again
        fresh = {"id": "victim-new", "tenant": "acme", "type": "view", "user_id": "victim",
                 "timestamp": int(time.time() * 1000)}
        await produce(s.kafka_bootstrap, s.topic, [jmsg(fresh, es_format="native")], partition=0)
        await run_until(s, lambda p: p.totals["processed"] >= 1)
        assert [e["id"] for e in await _all(c, user_id="victim", since="2000-01-01")] == ["victim-new"]


async def test_a_job_that_died_midway_is_completed_by_the_next_archive_pass(settings_factory) -> None:
    s, _, events, _ = await _setup(settings_factory, 1)
    redis: Any = connect_redis(s)
    layout, dest = s.layout(), open_destination(s)
    try:
        job = await erasure.request(redis, layout, "acme", "alice", by="test")

        async def dies() -> None:
            raise RuntimeError("killed between the tiers")

        with pytest.raises(RuntimeError):
            await erasure.execute(redis, layout, dest, "acme", job.id, window_ms=s.window_ms, renew=dies)
        half = await erasure.load(redis, layout, "acme", job.id)
        assert half is not None and half.status == "failed" and half.hot_removed > 0 and half.cold_removed == 0

        # the next archive pass completes it; an erasure racing a pass loses and duplicates nothing
        other = await erasure.request(redis, layout, "acme", "bob", by="test")
        await asyncio.gather(run_archiver(s, once=True, now_ms=int(time.time() * 1000)),
                             erasure.run(redis, layout, dest, "acme", other.id, window_ms=s.window_ms,
                                         lease_ms=s.archive_lease_ms))
        for j in (job, other):
            done = await erasure.load(redis, layout, "acme", j.id)
            assert done is not None and done.status == "done", done
    finally:
        await redis.aclose()
    async with serving(s) as url:
        redis = connect_redis(s)
        try:
            key = await ApiKeys(redis, layout).create("acme")
        finally:
            await redis.aclose()
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            left = await _all(c, since="2000-01-01")
        assert sorted(e["id"] for e in left) == sorted(e["id"] for e in events
                                                       if e["user_id"] not in ("alice", "bob"))


async def test_the_cli_erases_locally_and_remotely(settings_factory) -> None:
    s, keys, _, _ = await _setup(settings_factory, 1)
    env = s.to_env()
    local = await asyncio.to_thread(CliRunner().invoke, app, ["users", "erase", "carol", "--tenant", "acme",
                                                              "--json"], env=env)
    assert local.exit_code == 0, local.output
    job = orjson.loads(local.output)
    assert job["status"] == "done" and job["hot_removed"] + job["cold_removed"] == 60
    async with serving(s) as url:
        remote = await asyncio.to_thread(CliRunner().invoke, app, ["users", "erase", "bob", "--json", "--api", url,
                                                                   "--key", keys["admin"]], env=env)
        assert remote.exit_code == 0, remote.output
        job = orjson.loads(remote.output)
        assert job["status"] == "done" and job["requested_by"].startswith("key:")
        assert job["hot_removed"] + job["cold_removed"] == 60
