"""``serve`` with ``EVENTSTRATA_API_PROCESSES=2``, started as operators start it: two API
processes accept on one port and both answer, ``/metrics`` sums what both served, one killed
with SIGKILL is replaced, and SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from eventstrata.auth import ApiKeys
from eventstrata_bench.machine import process_cpu_seconds, spawned_children

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 400


def _wait_for(what: Callable[[], object], seconds: float, label: str) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting for {label}"
        time.sleep(0.1)


def _served(metrics: str) -> int:
    """Requests to ``/v1/events`` answered 200, from the request histogram's counts."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("eventstrata_api_request_seconds_count{") and 'endpoint="/v1/events"' in line \
                and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def test_two_api_processes_share_the_port_and_the_metrics(settings_factory, tmp_path: Path) -> None:
    s = settings_factory(api_processes=2)
    redis = Redis.from_url(s.redis_url)
    try:
        key = await ApiKeys(redis, s.layout()).create("acme")
    finally:
        await redis.aclose()
    out = tmp_path / "api.out"
    env = {**os.environ, **s.to_env(), "EVENTSTRATA_LOG_LEVEL": "INFO"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    api = subprocess.Popen([sys.executable, "-m", "eventstrata.processes.api"], env=env, cwd=ROOT,
                           stdout=out.open("wb"), stderr=(tmp_path / "api.err").open("wb"))
    try:
        _wait_for(lambda: "listening on" in out.read_text(), 60, "the API to listen")
        url = out.read_text().split("listening on", 1)[1].split()[0]
        _wait_for(lambda: len(spawned_children(api.pid)) == 2, 60, "two API processes")
        servers = spawned_children(api.pid)

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(healthy, 60, "the API to answer")
        cpu0 = {p: process_cpu_seconds(p) for p in servers}
        headers = {"Authorization": f"Bearer {key}"}
        # no keep-alive: every request is a new connection, which either process may accept
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
            async def one(i: int) -> int:
                r = await client.get("/v1/events", params={"user_id": f"u{i % 17}", "limit": 50})
                return r.status_code

            statuses: list[int] = []
            for start in range(0, REQUESTS, 8):
                statuses += await asyncio.gather(*(one(i) for i in range(start, start + 8)))
        assert statuses == [200] * REQUESTS
        busy = {p: process_cpu_seconds(p) - cpu0[p] for p in servers}
        assert all(v >= 0.05 for v in busy.values()), f"CPU seconds per API process while serving: {busy}"
        # whichever process answers the scrape, it reports both processes' requests
        for _ in range(4):
            assert _served(httpx.get(f"{url}/metrics", timeout=10).text) == REQUESTS

        os.kill(servers[0], signal.SIGKILL)
        _wait_for(lambda: len(now := spawned_children(api.pid)) == 2 and servers[0] not in now, 60,
                  "the killed API process to be replaced")
        _wait_for(healthy, 60, "the API to answer again")
        r = httpx.get(f"{url}/v1/events", params={"user_id": "u1"}, headers=headers, timeout=10)
        assert r.status_code == 200 and r.json()["events"] == []
        last = spawned_children(api.pid)
    finally:
        if api.poll() is None:
            api.send_signal(signal.SIGTERM)
        try:
            rc = api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api.kill()
            raise
    assert rc == 0, (tmp_path / "api.err").read_text()[-2000:]
    for p in last:
        assert not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text().lower()
    assert not re.search(r"Traceback", (tmp_path / "api.err").read_text())
