"""The Python client (``eventstrata.client``) against a real API (uvicorn in this process) and
Redis: its cursor walk equals the API's, it retries 429s, it ingests, and its tail survives an
API restart in the middle with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
from api_support import serving

from eventstrata.auth import ApiKeys
from eventstrata.client import ApiError, AsyncClient, Client, NotFound
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.model import Event
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration


def _events(n: int, start: int, now: int) -> list[Event]:
    return [Event(id=f"c-{i:05d}", tenant="acme", type=("view", "buy")[i % 2], timestamp=now - 60_000 + i,
                  received_at=now, format="native", user_id=f"u{i % 3}", data={"i": i})
            for i in range(start, start + n)]


def _raw_walk(url: str, key: str, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    cursor = None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
        while True:
            r = c.get("/v1/events", params={**params, **({"cursor": cursor} if cursor else {})})
            if r.status_code == 429:  # the test's own rate limit
                time.sleep(float(r.headers["retry-after"]))
                continue
            body = r.json()
            ids += [e["id"] for e in body["events"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return ids


async def test_the_client_walks_counts_gets_and_retries(settings_factory) -> None:
    s = settings_factory(topic="unused.client", dlq_topic="unused.client.dlq", rate_reads=3)
    redis: Any = connect_redis(s)
    try:
        key = await ApiKeys(redis, s.layout()).create("acme")
        now = int(time.time() * 1000)
        await RedisHotWriter(redis, s.layout(), window_ms=s.window_ms, tail_maxlen=s.tail_maxlen).write(
            _events(230, 0, now))
        async with serving(s) as url:
            params = {"user_id": ["u0", "u1"], "limit": 40}
            want = await asyncio.to_thread(_raw_walk, url, key, params)
            assert len(want) == len([i for i in range(230) if i % 3 in (0, 1)])
            # rate_reads=3: the walk's pages are refused with 429 and retried after Retry-After
            got = await asyncio.to_thread(lambda: [e["id"] for e in Client(url, key).events(**params)])
            assert got == want
            async with AsyncClient(url, key) as es:
                assert [e["id"] async for e in es.events(**params)] == want
                count = await es.count(user_id="u2")
                assert count.count == len([i for i in range(230) if i % 3 == 2])
                assert (await es.get("c-00007"))["data"] == {"i": 7}
                with pytest.raises(NotFound):
                    await es.get("nope")
            impatient = Client(url, key, retries=0)

            def burst() -> None:  # in a thread: the API serves in this test's event loop
                for _ in range(10):
                    impatient.page(limit=1)

            with pytest.raises(ApiError) as err:
                await asyncio.to_thread(burst)
            assert (err.value.status, err.value.code) == (429, "rate_limited")
    finally:
        await redis.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_tail_survives_an_api_restart_without_a_gap_or_a_duplicate(settings_factory) -> None:
    s = settings_factory(topic="unused.client", dlq_topic="unused.client.dlq", tail_heartbeat_ms=300)
    redis: Any = connect_redis(s)
    writer = RedisHotWriter(redis, s.layout(), window_ms=s.window_ms, tail_maxlen=s.tail_maxlen)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    got: list[str] = []
    try:
        key = await ApiKeys(redis, s.layout()).create("acme")
        now = int(time.time() * 1000)
        es = AsyncClient(url, key, backoff_s=0.2)

        async def follow() -> None:
            async for event in es.tail(type="buy"):
                got.append(event["id"])
                if len(got) == 150:
                    return

        async with serving(s, port):
            task = asyncio.create_task(follow())
            await asyncio.sleep(1.0)  # subscribed
            await writer.write(_events(100, 0, now))
            while len(got) < 50:
                await asyncio.sleep(0.05)
        await writer.write(_events(100, 100, now))  # while the API is down
        async with serving(s, port):
            await writer.write(_events(100, 200, now))
            await asyncio.wait_for(task, 60)
        await es.aclose()
        assert got == [f"c-{i:05d}" for i in range(300) if i % 2 == 1]
    finally:
        await redis.aclose()
