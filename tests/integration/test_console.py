"""The web console, driven in headless Chromium (Debian's ``chromium``) against the real stack:
the API, an ingest worker and an archiver as the processes operators run, real Kafka and
Redis, events in both tiers. Each test checks what the page shows against the API's own
answers; screenshots of every view go to ``build/console-screenshots/`` (with the first-paint
timing of the explorer in ``first-paint.json``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from chaos_support import Proc
from ingest_util import jmsg, produce
from playwright.async_api import Browser, Page, async_playwright

from eventstrata.auth import ApiKeys
from eventstrata.config import Settings
from eventstrata.localstack.ports import free_port
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "console-screenshots"
TENANT = "console"
HOUR = 3_600_000
DAY = 24 * HOUR
SEED = 600
USERS = ("u0", "u1", "u2")
TYPES = ("click", "view", "purchase")


@dataclass
class Stack:
    url: str
    settings: Settings
    admin_key: str
    read_key: str
    procs: list[Proc]
    seeded: list[dict[str, Any]] = field(default_factory=list)

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"},
                                 timeout=30)

    async def publish(self, events: list[dict[str, Any]]) -> None:
        await produce(self.settings.kafka_bootstrap, self.settings.topic,
                      [jmsg(e, es_format="native") for e in events])


def seed_events(now_ms: int) -> list[dict[str, Any]]:
    """SEED native events over the last 5 days (about 3/5 of them older than the 2-day hot
    retention, so the archiver moves them to Parquet)."""
    start = now_ms - 5 * DAY
    step = (5 * DAY - 60_000) // SEED
    return [{"id": f"seed-{i:04d}", "tenant": TENANT, "type": TYPES[(i // 3) % 3], "user_id": USERS[i % 3],
             "session_id": f"s{i // 20}", "source": "web", "timestamp": start + i * step,
             "data": {"n": i, "plan": ("free", "pro")[i % 2]}} for i in range(SEED)]


async def wait_for(what: Callable[[], Awaitable[bool]], seconds: float, label: str) -> None:
    deadline = time.monotonic() + seconds
    while not await what():
        assert time.monotonic() < deadline, f"timed out waiting for {label}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, redis_url: str, topic_factory: Callable[..., str],
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("console")
    prefix = f"con{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        env={}, kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, key_prefix=prefix,
        consumer_group=f"g.{prefix}", topic=topic_factory(4), dlq_topic=topic_factory(1, prefix="dlq"),
        archive_uri=str(tmp / "archive"), state_dir=tmp / "state", api_port=free_port(),
        hot_retention_ms=2 * DAY, window_ms=HOUR, archive_interval_ms=1000, archive_grace_ms=500,
        api_key_cache_ms=0, log_level="INFO")
    redis = connect_redis(settings)
    try:
        keys = ApiKeys(redis, settings.layout())
        admin_key = await keys.create(TENANT, scopes=("read", "ingest", "admin"))
        read_key = await keys.create(TENANT, scopes=("read",))
    finally:
        await redis.aclose()
    env = {**os.environ, **settings.to_env()}
    procs = [Proc(f"eventstrata.processes.{m}", env, tmp / f"{m}.log") for m in ("api", "ingest", "archive")]
    st = Stack(f"http://127.0.0.1:{settings.api_port}", settings, admin_key, read_key, procs)
    try:
        st.seeded = seed_events(int(time.time() * 1000))
        await st.publish(st.seeded)
        async with st.api() as c:
            async def ready() -> bool:
                try:
                    n = (await c.get("/v1/events/count", params={"since": "2000-01-01"})).json().get("count")
                    w = (await c.get("/v1/admin/archive")).json().get("watermark_ms")
                except (httpx.HTTPError, ValueError):
                    return False
                return n == SEED and bool(w)
            await wait_for(ready, 120, "the seed events stored and the first archive pass")
        yield st
    finally:
        for p in procs:
            p.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    exe = shutil.which("chromium")
    assert exe is not None, "chromium is not installed (`make deps-test` installs Debian's package)"
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield b
        finally:
            await b.close()


class Console:
    """One browser context (its own sessionStorage) on the console; page errors are collected
    and fail the test."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if "Content Security Policy" in m.text else None)

    async def wait_js(self, expression: str, timeout: float = 30.0, arg: Any = None) -> None:
        """Poll a JavaScript expression (a function of ``arg`` when given) until it is truthy.
        (``page.wait_for_function`` evaluates its predicate with ``eval``, which the console's
        Content-Security-Policy forbids, as it should.)"""
        deadline = time.monotonic() + timeout
        while not (await self.page.evaluate(expression, arg) if arg is not None else await self.page.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            await asyncio.sleep(0.1)

    async def sign_in(self, key: str) -> None:
        await self.page.goto(self.base + "/")
        await self.page.fill("#key", key)
        await self.page.click("form.signin button[type=submit]")
        await self.page.wait_for_selector("#tenant")

    async def go(self, hash_: str) -> None:
        await self.page.evaluate("h => { location.hash = h; }", hash_)

    async def hash_params(self) -> dict[str, list[str]]:
        h = await self.page.evaluate("location.hash")
        return parse_qs(h.split("?", 1)[1]) if "?" in h else {}

    async def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)

    async def row_ids(self, table: str = "table.events") -> list[str]:
        ids: list[str] = await self.page.eval_on_selector_all(
            f"{table} tbody tr", "rows => rows.map(r => r.dataset.id)")
        return ids


@pytest.fixture
async def console(browser: Browser, stack: Stack) -> AsyncIterator[Console]:
    ctx = await browser.new_context(viewport={"width": 1300, "height": 900})
    c = Console(await ctx.new_page(), stack.url)
    try:
        yield c
        assert c.errors == []
    finally:
        await ctx.close()


async def api_walk(c: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await c.get("/v1/events", params=q)).raise_for_status().json()
        out.extend(page["events"])
        cursor = page["next_cursor"]
        if not cursor:
            return out


async def test_root_redirects_to_the_console_and_its_files_are_served_with_a_strict_policy(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as c:
        r = await c.get("/")
        assert r.status_code == 307 and r.headers["location"] == "/console"
        page = await c.get("/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        js = await c.get("/console/assets/app.js")
        assert js.headers["content-type"].startswith("text/javascript")
        again = await c.get("/console/assets/app.js", headers={"If-None-Match": js.headers["etag"]})
        assert again.status_code == 304
        missing = await c.get("/console/assets/nope.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert "/console" not in (await c.get("/openapi.json")).json()["paths"]


async def test_the_endpoints_the_console_reads_answer_for_the_keys_tenant(stack: Stack) -> None:
    async with stack.api() as c:
        t = (await c.get("/v1/tenant")).raise_for_status().json()
        archive = (await c.get("/v1/admin/archive")).json()
        assert t["tenant"] == TENANT and t["scopes"] == ["read", "ingest", "admin"]
        assert t["archive_watermark_ms"] == archive["watermark_ms"] > 0
        assert t["global_position"] >= SEED

        async def caught_up() -> bool:
            p = (await c.get("/v1/admin/pipeline")).raise_for_status().json()
            return p["lag"] == 0
        await wait_for(caught_up, 60, "the consumer group's commits")
        p = (await c.get("/v1/admin/pipeline")).json()
        assert p["topic"] == stack.settings.topic and p["consumer_group"] == stack.settings.consumer_group
        assert [x["partition"] for x in p["partitions"]] == [0, 1, 2, 3]
        assert sum(x["end"] for x in p["partitions"]) >= SEED
        assert all(x["committed"] == x["end"] for x in p["partitions"])
        assert p["global_position"] >= SEED
        trieve = (await c.get("/v1/events/seed-0001", params={"format": "trieve"})).json()
        assert trieve["id"] == "seed-0001" and trieve["dataset_id"] == TENANT
        bad = await c.get("/v1/events/seed-0001", params={"format": "csv"})
        assert bad.status_code == 400 and bad.json()["error"]["details"][0]["path"] == "format"
    async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {stack.read_key}"}) as c:
        assert (await c.get("/v1/tenant")).json()["scopes"] == ["read"]
        assert (await c.get("/v1/admin/pipeline")).status_code == 403


async def test_sign_in_keeps_the_key_in_session_storage_and_shows_the_tenant(console: Console, stack: Stack) -> None:
    page = console.page
    await page.goto(stack.url + "/")
    assert page.url.endswith("/console")
    await console.shot("sign-in")
    await page.fill("#key", "es_aaaaaaaa_" + "b" * 43)
    await page.click("form.signin button[type=submit]")
    await page.wait_for_selector("form.signin .form-error:text('invalid or revoked API key')")
    await console.sign_in(stack.admin_key)
    assert await page.inner_text("#tenant") == TENANT
    assert await page.evaluate("sessionStorage.getItem('eventstrata.key')") == stack.admin_key
    assert stack.admin_key not in page.url
    assert await page.context.cookies() == []
    await page.click("#signout")
    await page.wait_for_selector("form.signin")
    assert await page.evaluate("sessionStorage.getItem('eventstrata.key')") is None


async def test_explorer_filters_by_user_and_type_scrolls_past_the_first_page_and_counts(
        console: Console, stack: Stack) -> None:
    page = console.page
    await console.sign_in(stack.admin_key)
    await console.go("#/events?range=7d")
    await page.wait_for_selector("table.events tbody tr")
    await page.fill("#f-user_id", "u1")
    await page.fill("#f-type", "click, purchase")
    await page.click("form.filters button[type=submit]")
    await console.wait_js("document.querySelectorAll('table.events tbody tr').length >= 50")
    assert await console.hash_params() == {"range": ["7d"], "user_id": ["u1"], "type": ["click", "purchase"]}
    async with stack.api() as c:
        since = time.time() * 1000 - 7 * DAY
        expected = [e for e in await api_walk(c, {"user_id": "u1", "type": ["click", "purchase"], "since": "2000-01-01"})
                    if _iso_ms(e["timestamp"]) >= since]
        watermark = (await c.get("/v1/admin/archive")).json()["watermark_ms"]
    assert len(expected) > 100  # more than two pages of 50
    # scroll to the end: every matching event once, in the API's order
    for _ in range(20):
        if await page.is_hidden("button.more"):
            break
        await page.locator("button.more").scroll_into_view_if_needed()
        await page.wait_for_timeout(300)
    assert await console.row_ids() == [e["id"] for e in expected]
    tiers = await page.eval_on_selector_all("table.events tbody tr td:last-child", "cells => cells.map(c => c.innerText)")
    assert tiers == ["cold" if _iso_ms(e["timestamp"]) < watermark else "hot" for e in expected]
    assert {"hot", "cold"} <= set(tiers)
    await page.click("text=Exact total")
    await page.wait_for_selector(f"output.total:text('{len(expected)} events')")
    # a reload keeps the view: the filters come back from the URL
    await page.reload()
    await page.wait_for_selector("table.events tbody tr")
    assert await page.input_value("#f-user_id") == "u1"
    assert await page.input_value("#f-type") == "click, purchase"
    await page.evaluate("window.scrollTo(0, 0)")
    await console.shot("explorer")


async def test_explorer_first_paint_with_50_events_is_recorded(console: Console, stack: Stack) -> None:
    """The explorer's first paint and its first 50 rows, measured in the browser (written to
    first-paint.json beside the screenshots; the console's README quotes it)."""
    page = console.page
    await console.sign_in(stack.admin_key)
    await page.goto(stack.url + "/console#/events?range=7d")
    await console.wait_js("document.querySelectorAll('table.events tbody tr').length === 50")
    timing = await page.evaluate("""() => ({
        first_contentful_paint_ms: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
        fifty_rows_ms: performance.now(),
        dom_content_loaded_ms: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd})""")
    assert timing["first_contentful_paint_ms"] is not None
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "first-paint.json").write_text(json.dumps(timing, indent=2))


async def test_event_detail_shows_every_vendor_rendering(console: Console, stack: Stack) -> None:
    page = console.page
    await console.sign_in(stack.admin_key)
    await console.go("#/events?range=7d&user_id=u2")
    await page.wait_for_selector("table.events tbody tr")
    first_id = (await console.row_ids())[0]
    await page.click("table.events tbody tr:first-child a.time-link")
    await page.wait_for_selector("#rendering")
    assert (await console.hash_params())["id"] == [first_id]
    async with stack.api() as c:
        native = (await c.get(f"/v1/events/{first_id}")).json()
        for fmt in ("api", "trieve", "thisdata", "fluidtopics", "eventstore"):
            await page.click(f"#tab-{fmt}")
            await page.wait_for_selector(f"#tab-{fmt}[aria-selected=true]")
            want = native if fmt == "api" else (await c.get(f"/v1/events/{first_id}", params={"format": fmt})).json()
            await console.wait_js("t => document.querySelector('#rendering')?.textContent === t",
                                  arg=json.dumps(want, indent=2))
    facts = await page.inner_text("dl.facts")
    assert str(native["global_position"]) in facts
    await page.focus("#tab-eventstore")
    await page.keyboard.press("ArrowRight")  # wraps to the first tab
    assert await page.get_attribute("#tab-api", "aria-selected") == "true"
    await console.shot("event-detail")


async def test_chart_drag_zooms_the_time_range(console: Console, stack: Stack) -> None:
    page = console.page
    await console.sign_in(stack.admin_key)
    await console.go("#/events?range=7d")
    await page.wait_for_selector("svg.chart rect.hit", state="attached")
    bars = page.locator("svg.chart rect.bar")
    assert await bars.count() == 7 * 24 or await bars.count() == 7 * 24 + 1
    starts = await page.eval_on_selector_all("svg.chart rect.bar", "b => b.map(x => x.dataset.start)")
    counts = await page.eval_on_selector_all("svg.chart rect.bar", "b => b.map(x => Number(x.dataset.count))")
    lo, hi = 100, 104  # 5 hours: 300 one-minute buckets
    box_lo = await page.locator(f"svg.chart rect.hit[data-index='{lo}']").bounding_box()
    box_hi = await page.locator(f"svg.chart rect.hit[data-index='{hi}']").bounding_box()
    assert box_lo and box_hi
    await page.mouse.move(box_lo["x"] + box_lo["width"] / 2, box_lo["y"] + 20)
    await page.mouse.down()
    await page.mouse.move(box_hi["x"] + box_hi["width"] / 2, box_hi["y"] + 20, steps=8)
    await page.mouse.up()
    await console.wait_js("location.hash.includes('range=custom')")
    params = await console.hash_params()
    since_ms = _iso_ms(params["since"][0])
    until_ms = _iso_ms(params["until"][0])
    assert since_ms == _iso_ms(starts[lo]) and until_ms == _iso_ms(starts[hi]) + HOUR
    await console.wait_js("document.querySelector('.chart-head')?.innerText.includes('per minute')")
    zoomed = await page.eval_on_selector_all("svg.chart rect.bar", "b => b.map(x => Number(x.dataset.count))")
    assert len(zoomed) == 5 * 60 and sum(zoomed) == sum(counts[lo:hi + 1])
    if sum(zoomed):
        await page.wait_for_selector("table.events tbody tr")
        times = await page.eval_on_selector_all("table.events tbody tr time", "t => t.map(x => x.dateTime)")
        assert all(since_ms <= _iso_ms(t) < until_ms for t in times)
    await console.shot("chart-zoomed")
    # the keyboard zooms too: arrows choose a bar, Shift+arrows widen the choice, Enter zooms
    minutes = await page.eval_on_selector_all("svg.chart rect.bar", "b => b.map(x => x.dataset.start)")
    await page.focus("svg.chart")
    for key in ("ArrowRight", "ArrowRight", "ArrowRight", "Shift+ArrowRight", "Shift+ArrowRight"):
        await page.keyboard.press(key)
    assert "events" in await page.inner_text(".chart-status")
    await page.keyboard.press("Enter")
    await console.wait_js(f"decodeURIComponent(location.hash).includes({json.dumps(minutes[2][:16])})")
    params = await console.hash_params()
    assert _iso_ms(params["since"][0]) == _iso_ms(minutes[2])
    assert _iso_ms(params["until"][0]) == _iso_ms(minutes[4]) + 60_000


def _iso_ms(s: str) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


async def test_user_view_groups_by_day_and_session_with_exact_counts(console: Console, stack: Stack) -> None:
    page = console.page
    await console.sign_in(stack.admin_key)
    await console.go("#/user?user_id=u0&range=7d")
    await page.wait_for_selector("section.timeline h2")
    async with stack.api() as c:
        since = time.time() * 1000 - 7 * DAY
        mine = [e for e in await api_walk(c, {"user_id": "u0", "since": "2000-01-01"}) if _iso_ms(e["timestamp"]) >= since]
    rows = await page.eval_on_selector_all("table.counts tbody tr", "r => r.map(x => [x.cells[0].innerText, x.cells[1].innerText])")
    per_type: dict[str, int] = {}
    for e in mine:
        per_type[e["type"]] = per_type.get(e["type"], 0) + 1
    assert {t: int(n.replace(",", "")) for t, n in rows} == per_type
    days = await page.eval_on_selector_all("section.timeline > h2", "h => h.map(x => x.innerText.slice(0, 10))")
    assert days == sorted({time.strftime("%Y-%m-%d", time.gmtime(_iso_ms(e["timestamp"]) / 1000)) for e in mine}, reverse=True)
    sessions = await page.eval_on_selector_all("section.timeline .session h3", "h => h.map(x => x.innerText)")
    assert len(sessions) >= len({(e["session_id"]) for e in mine})
    assert await page.locator("section.timeline li").count() == len(mine)
    await console.shot("user")


async def test_live_tail_shows_every_event_once_across_pause_resume_and_reload(console: Console, stack: Stack) -> None:
    page = console.page
    user = f"tail-{uuid.uuid4().hex[:6]}"
    await console.sign_in(stack.admin_key)
    await console.go(f"#/tail?user_id={user}")
    await page.wait_for_selector(".table-tools .status:text('Live')")
    now = int(time.time() * 1000)

    def batch(n: int, start: int) -> list[dict[str, Any]]:
        return [{"id": f"{user}-{i:03d}", "tenant": TENANT, "type": TYPES[i % 3], "user_id": user,
                 "timestamp": now + i} for i in range(start, start + n)]

    async def shown(n: int) -> list[str]:
        await console.wait_js(f"document.querySelectorAll('table.events tbody tr').length >= {n}")
        await page.wait_for_timeout(500)  # nothing more arrives
        return await console.row_ids()

    await stack.publish(batch(30, 0))
    ids = await shown(30)
    assert sorted(ids) == [f"{user}-{i:03d}" for i in range(30)]
    await console.wait_js("document.querySelector('output.rate')?.innerText !== '0.0 events/s'")
    await page.click("button[aria-pressed]")
    await page.wait_for_selector("button[aria-pressed=true]")
    await stack.publish(batch(30, 30))
    await page.wait_for_timeout(2000)
    assert len(await console.row_ids()) == 30  # paused: nothing shown
    await page.click("button[aria-pressed]")
    ids = await shown(60)
    assert sorted(ids) == [f"{user}-{i:03d}" for i in range(60)]  # each once, no gap
    await page.reload()
    await page.wait_for_selector(".table-tools .status:text('Live')")
    assert len(await console.row_ids()) == 60  # the rows shown come back
    await stack.publish(batch(20, 60))
    ids = await shown(80)
    assert sorted(ids) == [f"{user}-{i:03d}" for i in range(80)]
    async with stack.api() as c:  # newest (the highest global position) on top
        positions = {i: (await c.get(f"/v1/events/{i}")).json()["global_position"] for i in ids}
    assert ids == sorted(ids, key=lambda i: -positions[i])
    await console.shot("tail")


async def test_health_shows_a_dead_letter_after_a_bad_event_is_produced(console: Console, stack: Stack) -> None:
    page = console.page
    await console.sign_in(stack.admin_key)
    await console.go("#/health")
    await page.wait_for_selector("#stat-position")
    assert int((await page.inner_text("#stat-position")).replace(",", "")) >= SEED
    bad = b'{"type": "broken", "user_id": "u0", '  # cut short: malformed JSON
    await produce(stack.settings.kafka_bootstrap, stack.settings.topic,
                  [(bad, [("es-tenant", TENANT.encode()), ("es-format", b"native")], None)])
    await page.wait_for_selector("#dlq-latest tbody tr[data-code=malformed_json]", timeout=60_000)
    await page.click("#dlq-latest tbody tr[data-code=malformed_json] button")
    await page.wait_for_selector("pre[aria-label='Original bytes']")
    assert await page.text_content("pre[aria-label='Original bytes']") == bad.decode()
    await console.wait_js("document.querySelector('#stat-rate')?.innerText !== 'measuring…'")
    await console.shot("health")


async def test_health_needs_the_admin_scope_and_says_so(console: Console, stack: Stack) -> None:
    await console.sign_in(stack.read_key)
    await console.go("#/health")
    await console.page.wait_for_selector("text=needs a key with the admin scope")


async def test_api_errors_are_shown_as_the_apis_message(console: Console, stack: Stack) -> None:
    page = console.page
    await console.sign_in(stack.admin_key)
    await console.go("#/events?range=7d&type=" + "x" * 1100)
    await page.wait_for_selector("#banner:not([hidden])")
    text = await page.inner_text("#banner")
    assert "invalid_parameter" in text and "HTTP 400" in text
    await console.go("#/event?id=does-not-exist")
    await page.wait_for_selector("text=no event with this id")


async def test_empty_results_say_how_to_publish_a_first_event(console: Console, stack: Stack) -> None:
    await console.sign_in(stack.admin_key)
    await console.go("#/events?range=1h&user_id=nobody-at-all")
    await console.page.wait_for_selector(".empty pre:text('/v1/ingest')")


async def test_every_view_passes_an_automated_accessibility_check(console: Console, stack: Stack) -> None:
    page = console.page
    axe = Axe()
    found: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        result = await axe.run(page)
        bad = [f"{v['id']} ({v['impact']}): {v['help']}" for v in result.response["violations"]
               if v["impact"] in ("serious", "critical")]
        if bad:
            found[name] = bad

    await page.goto(stack.url + "/console")
    await page.wait_for_selector("form.signin")
    await check("sign-in")
    await console.sign_in(stack.admin_key)
    for name, hash_, ready in [
        ("events", "#/events?range=7d", "table.events tbody tr"),
        ("event", "#/event?id=seed-0599", "#rendering"),
        ("user", "#/user?user_id=u1&range=7d", "section.timeline h2"),
        ("tail", "#/tail", ".table-tools .status:text('Live')"),
        ("health", "#/health", "#stat-position"),
    ]:
        await console.go(hash_)
        await page.wait_for_selector(ready)
        await check(name)
    assert found == {}
    # from the keyboard: the first Tab reaches the skip link, which moves focus to the view
    await page.reload()
    await page.wait_for_selector("#stat-position")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
