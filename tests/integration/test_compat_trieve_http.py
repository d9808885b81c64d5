"""Trieve conformance (seeds 000/001) over real HTTP against Redis + Parquet archive."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import yaml
from compat_support import (
    DAY_MS,
    LAYOUTS,
    SEEDS,
    TRIEVE_COMPONENTS_YAML,
    CompatStack,
    compat_stack,
    now_ms,
    trieve_schema,
    validate,
)

from eventstrata.timeutil import format_ms_seconds, parse_time_ms

pytestmark = pytest.mark.integration

TENANT = "trieve-co"
OTHER = "trieve-other"
TYPES = ("view", "filter_clicked", "click", "add_to_cart", "purchase")
N = 25


@dataclass
class Env:
    stack: CompatStack
    objs: list[dict[str, Any]]
    key: str
    other_key: str
    revoked_key: str
    watermark: int
    other_id: str


def make_objs(now: int) -> list[dict[str, Any]]:
    objs = []
    for i in range(N):
        ts = now - (i if i != 4 else 3) * int(2.3 * DAY_MS) // 1000 * 1000  # events 3 and 4 share a time
        meta: Any = "metadata" if i % 6 == 0 else {"path": {"attr": f"v{i % 4}"}, "n": i % 3}
        created = format_ms_seconds(ts)
        objs.append({
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"trieve-{i}")),
            "event_type": TYPES[i % 5],
            "event_name": f"Event {TYPES[i % 5]}",
            "items": [f"item{i}", "shared"],
            "dataset_id": TENANT,
            "created_at": created,
            "updated_at": created,
            "is_conversion": None if i % 7 == 0 else bool(i % 2),
            "metadata": meta,
            "request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"req-{i}")) if i % 2 else None,
            "request_type": "search" if i % 2 else None,
            "user_id": f"user{i % 3}",
        })
    return objs


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=LAYOUTS)
async def env(request: pytest.FixtureRequest, redis_url: str,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    stack = await compat_stack(request, redis_url, tmp_path_factory.mktemp("compat-trieve"))
    try:
        now = now_ms() // 1000 * 1000
        objs = make_objs(now)
        await stack.ingest("trieve", objs, tenant=TENANT)
        other = [{**objs[0], "id": "other-event", "dataset_id": OTHER}]
        await stack.ingest("trieve", other, tenant=OTHER)
        await stack.archive()
        w = await stack.watermark(TENANT)
        times = [parse_time_ms(o["created_at"]) for o in objs]
        assert min(times) < w <= max(times), "the fixture must span both tiers"
        key = await stack.key_for(TENANT)
        revoked = await stack.key_for(TENANT)
        await stack.keys.revoke(revoked)
        yield Env(stack, objs, key, await stack.key_for(OTHER), revoked, w, "other-event")
    finally:
        await stack.stop()


def hdr(env: Env, key: str | None = None, dataset: str | None = TENANT, bearer: bool = False) -> dict[str, str]:
    h = {}
    k = env.key if key is None else key
    if k:
        h["Authorization"] = f"Bearer {k}" if bearer else k
    if dataset is not None:
        h["TR-Dataset"] = dataset
    return h


def newest_first(objs: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in sorted(objs, key=lambda o: (parse_time_ms(o["created_at"]), o["id"]), reverse=True)]


async def post(env: Env, body: Any, **kw: Any) -> Any:
    return await env.stack.http.post("/api/analytics/events/all", json=body, headers=hdr(env, **kw))


async def walk(env: Env, flt: dict[str, Any] | None) -> list[str]:
    """All pages of a filter, checking the page size contract; returns the ids in order."""
    ids: list[str] = []
    page = 1
    while True:
        r = await post(env, {"filter": flt, "page": page})
        assert r.status_code == 200, r.text
        validate(r.json(), trieve_schema("GetEventsResponseBody"))
        events = r.json()["events"]
        assert len(events) <= 10
        ids += [e["id"] for e in events]
        if len(events) < 10:
            if events:  # a partial page is the last one: the next is empty
                nxt = await post(env, {"filter": flt, "page": page + 1})
                assert nxt.json() == {"events": []}
            return ids
        page += 1


def test_trieve_schema_matches_the_seed() -> None:
    """The schemas the suite validates with are the seed's own (skipped outside the workspace)."""
    if not SEEDS.exists():
        pytest.skip("seed pages not present")
    mine = yaml.safe_load(TRIEVE_COMPONENTS_YAML)
    for seed in ("000", "001"):
        text = next(SEEDS.glob(f"{seed}_*.txt")).read_text()
        doc = yaml.safe_load(text.split("````yaml", 1)[1].split("\n", 1)[1].split("````", 1)[0])
        for name, schema in doc["components"]["schemas"].items():
            if name in mine:
                strip = _strip_descriptions
                assert strip(schema) == strip(mine[name]), name


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k not in ("description", "example", "title")}
    if isinstance(node, list):
        return [_strip_descriptions(x) for x in node]
    return node


async def test_seed_request_example_answers_documented_shape(env: Env) -> None:
    example = {"filter": {"date_range": {"gt": "2021-08-10T00:00:00Z", "lt": "2021-08-11T00:00:00Z"},
                          "event_type": "view", "is_conversion": True, "metadata_filter": 'path = "value"',
                          "user_id": "user1"}, "page": 1}
    r = await post(env, example)
    assert r.status_code == 200
    validate(r.json(), trieve_schema("GetEventsResponseBody"))
    assert r.json() == {"events": []}
    r = await post(env, {})
    validate(r.json(), trieve_schema("GetEventsResponseBody"))
    assert len(r.json()["events"]) == 10


async def test_pages_walked_to_the_end_newest_first(env: Env) -> None:
    ids = await walk(env, None)
    assert ids == newest_first(env.objs)
    r0 = await post(env, {"page": 0})
    r1 = await post(env, {"page": 1})
    rn = await post(env, {"page": None})
    assert r0.json() == r1.json() == rn.json()
    assert [e["id"] for e in r1.json()["events"]] == ids[:10]


async def test_events_come_back_field_for_field_from_both_tiers(env: Env) -> None:
    r = await post(env, {"page": 1})
    by_id = {o["id"]: o for o in env.objs}
    seen = []
    for page in (1, 2, 3):
        for e in (await post(env, {"page": page})).json()["events"]:
            assert e == by_id[e["id"]]
            seen.append(e["id"])
    assert sorted(seen) == sorted(by_id)
    for o in env.objs:
        g = await env.stack.http.get(f"/api/analytics/events/{o['id']}", headers=hdr(env, bearer=True))
        assert g.status_code == 200
        validate(g.json(), trieve_schema("EventData"))
        assert g.json() == o
    tiers = {parse_time_ms(o["created_at"]) < env.watermark for o in env.objs}
    assert tiers == {True, False}
    assert r.status_code == 200


Pred = Callable[[dict[str, Any]], bool]


def _meta_attr(o: dict[str, Any]) -> Any:
    m = o["metadata"]
    return m["path"]["attr"] if isinstance(m, dict) else None


@pytest.mark.parametrize(
    ("flt", "pred"),
    [
        ({"event_type": "click"}, lambda o: o["event_type"] == "click"),
        ({"is_conversion": True}, lambda o: o["is_conversion"] is True),
        ({"is_conversion": False}, lambda o: o["is_conversion"] is False),
        ({"user_id": "user2"}, lambda o: o["user_id"] == "user2"),
        ({"metadata_filter": 'path.attr = "v1"'}, lambda o: _meta_attr(o) == "v1"),
        ({"metadata_filter": "n = 2"}, lambda o: isinstance(o["metadata"], dict) and o["metadata"]["n"] == 2),
        ({"metadata_filter": 'n = "2"'}, lambda o: False),
        ({"user_id": "user0", "event_type": "view", "is_conversion": True},
         lambda o: o["user_id"] == "user0" and o["event_type"] == "view" and o["is_conversion"] is True),
        ({"user_id": "nobody"}, lambda o: False),
    ],
)
async def test_each_filter(env: Env, flt: dict[str, Any], pred: Pred) -> None:
    expected = newest_first([o for o in env.objs if pred(o)])
    assert await walk(env, flt) == expected
    if flt.get("user_id") != "nobody" and "n = \"2\"" not in str(flt):
        assert expected, "the fixture must make every filter non-empty"


async def test_date_range_bounds(env: Env) -> None:
    times = sorted({parse_time_ms(o["created_at"]) for o in env.objs})
    lo, hi = times[3], times[-4]
    lo_s, hi_s = format_ms_seconds(lo), format_ms_seconds(hi).rstrip("Z")  # hi without zone = UTC

    def ids(pred: Callable[[int], bool]) -> list[str]:
        return newest_first([o for o in env.objs if pred(parse_time_ms(o["created_at"]))])

    assert await walk(env, {"date_range": {"gte": lo_s}}) == ids(lambda t: t >= lo)
    assert await walk(env, {"date_range": {"gt": lo_s}}) == ids(lambda t: t > lo)
    assert await walk(env, {"date_range": {"lt": hi_s}}) == ids(lambda t: t < hi)
    assert await walk(env, {"date_range": {"lte": hi_s}}) == ids(lambda t: t <= hi)
    assert await walk(env, {"date_range": {"gte": lo_s, "lte": hi_s}}) == ids(lambda t: lo <= t <= hi)
    spaced = format_ms_seconds(lo).replace("T", " ").rstrip("Z") + ".000"  # the seed's DateRange example style
    assert await walk(env, {"date_range": {"gte": spaced}}) == ids(lambda t: t >= lo)


@pytest.mark.parametrize(
    "body",
    [
        {"page": -1},
        {"page": 1001},
        {"page": "1"},
        {"filter": {"event_type": "search"}},
        {"filter": {"metadata_filter": "path value"}},
        {"filter": {"metadata_filter": "path = unquoted"}},
        {"filter": {"date_range": {"gt": "not a date"}}},
        {"filter": {"is_conversion": "yes"}},
        {"filter": "x"},
        [1, 2],
    ],
)
async def test_bad_input_is_400_message(env: Env, body: Any) -> None:
    r = await post(env, body)
    assert r.status_code == 400
    validate(r.json(), trieve_schema("ErrorResponseBody"))
    assert set(r.json()) == {"message"}


async def test_malformed_json_is_400(env: Env) -> None:
    r = await env.stack.http.post("/api/analytics/events/all", content=b"{nope", headers=hdr(env))
    assert r.status_code == 400 and set(r.json()) == {"message"}


async def test_auth_errors(env: Env) -> None:
    unauthorized = {"message": "Unauthorized"}
    for h in (hdr(env, key=""), hdr(env, key="es_aaaaaaaa_" + "x" * 43), hdr(env, key=env.revoked_key),
              hdr(env, key=env.other_key)):
        r = await env.stack.http.post("/api/analytics/events/all", json={}, headers=h)
        assert (r.status_code, r.json()) == (401, unauthorized)
        g = await env.stack.http.get(f"/api/analytics/events/{env.objs[0]['id']}", headers=h)
        assert (g.status_code, g.json()) == (401, unauthorized)
    # the other tenant's key for its own dataset works, and only sees its own events
    r = await env.stack.http.post("/api/analytics/events/all", json={},
                                  headers=hdr(env, key=env.other_key, dataset=OTHER))
    assert [e["id"] for e in r.json()["events"]] == [env.other_id]
    r = await env.stack.http.post("/api/analytics/events/all", json={}, headers=hdr(env, dataset=None))
    assert r.status_code == 400 and "TR-Dataset" in r.json()["message"]


async def test_unknown_event_is_404(env: Env) -> None:
    for eid in ("no-such-event", env.other_id):
        g = await env.stack.http.get(f"/api/analytics/events/{eid}", headers=hdr(env))
        assert (g.status_code, g.json()) == (404, {"message": "Event not found"})
        validate(g.json(), trieve_schema("ErrorResponseBody"))
