"""The live tail over HTTP: SSE and WebSocket routes of a real API process (uvicorn in this
process), real Redis, events stored through the real hot-tier writer (the ingest Lua script)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
import websockets

from eventstrata.api.app import create_app
from eventstrata.auth import ApiKeys
from eventstrata.config import Settings
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter
from eventstrata.redisconn import RedisClient, connect_redis
from eventstrata.tail.catchup import CatchUp
from eventstrata.tail.hub import TailHub
from eventstrata.tail.wire import SseMessage, SseParser

pytestmark = pytest.mark.integration

WAIT_S = 60.0  # upper bound for any wait (not a speed assertion)


class Api:
    """One API process (uvicorn server task) on a free port."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=5, ws_ping_interval=None))
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Api:
        self.task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + WAIT_S
        while not self.server.started:
            if self.task.done() or time.monotonic() > deadline:
                raise AssertionError("API did not start")
            await asyncio.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def hub(self) -> TailHub:
        hub: TailHub = self.app.state.tail.hub
        return hub

    async def stop(self) -> None:
        self.hub.request_stop()  # what the chained SIGTERM handler does when shutdown begins
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, WAIT_S)
            self.task = None

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            await self.stop()


class World:
    def __init__(self, settings: Settings, redis: RedisClient) -> None:
        self.settings = settings
        self.redis = redis
        self.layout = settings.layout()
        self.writer = RedisHotWriter(redis, self.layout, window_ms=settings.window_ms,
                                     tail_maxlen=settings.tail_maxlen)
        self.produced: dict[str, list[Event]] = {}

    async def key(self, tenant: str) -> str:
        return await ApiKeys(self.redis, self.layout).create(tenant)

    async def produce(self, tenant: str, n: int, *, pad: int = 0, per_write: int = 500) -> list[Event]:
        """Store ``n`` events, ``per_write`` per write call (each call's new events are one tail
        entry, and the tail is trimmed by whole entries)."""
        have = self.produced.setdefault(tenant, [])
        now = int(time.time() * 1000)
        types = ("view", "click", "buy")
        events = [
            Event(id=f"{tenant}-{i}", tenant=tenant, type=types[i % 3], timestamp=now - 5000 + i % 1000,
                  received_at=now, format="native", user_id=f"u{i % 7}", data={"i": i, "pad": "x" * pad})
            for i in range(len(have), len(have) + n)
        ]
        for i in range(0, n, per_write):
            res = await self.writer.write(events[i : i + per_write])
            for e, (g, s) in zip(events[i : i + per_write], res.positions, strict=True):
                have.append(e.with_positions(g, s))
        return have[-n:]


@pytest.fixture
async def world(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest) -> AsyncIterator[World]:
    overrides: dict[str, Any] = {"topic": "unused.tail", "dlq_topic": "unused.tail.dlq", "tail_heartbeat_ms": 300}
    overrides.update(getattr(request, "param", {}))
    settings = settings_factory(**overrides)
    redis: Any = connect_redis(settings)
    try:
        yield World(settings, redis)
    finally:
        await redis.aclose()


class SseStream:
    """An open ``GET /v1/tail`` response with an SSE parser."""

    def __init__(self, resp: httpx.Response) -> None:
        self.resp = resp
        self.parser = SseParser()
        self.pending: list[SseMessage] = []
        self.chunks = resp.aiter_text()

    async def next(self) -> SseMessage | None:
        while not self.pending:
            try:
                chunk = await self.chunks.__anext__()
            except StopAsyncIteration:
                return None
            self.pending.extend(self.parser.feed(chunk))
        return self.pending.pop(0)

    async def events(self, n: int, *, others: list[SseMessage] | None = None) -> list[dict[str, Any]]:
        """The next ``n`` events (``id`` checked against the body's position)."""
        out: list[dict[str, Any]] = []

        async def run() -> None:
            while len(out) < n:
                msg = await self.next()
                if msg is None:
                    raise AssertionError(f"stream ended after {len(out)} of {n} events")
                if msg.event == "message":
                    body = orjson.loads(msg.data)
                    assert msg.id == str(body["global_position"])
                    out.append(body)
                elif others is not None:
                    others.append(msg)

        await asyncio.wait_for(run(), WAIT_S)
        return out

    async def until(self, event: str) -> SseMessage:
        async def run() -> SseMessage:
            while True:
                msg = await self.next()
                if msg is None:
                    raise AssertionError(f"stream ended before {event}")
                if msg.event == event:
                    return msg
                assert msg.event in ("heartbeat",), msg

        return await asyncio.wait_for(run(), WAIT_S)


@contextlib.asynccontextmanager
async def sse(client: httpx.AsyncClient, url: str, key: str | None, params: Any = (),
              headers: dict[str, str] | None = None) -> AsyncIterator[SseStream]:
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    async with client.stream("GET", f"{url}/v1/tail", params=params, headers=h) as resp:
        yield SseStream(resp)


def client(n: int = 10) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(WAIT_S),
                             limits=httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10))


def gpos(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["global_position"]) for e in events]


@pytest.mark.parametrize("world", [{}, {"redis_cluster": True, "hot_shards": 4}], indirect=True,
                         ids=["single", "cluster-4-shards"])
async def test_resume_matrix_over_sse_and_across_a_restart(world: World) -> None:
    key = await world.key("acme")
    await world.produce("acme", 20)  # positions 1..20
    async with client() as c:
        async with Api(world.settings) as api:
            cases = {"0": list(range(1, 21)), "20": [], "19": [20], "5-0": list(range(6, 21))}
            streams = {}
            stack = contextlib.AsyncExitStack()
            async with stack:
                for after in cases:
                    streams[after] = await stack.enter_async_context(sse(c, api.url, key, {"after": after}))
                    assert streams[after].resp.status_code == 200
                # Last-Event-ID wins over ?after (EventSource reconnect semantics)
                streams["hdr"] = await stack.enter_async_context(
                    sse(c, api.url, key, {"after": "0"}, {"Last-Event-ID": "17"}))
                cases["hdr"] = [18, 19, 20]
                got = {a: gpos(await s.events(len(cases[a]))) for a, s in streams.items()}
                await until(lambda: api.hub.subscriber_count("acme") == 5)
                await world.produce("acme", 3)
                for a, s in streams.items():
                    got[a] += gpos(await s.events(3))
                    assert got[a] == cases[a] + [21, 22, 23], a

            # malformed ids → 400 in the native error shape, before any stream starts
            for bad in ({"after": "abc"}, {"after": "-3"}):
                r = await c.get(f"{api.url}/v1/tail", params=bad, headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 400
                assert r.json()["error"]["code"] == "invalid_parameter"
                assert r.json()["error"]["details"][0]["path"] == "after"
            r = await c.get(f"{api.url}/v1/tail", headers={"Authorization": f"Bearer {key}", "Last-Event-ID": "x1"})
            assert r.status_code == 400
            r = await c.get(f"{api.url}/v1/tail", params={"limit": "5"}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 400

            # across an API restart: the reconnect event carries the position; resume from it
            async with sse(c, api.url, key, {"after": "0"}) as s:
                first = gpos(await s.events(23))
                stop = asyncio.create_task(api.stop())
                msg = await s.until("reconnect")
                assert orjson.loads(msg.data)["position"] == 23
                await stop
        await world.produce("acme", 4)  # stored while no API runs
        async with Api(world.settings) as api2, sse(c, api2.url, key, headers={"Last-Event-ID": "23"}) as s:
            rest = gpos(await s.events(4))
            await world.produce("acme", 2)
            rest += gpos(await s.events(2))
        assert first + rest == [e.global_position for e in world.produced["acme"]] == list(range(1, 30))


@pytest.mark.parametrize("world", [{"tail_maxlen": 10}], indirect=True)
async def test_resume_older_than_the_live_stream_catches_up_from_the_tiers(world: World) -> None:
    key = await world.key("trim")
    await world.produce("trim", 400, per_write=3)
    first = await CatchUp(RedisHotStore(world.redis, world.layout), None, now_ms=lambda: 0).stream_first("trim")
    assert first is not None and first > 50  # trimmed: position 6 is not in the stream any more
    async with client() as c, Api(world.settings) as api:
        async with sse(c, api.url, key, {"after": "5"}) as all_s, \
                sse(c, api.url, key, [("after", "5"), ("type", "buy"), ("user_id", "u3")]) as flt_s:
            got_all = gpos(await all_s.events(395))
            expected_flt = [e for e in world.produced["trim"][5:] if e.type == "buy" and e.user_id == "u3"]
            got_flt = gpos(await flt_s.events(len(expected_flt)))
            await until(lambda: api.hub.subscriber_count("trim") == 2)
            more = await world.produce("trim", 30)
            got_all += gpos(await all_s.events(30))
            m_flt = [e for e in more if e.type == "buy" and e.user_id == "u3"]
            got_flt += gpos(await flt_s.events(len(m_flt)))
        assert got_all == list(range(6, 431))
        assert got_flt == [e.global_position for e in expected_flt + m_flt]


@pytest.mark.parametrize("world", [{"tail_max_subscribers": 2}], indirect=True)
async def test_subscriber_limit_429_tenant_isolation_and_auth(world: World) -> None:
    ka, kb = await world.key("ta"), await world.key("tb")
    async with client() as c, Api(world.settings) as api:
        r = await c.get(f"{api.url}/v1/tail")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        async with sse(c, api.url, ka) as a1, sse(c, api.url, None, {"access_token": ka, "type": "buy"}) as a2, \
                sse(c, api.url, kb) as b1:
            assert (a1.resp.status_code, a2.resp.status_code, b1.resp.status_code) == (200, 200, 200)
            r = await c.get(f"{api.url}/v1/tail", headers={"Authorization": f"Bearer {ka}"})
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "too_many_subscribers"
            await until(lambda: api.hub.subscriber_count("ta") == 2 and api.hub.subscriber_count("tb") == 1)
            await world.produce("ta", 30)
            await world.produce("tb", 12)
            got_a1 = await a1.events(30)
            got_a2 = await a2.events(10)
            got_b1 = await b1.events(12)
            assert {e["tenant"] for e in got_a1 + got_a2} == {"ta"}
            assert [e["id"] for e in got_a1] == [e.id for e in world.produced["ta"]]
            assert [e["id"] for e in got_a2] == [e.id for e in world.produced["ta"] if e.type == "buy"]
            assert [e["id"] for e in got_b1] == [e.id for e in world.produced["tb"]]
            # the heartbeat of the filtered idle tail carries the position it has covered
            hb = await a2.until("heartbeat")
            assert orjson.loads(hb.data)["position"] == 30 and hb.id == "30"
        # a client that goes away frees its slot (no leaked subscribers)
        await until(lambda: api.hub.subscriber_count("ta") == 0 and api.hub.subscriber_count("tb") == 0)
        async with sse(c, api.url, ka) as again:
            assert again.resp.status_code == 200


async def test_websocket_tail(world: World) -> None:
    key = await world.key("ws")
    await world.produce("ws", 5)
    async with Api(world.settings) as api:
        ws_url = api.url.replace("http://", "ws://") + f"/v1/tail/ws?access_token={key}&after=2&type=view&type=click"
        async with websockets.connect(ws_url) as ws:
            msgs = [orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S)) for _ in range(2)]
            assert [(m["type"], m["id"]) for m in msgs] == [("event", 4), ("event", 5)]
            await world.produce("ws", 3)  # positions 6 (buy), 7 (view), 8 (click)
            msgs = [orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S)) for _ in range(2)]
            assert [(m["type"], m["id"], m["event"]["type"]) for m in msgs] == [
                ("event", 7, "view"), ("event", 8, "click")]
            stop = asyncio.create_task(api.stop())
            while True:
                m = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                if m["type"] != "heartbeat":
                    break
            assert m == {"type": "reconnect", "position": 8}
            await stop
    async with Api(world.settings) as api3:
        bad = api3.url.replace("http://", "ws://") + "/v1/tail/ws?access_token=nope"
        async with websockets.connect(bad) as ws:
            m = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            assert m["type"] == "error" and m["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("world", [{"tail_buffer": 50}], indirect=True)
async def test_slow_sse_reader_gets_lagged_then_every_event(world: World) -> None:
    key = await world.key("slow")
    async with client() as c, Api(world.settings) as api:
        async with sse(c, api.url, key) as s:
            await until(lambda: api.hub.is_ready("slow"))
            await world.produce("slow", 1, pad=2000)
            assert gpos(await s.events(1)) == [1]
            # the client stops reading while 10,000 events (~20 MB) arrive: far more than the
            # socket buffers and the 50-event subscriber buffer hold
            await world.produce("slow", 9_999, pad=2000)
            await until(lambda: api.hub.head("slow") == 10_000)
            others: list[SseMessage] = []
            got = gpos(await s.events(9_999, others=others))
        assert got == list(range(2, 10_001))  # every event exactly once, in order
        lagged = [orjson.loads(m.data) for m in others if m.event == "lagged"]
        assert lagged, "the slow subscriber was not told it lagged"
        # the signal says where it stood: last delivered position, and a newer stored head
        assert all(1 <= lg["position"] < lg["head"] <= 10_000 for lg in lagged)
        assert {m.event for m in others} <= {"lagged", "heartbeat"}


async def test_thousand_concurrent_sse_subscribers_with_different_filters(world: World) -> None:
    key = await world.key("many")
    users = [f"u{i}" for i in range(7)]
    filters: list[tuple[list[tuple[str, str]], EventFilter]] = []
    for i in range(1000):
        kind = i % 5
        if kind == 0:
            filters.append(([], EventFilter()))
        elif kind == 1:
            t = ("view", "click", "buy")[i % 3]
            filters.append(([("type", t)], EventFilter(types=(t,))))
        elif kind == 2:
            u = users[i % 7]
            filters.append(([("user_id", u)], EventFilter(user_ids=(u,))))
        elif kind == 3:
            u, t = users[i % 7], ("view", "buy")[i % 2]
            filters.append(([("user_id", u), ("type", t)], EventFilter(user_ids=(u,), types=(t,))))
        else:
            filters.append(([("exclude_type", "view"), ("data.i", str(i % 50))],
                            EventFilter(exclude_types=("view",), data_eq=((("i",), i % 50),))))
    async with client(1000) as c, Api(world.settings) as api, contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(sse(c, api.url, key, p)) for p, _f in filters]
        assert all(s.resp.status_code == 200 for s in streams)
        await until(lambda: api.hub.subscriber_count("many") == 1000)
        await until(lambda: api.hub.is_ready("many"))
        produced: list[Event] = []
        for _ in range(4):  # ingest in batches while the subscribers read
            produced += await world.produce("many", 50)
        expected = [[e.id for e in produced if f.matches(e)] for _p, f in filters]
        results = await asyncio.gather(*(s.events(len(exp)) for s, exp in zip(streams, expected, strict=True)))
        for (p, _f), exp, got in zip(filters, expected, results, strict=True):
            assert [e["id"] for e in got] == exp, p
        assert sum(map(len, expected)) > 20_000  # the filters do select different, overlapping sets
        # nothing more is pending for anyone: one more event reaches exactly its matching subscribers
        extra = (await world.produce("many", 1))[0]
        matching = [i for i, (_p, f) in enumerate(filters) if f.matches(extra)]
        nxt = await asyncio.gather(*(streams[i].events(1) for i in matching))
        assert all(n[0]["id"] == extra.id for n in nxt)


async def until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
