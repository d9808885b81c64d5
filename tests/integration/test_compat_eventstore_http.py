"""Event-store conformance (seed 004) over real HTTP against Redis + Parquet archive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from compat_support import (
    DAY_MS,
    ES_400_SCHEMA,
    ES_401_BODY,
    ES_SCHEMA,
    LAYOUTS,
    CompatStack,
    compat_stack,
    now_ms,
    validate,
)

from eventstrata.timeutil import format_ms_seconds, parse_time_ms

pytestmark = pytest.mark.integration

TENANT = "es-co"
STREAMS = ("user-123", "order-456", "cart-789")
TYPES = ("user.created", "order.placed", "cart.updated", "order.shipped")
N = 27
Obj = dict[str, Any]


@dataclass
class Env:
    stack: CompatStack
    objs: list[Obj]  # as sent, plus the positions the service assigned (the fields it adds)
    billing: list[Obj]
    key: str
    revoked_key: str
    watermark: int


def make_objs(now: int) -> list[Obj]:
    objs = []
    for i in range(N):
        j = (i * 7) % N  # ingest order (→ global positions) differs from time order
        ts = (now - int(j * 1.7 * DAY_MS)) // 1000 * 1000
        objs.append({
            "streamId": STREAMS[i % 3],
            "eventId": f"evt_{i:03d}",
            "type": TYPES[i % 4],
            "data": {"userId": str(i % 5), "total": i * 1.5},
            "metadata": {"correlationId": f"c-{i}"},
            "schemaVersion": "1.0.0",
            "transactionId": f"tx_{i // 2}",
            "createdAt": format_ms_seconds(ts),
        })
    return objs


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=LAYOUTS)
async def env(request: pytest.FixtureRequest, redis_url: str,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    stack = await compat_stack(request, redis_url, tmp_path_factory.mktemp("compat-es"))
    try:
        now = now_ms()
        objs = make_objs(now)
        stored = await stack.ingest("eventstore", objs, tenant=TENANT, store="orders")
        billing_in = [{**objs[0], "eventId": "bill_1"}, {**objs[1], "eventId": "bill_2"}]
        billing_st = await stack.ingest("eventstore", billing_in, tenant=TENANT, store="billing")
        full = [{**o, "streamPosition": e.stream_position, "globalPosition": e.global_position}
                for o, e in zip(objs, stored, strict=True)]
        billing = [{**o, "streamPosition": e.stream_position, "globalPosition": e.global_position}
                   for o, e in zip(billing_in, billing_st, strict=True)]
        await stack.archive()
        w = await stack.watermark(TENANT)
        times = [parse_time_ms(o["createdAt"]) for o in objs]
        assert min(times) < w <= max(times)
        revoked = await stack.key_for(TENANT)
        await stack.keys.revoke(revoked)
        yield Env(stack, full, billing, await stack.key_for(TENANT), revoked, w)
    finally:
        await stack.stop()


async def get(env: Env, params: list[tuple[str, str]], store: str = "orders", auth: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {env.key}" if auth is None else auth}
    return await env.stack.http.get(f"/api/event-stores/{store}/events", params=params, headers=headers)


async def ids_of(env: Env, params: list[tuple[str, str]], store: str = "orders") -> tuple[list[str], Obj]:
    r = await get(env, params, store)
    assert r.status_code == 200, r.text
    validate(r.json(), ES_SCHEMA)
    return [e["eventId"] for e in r.json()["events"]], r.json()["pagination"]


def ts(o: Obj) -> int:
    return parse_time_ms(o["createdAt"])


def expect(env: Env, pred: Callable[[Obj], bool], key: Callable[[Obj], Any] | None = None,
           desc: bool = False) -> list[str]:
    k = key or (lambda o: o["globalPosition"])
    return [o["eventId"] for o in sorted(env.objs, key=k, reverse=desc) if pred(o)]


async def test_seed_example_shape_and_defaults(env: Env) -> None:
    ids, pagination = await ids_of(env, [])
    assert ids == expect(env, lambda o: True)  # globalPosition asc
    assert pagination == {"limit": 100, "offset": 0, "hasMore": False}
    ids, pagination = await ids_of(env, [("includeCount", "true")])
    assert pagination == {"limit": 100, "offset": 0, "total": N, "hasMore": False}


async def test_store_is_a_namespace(env: Env) -> None:
    ids, _ = await ids_of(env, [], store="billing")
    assert ids == [o["eventId"] for o in env.billing]
    ids, p = await ids_of(env, [("includeCount", "true")], store="nothing-here")
    assert ids == [] and p["total"] == 0


@pytest.mark.parametrize(
    ("params", "pred"),
    [
        ([("streamId", "order-456")], lambda o: o["streamId"] == "order-456"),
        ([("type", "order.placed")], lambda o: o["type"] == "order.placed"),
        ([("type", "order.placed"), ("type", "user.created")], lambda o: o["type"] in ("order.placed", "user.created")),
        ([("eventId", "evt_005")], lambda o: o["eventId"] == "evt_005"),
        ([("transactionId", "tx_3")], lambda o: o["transactionId"] == "tx_3"),
        ([("fromPosition", "POS5")], lambda o: o["globalPosition"] >= 5),
        ([("toPosition", "POS5")], lambda o: o["globalPosition"] <= 5),
        ([("fromPosition", "POS3"), ("toPosition", "POS9")], lambda o: 3 <= o["globalPosition"] <= 9),
        ([("streamId", "user-123"), ("type", "order.shipped")],
         lambda o: o["streamId"] == "user-123" and o["type"] == "order.shipped"),
        ([("streamId", "none")], lambda o: False),
    ],
)
async def test_each_filter(env: Env, params: list[tuple[str, str]], pred: Callable[[Obj], bool]) -> None:
    base = min(o["globalPosition"] for o in env.objs) - 1  # positions are the tenant's, not the store's
    params = [(k, str(base + int(v[3:])) if v.startswith("POS") else v) for k, v in params]
    shifted = pred
    if any(k in ("fromPosition", "toPosition") for k, _ in params):
        def shifted(o: Obj) -> bool:
            return pred({**o, "globalPosition": o["globalPosition"] - base})
    ids, p = await ids_of(env, [*params, ("includeCount", "true")])
    want = expect(env, shifted)
    assert ids == want and p["total"] == len(want)


async def test_dates_are_inclusive(env: Env) -> None:
    by_time = sorted(env.objs, key=ts)
    a, b = by_time[4], by_time[-5]
    ids, _ = await ids_of(env, [("fromDate", a["createdAt"]), ("toDate", b["createdAt"])])
    assert ids == expect(env, lambda o: ts(a) <= ts(o) <= ts(b))
    assert a["eventId"] in ids and b["eventId"] in ids


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize(
    ("sort_by", "key"),
    [
        ("globalPosition", lambda o: o["globalPosition"]),
        ("createdAt", lambda o: (ts(o), o["eventId"])),
    ],
)
async def test_sorting(env: Env, sort_by: str, key: Callable[[Obj], Any], direction: str) -> None:
    ids, _ = await ids_of(env, [("sortBy", sort_by), ("sortDirection", direction)])
    assert ids == expect(env, lambda o: True, key, desc=direction == "desc")


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_sort_by_stream_position_within_a_stream(env: Env, direction: str) -> None:
    ids, _ = await ids_of(env, [("streamId", "cart-789"), ("sortBy", "streamPosition"), ("sortDirection", direction)])
    want = expect(env, lambda o: o["streamId"] == "cart-789", lambda o: o["streamPosition"], desc=direction == "desc")
    assert ids == want
    positions = sorted(o["streamPosition"] for o in env.objs if o["streamId"] == "cart-789")
    assert positions == list(range(positions[0], positions[0] + len(positions)))


@pytest.mark.parametrize("limit", [4, 9])  # 27 events: a partial and an exactly full last page
@pytest.mark.parametrize("count", ["true", "false"])
async def test_pagination_walked_to_the_end(env: Env, count: str, limit: int) -> None:
    want = expect(env, lambda o: True, lambda o: (ts(o), o["eventId"]), desc=True)
    got: list[str] = []
    offset = 0
    while True:
        ids, p = await ids_of(env, [("limit", str(limit)), ("offset", str(offset)), ("sortBy", "createdAt"),
                                    ("sortDirection", "desc"), ("includeCount", count)])
        assert (p["limit"], p["offset"]) == (limit, offset)
        assert ("total" in p) == (count == "true")
        if count == "true":
            assert p["total"] == N
        got += ids
        offset += limit
        if not p["hasMore"]:
            assert ids, "hasMore was true on the page before"
            break
        assert len(ids) == limit
    assert got == want
    _, p = await ids_of(env, [("limit", "1000"), ("offset", str(N - 1))])
    assert p["hasMore"] is False
    _, p = await ids_of(env, [("limit", "1000"), ("offset", "0")])
    assert p == {"limit": 1000, "offset": 0, "hasMore": False}


async def test_phase_and_include_archived(env: Env) -> None:
    hot = expect(env, lambda o: ts(o) >= env.watermark)
    cold = expect(env, lambda o: ts(o) < env.watermark)
    assert hot and cold
    assert (await ids_of(env, [("phase", "hot")]))[0] == hot
    assert (await ids_of(env, [("includeArchived", "false")]))[0] == hot
    assert (await ids_of(env, [("phase", "archived")]))[0] == cold
    assert (await ids_of(env, [("phase", "all"), ("includeArchived", "true")]))[0] == expect(env, lambda o: True)
    _, p = await ids_of(env, [("phase", "archived"), ("includeCount", "true")])
    assert p["total"] == len(cold)


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ([("limit", "abc")], ["limit"]),
        ([("limit", "0")], ["limit"]),
        ([("limit", "1001")], ["limit"]),
        ([("offset", "-1")], ["offset"]),
        ([("fromPosition", "x")], ["fromPosition"]),
        ([("fromDate", "not-a-date")], ["fromDate"]),
        ([("sortBy", "global_position")], ["sortBy"]),
        ([("sortDirection", "up")], ["sortDirection"]),
        ([("includeCount", "maybe")], ["includeCount"]),
        ([("phase", "frozen")], ["phase"]),
        ([("phase", "archived"), ("includeArchived", "false")], ["phase"]),
    ],
)
async def test_invalid_parameters(env: Env, params: list[tuple[str, str]], path: list[str]) -> None:
    r = await get(env, params)
    assert r.status_code == 400
    validate(r.json(), ES_400_SCHEMA)
    assert [d["path"] for d in r.json()["details"]] == [path]


async def test_every_invalid_parameter_reported(env: Env) -> None:
    r = await get(env, [("limit", "x"), ("sortBy", "y")], store="bad store name")
    assert r.status_code == 400
    validate(r.json(), ES_400_SCHEMA)
    assert sorted(d["path"][0] for d in r.json()["details"]) == ["eventStoreName", "limit", "sortBy"]


async def test_unauthorized(env: Env) -> None:
    for auth in ("", env.key, "Bearer es_aaaaaaaa_" + "x" * 43, f"Bearer {env.revoked_key}"):
        r = await get(env, [], auth=auth)
        assert (r.status_code, r.json()) == (401, ES_401_BODY)


async def test_events_come_back_field_for_field_from_both_tiers(env: Env) -> None:
    r = await get(env, [])
    by_id = {o["eventId"]: o for o in env.objs}
    events = r.json()["events"]
    assert len(events) == N
    for e in events:
        assert e == by_id[e["eventId"]]
    assert {ts(by_id[e["eventId"]]) < env.watermark for e in events} == {True, False}
    assert DAY_MS > 0 and now_ms() > env.watermark
