"""Tenant isolation, cursor integrity, authentication and injection, on both tiers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from query_support import DAY_MS, QueryStack, assert_rejected_within, make_events, walk

from eventstrata.model import Event
from eventstrata.query.cursor import CursorState, encode_cursor
from eventstrata.query.filters import EventFilter

pytestmark = pytest.mark.integration

INJECT = [
    "x'; DROP TABLE es_cold_src; --",
    "read_csv('/etc/passwd')",
    "COPY (SELECT 1) TO '/tmp/es_pwned.csv'",
    "/* comment */ 1) OR (1=1",
    '"quoted" \\ back',
    "a;b",
]


def _inject_events(tenant: str, ts: int, prefix: str) -> list[Event]:
    out = []
    for i, v in enumerate(INJECT):
        out.append(Event(id=f"{prefix}{i}'; --", tenant=tenant, type="inj", timestamp=ts + i, received_at=ts,
                         format="native", user_id=v, data={"q": v, v: "key-is-hostile", "n": {"x'y": v}},
                         metadata={"m": v}))
    return out


@pytest.fixture(scope="module", params=["single", "cluster-sharded"])
def stack(request: pytest.FixtureRequest, redis_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[QueryStack, dict[str, str], int]]:
    """Two tenants on a single Redis, and on the 3-master Cluster with 4 shards each."""
    if request.param == "single":
        s = QueryStack(redis_url, tmp_path_factory.mktemp("sec"))
    else:
        s = QueryStack(request.getfixturevalue("redis_cluster_url"), tmp_path_factory.mktemp("sec"),
                       redis_cluster=True, hot_shards=4)
    s.start()
    now = int(time.time() * 1000)
    for seed, t in enumerate(("secA", "secB")):
        evs = make_events(t, 120, start_ms=now - 5 * DAY_MS, span_ms=5 * DAY_MS, seed=500 + seed,
                          prefix=f"{t}-")
        evs += _inject_events(t, now - 4 * DAY_MS, "cold-") + _inject_events(t, now - 3600_000, "hot-")
        s.write(evs)
    s.archive(now)
    keys = {t: s.create_key(t) for t in ("secA", "secB")}
    yield s, keys, now
    s.stop()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _path(event_id: str) -> str:
    return "/v1/events/" + httpx.URL(path=event_id).raw_path.decode()


def test_isolation_ids_filters_cursors(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    w = s.watermark("secB")
    b_events = s.snapshot("secB")
    b_ids = {e.id for e in b_events}
    b_only = [e for e in b_events if not e.id.startswith(("cold-", "hot-"))]
    cold_b = [e for e in b_only if e.timestamp < w][:3]
    hot_b = [e for e in b_only if e.timestamp >= w][:3]
    assert cold_b and hot_b
    with httpx.Client(base_url=s.base_url) as c:
        for e in cold_b + hot_b:
            assert c.get(_path(e.id), headers=_h(keys["secB"])).status_code == 200
            r = c.get(_path(e.id), headers=_h(keys["secA"]))
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "not_found"
        # B's user ids and filters under A's key: only A's events.
        got, _, _ = walk(c, keys["secA"], [("limit", "100")])
        assert got and all(e["tenant"] == "secA" for e in got)
        assert not b_ids & {e["id"] for e in got if e["id"].startswith("secB-")}
        # B's cursor with A's key → 400, no data.
        r = c.get("/v1/events", params={"limit": "5"}, headers=_h(keys["secB"]))
        cur = r.json()["next_cursor"]
        assert cur
        r = c.get("/v1/events", params={"limit": "5", "cursor": cur}, headers=_h(keys["secA"]))
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
        assert "events" not in r.json()
        # same cursor, other filter or order → 400; right filter → 200
        for other in ({"type": "view"}, {"order": "asc"}, {"user_id": "u1"}):
            r = c.get("/v1/events", params={"limit": "5", "cursor": cur, **other}, headers=_h(keys["secB"]))
            assert r.status_code == 400, other
        assert c.get("/v1/events", params={"limit": "5", "cursor": cur}, headers=_h(keys["secB"])).status_code == 200


def test_tampered_and_forged_cursors(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    with httpx.Client(base_url=s.base_url) as c:
        cur = c.get("/v1/events", params={"limit": "3"}, headers=_h(keys["secA"])).json()["next_cursor"]
        body, sig = cur.split(".")
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        forged = encode_cursor(b"not-the-secret", "secA", EventFilter(),
                               CursorState((0, "x"), 0, "desc", "time"))
        for bad in (flipped + "." + sig, body + "." + sig[::-1], forged, "garbage", "a.b.c", "." * 5,
                    cur + "x", "%00"):
            r = c.get("/v1/events", params={"limit": "3", "cursor": bad}, headers=_h(keys["secA"]))
            assert r.status_code == 400, bad
            assert r.json()["error"]["code"] in ("invalid_cursor", "invalid_parameter")
            assert r.json()["error"]["details"][0]["path"] == "cursor"


def test_auth_and_revocation(stack: tuple[QueryStack, dict[str, str], int], caplog: pytest.LogCaptureFixture) -> None:
    s, _, _ = stack
    caplog.set_level(logging.DEBUG)
    key = s.create_key("secA")
    with httpx.Client(base_url=s.base_url) as c:
        assert c.get("/v1/events").status_code == 401
        assert c.get("/v1/events", headers={"Authorization": "Bearer es_zzzzzzzz_" + "A" * 43}).status_code == 401
        assert c.get("/v1/events", headers={"Authorization": "Basic abc"}).status_code == 401
        assert c.get("/v1/events", headers=_h(key[:-1] + ("A" if key[-1] != "A" else "B"))).status_code == 401
        assert c.get("/v1/events", headers=_h(key)).status_code == 200
        ttl_s = s.settings.api_key_cache_ms / 1000
        assert 0 < ttl_s <= 5
        assert s.revoke_key(key)
        assert_rejected_within(c, key, ttl_s + 0.5)  # the API trusts a valid key for the cache TTL
    assert key not in caplog.text
    assert key.split("_", 2)[2] not in caplog.text


def test_keys_stored_only_as_hash(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    import asyncio

    from eventstrata.redisconn import connect_redis

    async def dump() -> list[Any]:
        r = connect_redis(s.settings)
        try:
            out = []
            async for k in r.scan_iter(match=s.layout.api_key("*")):
                out.append(await r.hgetall(k))
            return out
        finally:
            await r.aclose()

    records = asyncio.run(dump())
    assert len(records) >= 2
    blob = repr(records)
    for k in keys.values():
        assert k not in blob and k.split("_", 2)[2] not in blob


@pytest.mark.parametrize("value", INJECT)
def test_injection_is_data(stack: tuple[QueryStack, dict[str, str], int], value: str) -> None:
    s, keys, _ = stack
    expect = sorted([f"cold-{INJECT.index(value)}'; --", f"hot-{INJECT.index(value)}'; --"])
    with httpx.Client(base_url=s.base_url) as c:
        for params in ([("data.q", value)], [("metadata.m", value)], [("user_id", value)],
                       [(f"data.{value}", "key-is-hostile")] if "." not in value else [("data.q", value)],
                       [("data.n.x'y", value)]):
            r = c.get("/v1/events", params=[*params, ("type", "inj")], headers=_h(keys["secA"]))
            assert r.status_code == 200, (params, r.text)
            assert sorted(e["id"] for e in r.json()["events"]) == expect, params
            body: dict[str, Any] = {"type": "inj"}
            for k, v in params:
                if k.startswith(("data.", "metadata.")):
                    root, _, path = k.partition(".")
                    body.setdefault(root, {})[path] = v
                else:
                    body[k] = v
            r = c.post("/v1/events/query", json=body, headers=_h(keys["secA"]))
            assert r.status_code == 200, r.text
            assert sorted(e["id"] for e in r.json()["events"]) == expect
        # hostile paths and values that match nothing: 200 and empty, never an error
        for k in ("data.x') OR (1=1", "data.a'--", "metadata.;", "data.read_csv('/etc/passwd')"):
            r = c.get("/v1/events", params={k: value}, headers=_h(keys["secA"]))
            assert r.status_code == 200 and r.json()["events"] == [], k
        # NUL is rejected as a precise 400 (documented), never reaching a backend
        r = c.get("/v1/events", params={"data.q": value + "\x00"}, headers=_h(keys["secA"]))
        assert r.status_code == 400
        r = c.get("/v1/events/count", params={"data.q": value}, headers=_h(keys["secA"]))
        assert r.status_code == 200 and r.json()["count"] == 2
    assert not Path("/tmp/es_pwned.csv").exists()


async def test_resolve_cache_ttl_bounds_revocation(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    """Against the stack's real Redis, with a hand-driven clock: with a TTL a revoked key is
    accepted until exactly TTL after it was last read from Redis, then rejected; with TTL 0 it
    is rejected at once; an invalid key is never cached."""
    from eventstrata.auth import ApiKeys
    from eventstrata.redisconn import connect_redis

    s, _, _ = stack
    redis = connect_redis(s.settings)
    now = [1_000_000]
    try:
        cached = ApiKeys(redis, s.layout, cache_ttl_ms=1_000, clock=lambda: now[0])
        uncached = ApiKeys(redis, s.layout, cache_ttl_ms=0)
        key = await cached.create("secC")
        assert await cached.resolve(key) == "secC"
        assert await uncached.resolve(key) == "secC"
        assert await cached.revoke(key)
        assert await uncached.resolve(key) is None          # no cache: the next request sees it
        now[0] += 999
        assert await cached.resolve(key) == "secC"          # within the TTL of the last read
        now[0] += 1
        assert await cached.resolve(key) is None            # TTL over: Redis says revoked
        bogus = key[:-1] + ("A" if key[-1] != "A" else "B")
        assert await cached.resolve(bogus) is None
        assert await cached.resolve(bogus) is None
    finally:
        await redis.aclose()


def test_fast_lane_routes_keep_errors_headers_and_metric_labels(
        stack: tuple[QueryStack, dict[str, str], int]) -> None:
    """``GET /v1/events`` and ``/count`` are served by ``api.fastlane``: the same 401/400 bodies
    and headers, the request id, and the latency histogram labelled by the route's path."""
    s, keys, _ = stack
    with httpx.Client(base_url=s.base_url) as c:
        r = c.get("/v1/events", headers={"X-Request-Id": "fast-1"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.headers["x-request-id"] == "fast-1" and r.json()["error"]["code"] == "unauthorized"
        r = c.get("/v1/events/count?since=yesterday", headers=_h(keys["secA"]))
        assert r.status_code == 400 and r.json()["error"]["details"][0]["path"] == "since"
        r = c.get("/v1/events/count", headers=_h(keys["secA"]))
        assert r.status_code == 200 and r.json()["count"] > 0
        r = c.get("/v1/events?limit=3", headers=_h(keys["secA"]))
        assert r.status_code == 200 and len(r.json()["events"]) == 3
        metrics = c.get("/metrics").text
    for endpoint, status in (("/v1/events", "401"), ("/v1/events", "200"), ("/v1/events/count", "400"),
                             ("/v1/events/count", "200")):
        assert (f'eventstrata_api_request_seconds_count{{endpoint="{endpoint}",method="GET",'
                f'status="{status}"}}') in metrics
