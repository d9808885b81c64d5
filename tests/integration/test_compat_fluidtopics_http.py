"""Fluid Topics events + events count conformance (seed 003) over real HTTP, Redis + archive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from compat_support import (
    DAY_MS,
    FT_COUNT_SCHEMA,
    FT_ERROR_SCHEMA,
    FT_SCHEMA,
    LAYOUTS,
    CompatStack,
    compat_stack,
    now_ms,
    validate,
)

pytestmark = pytest.mark.integration

TENANT = "ft-co"
NAMES = ("khub.search", "document.display", "feedback.send")
REALMS = (["internal", "Keycloak"], ["sso"], [])
GROUPS = (["ft:administrator", "TechWriter"], ["ft:authenticated"], ["nda_basic", "TechWriter"], [])
ROLES = (["FEEDBACK_USER", "ADMIN"], ["PRINT_USER"], [])
N = 24
Obj = dict[str, Any]


@dataclass
class Env:
    stack: CompatStack
    objs: list[Obj]
    key: str
    revoked_key: str
    now: int
    watermark: int


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def make_objs(now: int) -> list[Obj]:
    objs = []
    for i in range(N):
        ts = (now - int(i * 4.4 * DAY_MS)) // 1000 * 1000 - 1000  # whole seconds, strictly in the past
        objs.append({
            "appName": "ft/turnkey-portal",
            "appVersion": "4.3.32",
            "contentLocale": "en-US",
            "datetime": ts,
            "id": f"f0c7a781-8956-492c-8961-{i:012d}",
            "name": NAMES[i % 3],
            "offline": False,
            "parameters": {"searchQuery": {"terms": f"q{i}", "facets": [{"key": "Version_FT", "values": ["Latest"]}]},
                           "searchResponse": {"nbResults": i}},
            "sessionId": f"dc439e78-{i % 5}",
            "tenantId": TENANT,
            "uiLocale": "en-US",
            "user": {"realm": REALMS[i % 3], "groups": GROUPS[i % 4], "id": f"user-{i % 4}", "roles": ROLES[i % 3]},
            "userAgent": "Mozilla/5.0",
            "userIp": f"10.60.1.{i}",
        })
    return objs


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=LAYOUTS)
async def env(request: pytest.FixtureRequest, redis_url: str,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    stack = await compat_stack(request, redis_url, tmp_path_factory.mktemp("compat-ft"))
    try:
        now = now_ms()
        objs = make_objs(now)
        await stack.ingest("fluidtopics", objs, tenant=TENANT)
        await stack.archive()
        w = await stack.watermark(TENANT)
        assert min(o["datetime"] for o in objs) < w <= max(o["datetime"] for o in objs)
        revoked = await stack.key_for(TENANT)
        await stack.keys.revoke(revoked)
        yield Env(stack, objs, await stack.key_for(TENANT), revoked, now, w)
    finally:
        await stack.stop()


async def post(env: Env, body: Any, *, path: str = "/analytics/api/v1/events", auth: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {env.key}" if auth is None else auth}
    return await env.stack.http.post(path, json=body, headers=headers)


def start(env: Env) -> str:
    return day(env.now - 200 * DAY_MS)


def expect(env: Env, pred: Callable[[Obj], bool], *, latest: bool = True) -> list[str]:
    objs = sorted(env.objs, key=lambda o: (o["datetime"], o["id"]), reverse=latest)
    return [o["id"] for o in objs if pred(o)]


async def ids_of(env: Env, body: Obj) -> tuple[list[str], Obj]:
    r = await post(env, body)
    assert r.status_code == 200, r.text
    validate(r.json(), FT_SCHEMA)
    return [e["id"] for e in r.json()["results"]], r.json()


async def test_seed_request_example(env: Env) -> None:
    # the seed's example with its dates moved into the past year (2024 lies beyond it today)
    body = {"startDate": start(env)[:10], "endDate": day(env.now + DAY_MS)[:10],
            "filters": {"name": ["khub.search"], "user": {"realm": ["internal", "Keycloak"],
                                                          "group": ["ft:administrator", "TechWriter"],
                                                          "role": ["FEEDBACK_USER"]}},
            "paging": {"page": 1, "perPage": 1}, "sortOrder": "latestFirst"}
    ids, resp = await ids_of(env, body)
    lo = int(datetime.fromisoformat(body["startDate"]).replace(tzinfo=UTC).timestamp() * 1000)
    want = expect(env, lambda o: o["datetime"] >= lo and o["name"] == "khub.search"
                  and bool({"internal", "Keycloak"} & set(o["user"]["realm"]))
                  and bool({"ft:administrator", "TechWriter"} & set(o["user"]["groups"]))
                  and "FEEDBACK_USER" in o["user"]["roles"])
    assert len(want) >= 2
    assert ids == want[:1]
    assert resp["paging"] == {"page": 1, "perPage": 1, "totalCount": len(want), "lastPage": False}
    assert resp["startDate"] == body["startDate"] + "T00:00:00"


async def test_start_inclusive_end_exclusive_in_all_three_formats(env: Env) -> None:
    a, b = env.objs[15], env.objs[5]
    for fmt in (day, lambda ms: day(ms)[:16], lambda ms: day(ms)[:10]):
        s, e = fmt(a["datetime"]), fmt(b["datetime"])
        lo = int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp() * 1000)
        hi = int(datetime.fromisoformat(e).replace(tzinfo=UTC).timestamp() * 1000)
        ids, resp = await ids_of(env, {"startDate": s, "endDate": e})
        assert ids == expect(env, lambda o, lo=lo, hi=hi: lo <= o["datetime"] < hi)
        assert resp["paging"]["totalCount"] == len(ids)
    ids, _ = await ids_of(env, {"startDate": day(a["datetime"]), "endDate": day(b["datetime"])})
    assert a["id"] in ids and b["id"] not in ids
    ids, resp = await ids_of(env, {"startDate": day(a["datetime"])[:10]})  # endDate defaults to now
    lo = int(datetime.fromisoformat(day(a["datetime"])[:10]).replace(tzinfo=UTC).timestamp() * 1000)
    assert ids == expect(env, lambda o: o["datetime"] >= lo)
    assert abs(int(datetime.fromisoformat(resp["endDate"]).replace(tzinfo=UTC).timestamp() * 1000) - now_ms()) < 60_000


@pytest.mark.parametrize(
    ("filters", "pred"),
    [
        ({"name": ["feedback.send"]}, lambda o: o["name"] == "feedback.send"),
        ({"name": ["feedback.send", "khub.search"]}, lambda o: o["name"] in ("feedback.send", "khub.search")),
        ({"name": []}, lambda o: True),
        ({"user": {"id": ["user-1", "user-2"]}}, lambda o: o["user"]["id"] in ("user-1", "user-2")),
        ({"user": {"realm": ["sso"]}}, lambda o: "sso" in o["user"]["realm"]),
        ({"user": {"group": ["TechWriter"]}}, lambda o: "TechWriter" in o["user"]["groups"]),
        ({"user": {"role": ["PRINT_USER", "ADMIN"]}}, lambda o: bool({"PRINT_USER", "ADMIN"} & set(o["user"]["roles"]))),
        ({"name": ["khub.search"], "user": {"id": ["user-0"]}},
         lambda o: o["name"] == "khub.search" and o["user"]["id"] == "user-0"),
        ({"name": ["nothing"]}, lambda o: False),
    ],
)
async def test_each_filter(env: Env, filters: Obj, pred: Callable[[Obj], bool]) -> None:
    ids, resp = await ids_of(env, {"startDate": start(env), "filters": filters})
    assert ids == expect(env, pred)
    assert resp["paging"]["totalCount"] == len(ids)
    count = await post(env, {"startDate": start(env), "filters": filters}, path="/analytics/api/v1/events/count")
    validate(count.json(), FT_COUNT_SCHEMA)
    assert count.json()["count"] == len(ids)


@pytest.mark.parametrize(("order", "latest"), [("latestFirst", True), ("LatestFirst", True),
                                               ("oldestFirst", False), ("OLDESTFIRST", False), (None, True)])
async def test_sort_order(env: Env, order: str | None, latest: bool) -> None:
    body: Obj = {"startDate": start(env)}
    if order is not None:
        body["sortOrder"] = order
    ids, _ = await ids_of(env, body)
    assert ids == expect(env, lambda o: True, latest=latest)


@pytest.mark.parametrize("per_page", [5, 6])  # 24 events: a partial and an exactly full last page
@pytest.mark.parametrize("order", ["latestFirst", "oldestFirst"])
async def test_paging_walked_to_the_last_page(env: Env, order: str, per_page: int) -> None:
    want = expect(env, lambda o: True, latest=order == "latestFirst")
    got: list[str] = []
    page = 1
    while True:
        ids, resp = await ids_of(env, {"startDate": start(env), "sortOrder": order,
                                       "paging": {"page": page, "perPage": per_page}})
        p = resp["paging"]
        assert (p["page"], p["perPage"], p["totalCount"]) == (page, per_page, len(want))
        got += ids
        if p["lastPage"]:
            assert ids, "the last page holds the last results (no empty page after a full one)"
            assert len(ids) == len(want) - per_page * (page - 1)
            break
        assert len(ids) == per_page
        page += 1
    assert got == want
    ids, resp = await ids_of(env, {"startDate": start(env), "paging": {"page": page + 1, "perPage": per_page}})
    assert ids == [] and resp["paging"]["lastPage"] is True


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"endDate": "2026-01-01"},
        {"startDate": "01/02/2026"},
        {"startDate": "START"},
        {"startDate": "2020-01-01"},
        {"startDate": "TODAY", "endDate": "TODAY"},
        {"startDate": "TODAY", "paging": {"page": 1}},
        {"startDate": "TODAY", "paging": {"perPage": 1}},
        {"startDate": "TODAY", "paging": {"page": 0, "perPage": 1}},
        {"startDate": "TODAY", "sortOrder": "newest"},
        {"startDate": "TODAY", "filters": {"name": "khub.search"}},
    ],
)
async def test_missing_or_malformed_is_400(env: Env, body: Obj) -> None:
    today = day(env.now - DAY_MS)[:10]
    body = {k: (today if v == "TODAY" else start(env) if v == "START" else v) for k, v in body.items()}
    if body.get("startDate") == start(env):
        body["startDate"] = start(env) + "Z"  # a zone suffix is none of the three formats
    for path in ("/analytics/api/v1/events", "/analytics/api/v1/events/count"):
        r = await post(env, body, path=path)
        if path.endswith("count") and ("paging" in body or "sortOrder" in body):
            assert r.status_code == 200  # the count service ignores paging and sortOrder
            continue
        assert r.status_code == 400, (body, r.text)
        validate(r.json(), FT_ERROR_SCHEMA)
        assert r.json()["status"] == 400


async def test_unauthorized(env: Env) -> None:
    for auth in ("", env.key, "Bearer es_aaaaaaaa_" + "x" * 43, f"Basic {env.key}", f"Bearer {env.revoked_key}"):
        for path in ("/analytics/api/v1/events", "/analytics/api/v1/events/count"):
            r = await post(env, {"startDate": start(env)}, path=path, auth=auth)
            assert r.status_code == 401
            validate(r.json(), FT_ERROR_SCHEMA)
            assert r.json()["status"] == 401


async def test_events_come_back_field_for_field_from_both_tiers(env: Env) -> None:
    _, resp = await ids_of(env, {"startDate": day(env.now - 360 * DAY_MS)})
    by_id = {o["id"]: o for o in env.objs}
    assert len(resp["results"]) == N
    for e in resp["results"]:
        assert e == by_id[e["id"]]
    assert {by_id[e["id"]]["datetime"] < env.watermark for e in resp["results"]} == {True, False}
