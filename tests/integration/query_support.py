"""Shared machinery of the query/API integration suites (tests/integration/test_query_*,
test_api_*): a real in-process stack — the session's Redis, the real hot-tier writer, the real
archiver writing real Parquet, and the real API app served by uvicorn on a free loopback port
in a background thread (so synchronous hypothesis tests can talk HTTP to it with httpx).

The dataset generator produces hostile-but-valid events: odd user ids (``a:b{c}*``, ``" "``,
unicode), ids with ``|`` and braces, equal timestamps, every type, nested data/metadata.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from conftest import SMALL_USER_SETS
from eventstrata.api.app import create_app
from eventstrata.archive.service import run_archiver
from eventstrata.auth import DEFAULT_SCOPES, ApiKeys, Scope
from eventstrata.config import Settings
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.hotstore.read import read_events
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.model import Event
from eventstrata.native_shape import native_event
from eventstrata.processes.api import bind_socket
from eventstrata.query.filters import EventFilter
from eventstrata.redisconn import connect_redis

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
USERS = ["a:b{c}*", " ", "ünï©ødé-用户", "u1", "u2", "x|y", "}{", None]
TYPES = ["view", "purchase", "login", "signup", "click"]
NAMES = ["Home", "Checkout", None]
REALMS = ["eu", "us"]
GROUPS = ["g1", "g2", "g3"]
ROLES = ["admin", "viewer"]


def make_events(tenant: str, n: int, *, start_ms: int, span_ms: int, seed: int, prefix: str = "e") -> list[Event]:
    """``n`` events of ``tenant`` with times in ``[start_ms, start_ms + span_ms)``; about a third
    share a timestamp with another event."""
    rng = random.Random(seed)
    shared = [start_ms + rng.randrange(span_ms) for _ in range(max(1, n // 6))]
    out: list[Event] = []
    for i in range(n):
        ts = rng.choice(shared) if rng.random() < 0.35 else start_ms + rng.randrange(span_ms)
        user = rng.choice(USERS)
        data: dict[str, Any] = {
            "plan": rng.choice(["pro", "free", "5"]),
            "n": rng.choice([1, 2, 5]),
            "nested": {"k": rng.choice(["a", "b"]), "deep": {"x": rng.choice([True, False])}},
        }
        if rng.random() < 0.3:
            data["it's"] = rng.choice(["q'uote", "; DROP TABLE x; --"])
        meta: Any = rng.choice([None, {"src": rng.choice(["web", "ios"]), "v": rng.choice([1, 2])}])
        out.append(Event(
            id=f"{prefix}{i}:{{{seed}}}|{rng.choice(['', 'ü', ' '])}",
            tenant=tenant,
            type=rng.choice(TYPES),
            timestamp=ts,
            received_at=ts + 5,
            format="native",
            name=rng.choice(NAMES),
            user_id=user,
            source=rng.choice(["web", "app", None]),
            session_id=rng.choice(["s1", "s2", None]),
            stream_id=rng.choice(["st-1", "st-2", None]),
            transaction_id=rng.choice(["tx1", None]),
            is_conversion=rng.choice([True, False, None]),
            user={"realm": rng.choice(REALMS), "groups": rng.sample(GROUPS, rng.randrange(3)),
                  "roles": rng.sample(ROLES, rng.randrange(2))},
            data=data,
            metadata=meta,
        ))
    return out


def brute_force(events: Iterable[Event], flt: EventFilter, order: str) -> list[Event]:
    got = [e for e in events if flt.matches(e)]
    got.sort(key=lambda e: (e.timestamp, e.id), reverse=(order == "desc"))
    return got


def expected_json(e: Event) -> dict[str, Any]:
    return native_event(e)


class QueryStack:
    """The real stack in a background thread. ``start()`` / ``stop()`` from synchronous code."""

    def __init__(self, redis_url: str, tmp: Path, *, hot_retention: str = "2d", **overrides: Any) -> None:
        """``overrides``: more settings (``redis_cluster``, ``hot_shards``, …)."""
        from eventstrata.config import parse_duration_ms

        values: dict[str, Any] = {"archive_uri": str(tmp / "archive"), "user_set_max": SMALL_USER_SETS, **overrides}
        self.settings = Settings.from_env(
            env={}, redis_url=redis_url, key_prefix="q" + uuid.uuid4().hex[:10],
            state_dir=tmp / "state", api_port=0,
            hot_retention_ms=parse_duration_ms(hot_retention), window_ms=HOUR_MS,
            # A tiny grace: removal from Redis follows the watermark advance almost at once, so
            # queries really race the archiver (the engine re-reads W after the hot read).
            archive_grace_ms=1, **values,
        )
        self.layout = self.settings.layout()
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.events: dict[str, dict[str, Event]] = {}  # tenant -> id -> stored event (with positions)
        self._lock = threading.Lock()

    # -- server --------------------------------------------------------------------------
    def start(self) -> None:
        sock = bind_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.settings), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200 and server.started:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("API did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- data ----------------------------------------------------------------------------
    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    async def _write(self, events: Sequence[Event]) -> None:
        redis = connect_redis(self.settings)
        try:
            writer = RedisHotWriter(redis, self.layout, window_ms=self.settings.window_ms,
                                    tail_maxlen=self.settings.tail_maxlen)
            res = await writer.write(events)
        finally:
            await redis.aclose()
        with self._lock:
            for e, (g, s) in zip(events, res.positions, strict=True):
                self.events.setdefault(e.tenant, {})[e.id] = e.with_positions(g, s)

    def write(self, events: Sequence[Event]) -> None:
        self.run(self._write(events))

    async def _ingest(self, events: Sequence[Event], bootstrap: str, topic: str) -> None:
        from dataclasses import replace

        import orjson
        from ingest_util import run_until

        from eventstrata.formats.native import render as render_native_input
        from eventstrata.produce import Outgoing, publish

        msgs = [Outgoing(orjson.dumps(render_native_input(e)), (("es-format", b"native"),),
                         f"{e.tenant}:{e.user_id}".encode()) for e in events]
        sent = await publish(bootstrap, topic, msgs)
        assert sent.failed == 0 and sent.sent == len(events)
        settings = replace(self.settings, kafka_bootstrap=bootstrap, topic=topic, dlq_topic=topic + ".dlq",
                           consumer_group="oracle-" + uuid.uuid4().hex[:8])
        n = len(events)
        code = await run_until(settings, lambda p: p.totals["stored"] + p.totals["duplicates"]
                               + p.totals["dead_lettered"] >= n)
        assert code == 0
        redis = connect_redis(self.settings)
        try:
            for e in events:
                tk = self.layout.tenant(e.tenant)
                [stored] = await read_events(redis, tk, [e.id], codec=BodyCodec())
                assert stored is not None, f"{e.id!r} has no body"
                # what went through Kafka comes back equal, but for what the service assigns
                assigned = ("received_at", "global_position", "stream_position")
                want = {k: v for k, v in e.to_dict().items() if k not in assigned}
                assert {k: v for k, v in stored.to_dict().items() if k not in assigned} == want
                with self._lock:
                    self.events.setdefault(e.tenant, {})[e.id] = stored
        finally:
            await redis.aclose()

    def ingest(self, events: Sequence[Event], *, bootstrap: str, topic: str) -> None:
        """Publish ``events`` to Kafka in the native format and run a real ingest worker until
        every one is stored; the stored versions (with positions) become the oracle's truth."""
        self.run(self._ingest(events, bootstrap, topic))

    def archive(self, now_ms: int) -> None:
        self.run(run_archiver(self.settings, once=True, now_ms=now_ms))

    def watermark(self, tenant: str) -> int:
        async def go() -> int:
            redis = connect_redis(self.settings)
            try:
                return await RedisHotStore(redis, self.layout).watermark(tenant)
            finally:
                await redis.aclose()
        return int(self.run(go()))

    def create_key(self, tenant: str, scopes: tuple[Scope, ...] = DEFAULT_SCOPES) -> str:
        async def go() -> str:
            redis = connect_redis(self.settings)
            try:
                return await ApiKeys(redis, self.layout).create(tenant, scopes=scopes)
            finally:
                await redis.aclose()
        return str(self.run(go()))

    def revoke_key(self, key: str) -> bool:
        async def go() -> bool:
            redis = connect_redis(self.settings)
            try:
                return await ApiKeys(redis, self.layout).revoke(key)
            finally:
                await redis.aclose()
        return bool(self.run(go()))

    def snapshot(self, tenant: str) -> list[Event]:
        with self._lock:
            return list(self.events.get(tenant, {}).values())


def walk(client: httpx.Client, key: str, params: list[tuple[str, str]] | None = None, *,
         body: dict[str, Any] | None = None, max_pages: int = 10_000) -> tuple[list[dict[str, Any]], int | None, int]:
    """Every page of GET /v1/events (or POST /v1/events/query with ``body``): (events, total of
    the first page, pages)."""
    headers = {"Authorization": f"Bearer {key}"}
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    total: int | None = None
    pages = 0
    while pages < max_pages:
        if body is not None:
            b = dict(body)
            if cursor is not None:
                b["cursor"] = cursor
                b.pop("include_total", None)
            r = client.post("/v1/events/query", json=b, headers=headers)
        else:
            p = list(params or [])
            if cursor is not None:
                p = [kv for kv in p if kv[0] != "include_total"]
                p.append(("cursor", cursor))
            r = client.get("/v1/events", params=p, headers=headers)
        assert r.status_code == 200, r.text
        doc = r.json()
        pages += 1
        if pages == 1:
            total = doc.get("total")
        events.extend(doc["events"])
        cursor = doc["next_cursor"]
        if cursor is None:
            return events, total, pages
    raise AssertionError("too many pages")


def assert_rejected_within(client: Any, key: str, seconds: float, path: str = "/v1/events") -> None:
    """Poll ``path`` with ``key`` until it answers 401 (``unauthorized``); fail when it still
    answers 200 after ``seconds`` (a revoked key may be trusted for the API key cache TTL)."""
    start = time.monotonic()
    while (r := client.get(path, headers={"Authorization": f"Bearer {key}"})).status_code == 200:
        assert time.monotonic() - start < seconds, f"revoked key still accepted after {seconds} s"
        time.sleep(0.05)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"

