"""ThisData ``GET /v1/events.json`` conformance (seed 002) over real HTTP, Redis + archive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from compat_support import (
    DAY_MS,
    LAYOUTS,
    THISDATA_ERROR_SCHEMA,
    THISDATA_SCHEMA,
    CompatStack,
    compat_stack,
    now_ms,
    validate,
)

from eventstrata.timeutil import format_ms, parse_time_ms

pytestmark = pytest.mark.integration

TENANT = "thisdata-co"
VERBS = ("log-in", "log-in-denied", "page-view", "log-out", "password-reset")
USERS = ("112233", "445566", "778899")
N = 30


@dataclass
class Env:
    stack: CompatStack
    objs: list[dict[str, Any]]
    key: str
    revoked_key: str
    now: int
    watermark: int


def make_objs(now: int) -> list[dict[str, Any]]:
    objs = []
    for i in range(N):
        ts = now - int(i * 3.5 * DAY_MS) - i * 1000 - 1234
        uid = USERS[i % 3]
        o: dict[str, Any] = {
            "published": format_ms(ts),
            "verb": VERBS[i % 5],
            "device": {"user_agent": "Mozilla/5.0", "browser": "Chrome", "mobile": bool(i % 2),
                       "version": [52, 0, i]},
            "location": {"ip": f"125.236.200.{i}", "address": {"country_iso_code": "NZ"}} if i % 4 else None,
            "session": None if i % 3 else {"id": f"s{i}", "td_cookie_expected": True},
            "overall_score": round(i / 30, 3),
            "id": f"AVdu{i:04d}JD0DIuzSzIZf",
            "user": {"name": f"User {uid}", "id": uid},
            "raw": {"ip": f"125.236.220.{i}", "verb": VERBS[i % 5], "user": {"id": uid}},
        }
        if i % 4 != 3:
            o["source_name"] = "web" if i % 2 else "mobile"
        objs.append(o)
    return objs


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=LAYOUTS)
async def env(request: pytest.FixtureRequest, redis_url: str,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    stack = await compat_stack(request, redis_url, tmp_path_factory.mktemp("compat-thisdata"))
    try:
        now = now_ms()
        objs = make_objs(now)
        await stack.ingest("thisdata", objs, tenant=TENANT)
        await stack.archive()
        w = await stack.watermark(TENANT)
        assert now - 30 * DAY_MS < w, "events on both sides of the default 30-day window are archived"
        key = await stack.key_for(TENANT)
        revoked = await stack.key_for(TENANT)
        await stack.keys.revoke(revoked)
        yield Env(stack, objs, key, revoked, now, w)
    finally:
        await stack.stop()


async def get(env: Env, params: list[tuple[str, str]], *, key: str | None = None) -> Any:
    items = [("api_key", env.key if key is None else key), *params] if key != "" else params
    return await env.stack.http.get("/v1/events.json", params=items)


def ts(o: dict[str, Any]) -> int:
    return parse_time_ms(o["published"])


def expect(env: Env, pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [o["id"] for o in sorted(env.objs, key=lambda o: (ts(o), o["id"]), reverse=True) if pred(o)]


def default_window(env: Env) -> Callable[[dict[str, Any]], bool]:
    return lambda o: ts(o) >= env.now - 30 * DAY_MS and o["verb"] != "page-view"


async def ids_of(env: Env, params: list[tuple[str, str]]) -> tuple[list[str], int]:
    r = await get(env, params)
    assert r.status_code == 200, r.text
    validate(r.json(), THISDATA_SCHEMA)
    return [e["id"] for e in r.json()["results"]], r.json()["total"]


async def test_seed_examples(env: Env) -> None:
    # "All events for all users for the last 7 days" – the seed dates it 2016-09-01; here: 7 days ago
    after = format_ms(env.now - 7 * DAY_MS)[:10]
    ids, total = await ids_of(env, [("after", after)])
    want = expect(env, lambda o: ts(o) >= parse_time_ms(after) and o["verb"] != "page-view")
    assert ids == want and total == len(want) and want
    # "A single user's successful and unsuccessful login events"
    ids, total = await ids_of(env, [("user_id", "112233"), ("verbs[]", "log-in"), ("verbs[]", "log-in-denied")])
    want = expect(env, lambda o: default_window(env)(o) and o["user"]["id"] == "112233"
                  and o["verb"] in ("log-in", "log-in-denied"))
    assert ids == want and total == len(want) and want


async def test_defaults_last_30_days_without_page_views(env: Env) -> None:
    ids, total = await ids_of(env, [])
    want = expect(env, default_window(env))
    assert ids == want and total == len(want)
    assert any(o["verb"] == "page-view" and ts(o) >= env.now - 30 * DAY_MS for o in env.objs)
    assert any(ts(o) < env.now - 30 * DAY_MS for o in env.objs)


async def test_after_and_before_are_inclusive(env: Env) -> None:
    a, b = env.objs[20], env.objs[12]
    params = [("after", a["published"]), ("before", b["published"]), ("exclude_verb", "")]
    ids, total = await ids_of(env, params)
    want = expect(env, lambda o: ts(a) <= ts(o) <= ts(b))
    assert ids == want and a["id"] in ids and b["id"] in ids and total == len(want)


async def test_after_at_most_90_days_back(env: Env) -> None:
    ok = format_ms(env.now - 89 * DAY_MS)
    ids, _ = await ids_of(env, [("after", ok), ("exclude_verb", ""), ("limit", "200")])
    assert ids == expect(env, lambda o: ts(o) >= parse_time_ms(ok))
    r = await get(env, [("after", format_ms(env.now - 91 * DAY_MS))])
    assert r.status_code == 400
    validate(r.json(), THISDATA_ERROR_SCHEMA)
    assert "90 days" in r.json()["error"]


@pytest.mark.parametrize(
    ("params", "pred"),
    [
        ([("verb", "log-out")], lambda o: o["verb"] == "log-out"),
        ([("verbs[]", "log-in"), ("verbs[]", "log-out")], lambda o: o["verb"] in ("log-in", "log-out")),
        ([("verb", "log-in"), ("verbs[]", "log-out")], lambda o: o["verb"] in ("log-in", "log-out")),
        ([("verbs[]", "page-view")], lambda o: o["verb"] == "page-view"),
        ([("exclude_verb", "log-in")], lambda o: o["verb"] != "log-in"),
        ([("exclude_verb", "")], lambda o: True),
        ([("exclude_verbs[]", "log-in"), ("exclude_verbs[]", "log-out")],
         lambda o: o["verb"] not in ("log-in", "log-out", "page-view")),
        ([("exclude_verbs[]", "log-in"), ("exclude_verb", "log-out")],
         lambda o: o["verb"] not in ("log-in", "log-out")),
        ([("source_name", "web")], lambda o: o["verb"] != "page-view" and o.get("source_name") == "web"),
        ([("user_id", "445566")], lambda o: o["verb"] != "page-view" and o["user"]["id"] == "445566"),
        ([("user_id", "nobody")], lambda o: False),
    ],
)
async def test_each_filter(env: Env, params: list[tuple[str, str]], pred: Callable[[dict[str, Any]], bool]) -> None:
    ids, total = await ids_of(env, params)
    want = expect(env, lambda o: ts(o) >= env.now - 30 * DAY_MS and pred(o))
    assert ids == want and total == len(want)


async def test_limit_offset_walk(env: Env) -> None:
    base = [("after", format_ms(env.now - 89 * DAY_MS)), ("exclude_verb", "")]
    want = expect(env, lambda o: ts(o) >= env.now - 89 * DAY_MS)
    got: list[str] = []
    offset = 0
    while True:
        ids, total = await ids_of(env, [*base, ("limit", "4"), ("offset", str(offset))])
        assert total == len(want)
        assert len(ids) <= 4
        got += ids
        offset += 4
        if offset >= total:
            assert len(ids) == total - (offset - 4)
            break
    assert got == want
    ids, _ = await ids_of(env, [*base, ("offset", str(len(want)))])
    assert ids == []
    ids, _ = await ids_of(env, base)
    assert len(ids) == min(50, len(want))
    ids, _ = await ids_of(env, [*base, ("limit", "200")])
    assert ids == want


@pytest.mark.parametrize(
    "params",
    [[("limit", "201")], [("limit", "0")], [("limit", "x")], [("offset", "-1")], [("after", "yesterday")],
     [("before", "soon")], [("after", "2026-01-01"), ("before", "2025-01-01")]],
)
async def test_bad_parameters_are_400(env: Env, params: list[tuple[str, str]]) -> None:
    r = await get(env, params)
    assert r.status_code == 400
    validate(r.json(), THISDATA_ERROR_SCHEMA)


async def test_auth(env: Env) -> None:
    body = {"error": "Unauthorized: invalid or missing api_key"}
    for key in ("", "es_aaaaaaaa_" + "x" * 43, env.revoked_key):
        r = await get(env, [], key=key)
        assert (r.status_code, r.json()) == (401, body)
    # a bearer header is not ThisData's credential
    r = await env.stack.http.get("/v1/events.json", headers={"Authorization": f"Bearer {env.key}"})
    assert r.status_code == 401


async def test_events_come_back_field_for_field_from_both_tiers(env: Env) -> None:
    after = env.now - 89 * DAY_MS
    r = await get(env, [("after", format_ms(after)), ("exclude_verb", ""), ("limit", "200")])
    by_id = {o["id"]: o for o in env.objs}
    results = r.json()["results"]
    assert len(results) == len([o for o in env.objs if ts(o) >= after])
    for e in results:
        assert e == by_id[e["id"]]
    tiers = {ts(by_id[e["id"]]) < env.watermark for e in results}
    assert tiers == {True, False}


async def test_v1_events_with_api_key_is_the_thisdata_endpoint(env: Env) -> None:
    # ThisData's own path /v1/events (shared with the native API) answers in ThisData's shape
    # when the request authenticates like ThisData does (api_key, no Authorization header)
    params = [("api_key", env.key), ("user_id", "112233")]
    alias = await env.stack.http.get("/v1/events", params=params)
    direct = await env.stack.http.get("/v1/events.json", params=params)
    assert alias.status_code == 200, alias.text
    assert alias.json() == direct.json() and alias.json()["results"]
    validate(alias.json(), THISDATA_SCHEMA)
    # with a Bearer key the same path is the native API
    native = await env.stack.http.get("/v1/events", params=[("user_id", "112233")],
                                      headers={"Authorization": f"Bearer {env.key}"})
    assert native.status_code == 200 and "next_cursor" in native.json()
