"""Per-key rate limits against two API processes sharing one Redis: a burst above the budget
gets 429 with ``Retry-After`` on the native and compatible surfaces, the budget is one budget
over both processes, another key is unaffected, and an ingest request costs one use per event."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
from api_support import serving

from eventstrata.auth import ApiKeys
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

BUDGET = 5


async def test_a_burst_above_the_budget_is_refused_across_both_processes(settings_factory) -> None:
    s = settings_factory(topic_partitions=1, rate_reads=BUDGET, rate_ingest_events=3)
    redis: Any = connect_redis(s)
    try:
        keys = ApiKeys(redis, s.layout())
        hot, calm = await keys.create("acme"), await keys.create("acme")
        async with serving(s) as url_a, serving(s) as url_b, httpx.AsyncClient(timeout=30) as c:
            started = time.time()
            replies = await asyncio.gather(*[
                c.get(f"{(url_a, url_b)[i % 2]}/v1/events", headers={"Authorization": f"Bearer {hot}"})
                for i in range(30)])
            windows = int(time.time()) - int(started) + 1
            ok = [r for r in replies if r.status_code == 200]
            refused = [r for r in replies if r.status_code == 429]
            assert len(ok) + len(refused) == 30
            assert 1 <= len(ok) <= BUDGET * windows  # one budget for both processes
            assert refused and all(int(r.headers["retry-after"]) >= 1 for r in refused)
            assert refused[0].json()["error"]["code"] == "rate_limited"
            lookup = hot.split("_")[1]
            counted = 0
            for key in await redis.keys(s.layout().rate(lookup, "reads", 0).rsplit(":", 1)[0] + ":*"):
                counted += int(await redis.get(key))
            assert counted == 30  # both processes counted every request in the same Redis counters

            other = await c.get(f"{url_a}/v1/events", headers={"Authorization": f"Bearer {calm}"})
            assert other.status_code == 200
            await asyncio.sleep(1.1)  # a new window: the hot key reads again
            for _ in range(3):
                again = await c.get(f"{url_b}/v1/events", headers={"Authorization": f"Bearer {hot}"})
                if again.status_code == 200:
                    break
                await asyncio.sleep(float(again.headers["retry-after"]))
            assert again.status_code == 200

            # the compatible endpoints spend the same budget: sent at once, more requests than
            # three windows' budgets (a slow host may spread them over a window boundary or two)
            busy = await asyncio.gather(*[c.get(f"{url_a}/v1/events.json", params={"api_key": calm})
                                          for _ in range(3 * BUDGET + 1)])
            assert 429 in [r.status_code for r in busy]
            assert "retry-after" in next(r for r in busy if r.status_code == 429).headers

            events = orjson.dumps([{"id": f"e{i}", "type": "t", "timestamp": int(time.time() * 1000)}
                                   for i in range(5)])
            ingest_key = await keys.create("acme", scopes=("ingest",))
            big = await c.post(f"{url_a}/v1/ingest?format=native", content=events,
                               headers={"Authorization": f"Bearer {ingest_key}"})
            assert big.status_code == 429 and big.json()["error"]["code"] == "rate_limited"
    finally:
        await redis.aclose()
