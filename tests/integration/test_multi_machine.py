"""A multi-machine rehearsal on one host: two API processes and two ingest workers, each with a
state directory of its own (no shared disk), one archiver, the archive in an S3 bucket
(SeaweedFS), the hot tier on the 3-master Redis Cluster with every tenant in 3 shards. The
events are ingested, then the archiver starts moving two of their three days to S3 while both
API processes are queried over and over: every answer of either process is the exact set of
events (none missing, none twice), so the two agree, before, during and after the handoff."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_support import Proc
from ingest_util import jmsg, native, produce
from query_support import walk

from eventstrata.auth import ApiKeys
from eventstrata.localstack.ports import free_port
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

HOUR, DAY = 3_600_000, 86_400_000
TENANTS = ("north", "south", "east")
PER_TENANT = 1500


def _ids(base: str, key: str) -> list[str]:
    with httpx.Client(base_url=base, timeout=30) as client:
        events, _, _ = walk(client, key, [("limit", "1000")])
    return [e["id"] for e in events]


async def test_two_apis_two_workers_one_archiver_s3_and_cluster_agree_exactly(
        settings_factory: Any, kafka_bootstrap: str, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    base = settings_factory(redis_cluster=True, hot_shards=3, archive_s3=True, hot_retention_ms=DAY,
                            window_ms=HOUR, archive_interval_ms=1000, archive_grace_ms=3000,
                            archive_lease_ms=5000, api_key_cache_ms=0, log_level="INFO")
    machines = [replace(base, state_dir=tmp_path / f"machine-{i}", api_port=free_port()) for i in range(2)]
    expected: dict[str, set[str]] = {}
    messages = []
    for t in TENANTS:
        events = [native(i, tenant=t, id=f"{t}-{i}", timestamp=now - 3 * DAY + i * (3 * DAY // PER_TENANT))
                  for i in range(PER_TENANT)]
        expected[t] = {e["id"] for e in events}
        messages += [jmsg(e) for e in events]
    await produce(kafka_bootstrap, base.topic, messages)
    redis = connect_redis(base)
    try:
        keys = {t: await ApiKeys(redis, base.layout()).create(t) for t in TENANTS}
    finally:
        await redis.aclose()

    def env(settings: Any) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("EVENTSTRATA_")}, **settings.to_env()}

    procs = [Proc("eventstrata.processes.ingest", env(m), tmp_path / f"worker-{i}.log") for i, m in enumerate(machines)]
    procs += [Proc("eventstrata.processes.api", env(m), tmp_path / f"api-{i}.log") for i, m in enumerate(machines)]
    apis = [f"http://127.0.0.1:{m.api_port}" for m in machines]
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:  # every event ingested (by the two workers) and readable from both APIs
                try:
                    totals = [len(await asyncio.to_thread(_ids, api, keys[t])) for api in apis for t in TENANTS]
                except (httpx.HTTPError, AssertionError):
                    totals = []
                if totals == [PER_TENANT] * len(apis) * len(TENANTS):
                    break
                assert time.monotonic() < deadline, f"not ingested in time: {totals}"
                await asyncio.sleep(0.5)
            archiver = Proc("eventstrata.processes.archive", env(machines[0]), tmp_path / "archiver.log")
            procs.append(archiver)
            answers = 0
            moved = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (moved and answers >= 12):
                for api in apis:
                    for t in TENANTS:
                        ids = await asyncio.to_thread(_ids, api, keys[t])
                        assert len(ids) == len(set(ids)), f"{api} {t}: an event twice"
                        assert set(ids) == expected[t], (api, t, sorted(expected[t] - set(ids))[:3])
                        answers += 1
                status = (await client.get(apis[1] + "/readyz")).status_code
                assert status == 200
                wm = await _watermarks(base)
                moved = all(w >= now - DAY - HOUR for w in wm.values()) and await _hot_cold_split(base, wm)
            assert moved, "the archiver did not move the old days while the APIs were queried"
            assert answers >= 12
    finally:
        for p in procs:
            p.stop()


async def _watermarks(settings: Any) -> dict[str, int]:
    from eventstrata.hotstore.interface import RedisHotStore

    redis = connect_redis(settings)
    try:
        return {t: await RedisHotStore(redis, settings.layout()).watermark(t) for t in TENANTS}
    finally:
        await redis.aclose()


async def _hot_cold_split(settings: Any, wm: dict[str, int]) -> bool:
    """Whether every tenant's manifest in S3 lists the archived rows (two days' worth)."""
    from eventstrata.archive.destination import open_destination
    from eventstrata.archive.store import load_manifest

    dest = open_destination(settings)
    rows = [await asyncio.to_thread(lambda t=t: load_manifest(dest, t).total_rows) for t in TENANTS]
    return all(r >= PER_TENANT // 2 for r in rows) and all(w > 0 for w in wm.values())
