"""Redis down is a state, not a bug: every read surface answers 503 with the error envelope and
``Retry-After`` while it is down, and after it is back no request fails (a stale pooled
connection is retried once, never answered with an error)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from query_support import DAY_MS, QueryStack, make_events

from eventstrata.localstack.redis import RedisServer

pytestmark = pytest.mark.integration
TENANT = "outage"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[QueryStack, RedisServer, str]]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    server.wait_ready()
    s = QueryStack(server.url, tmp_path, hot_retention="3d")
    try:
        s.start()
        now = int(time.time() * 1000)
        s.write(make_events(TENANT, 40, start_ms=now - DAY_MS, span_ms=DAY_MS, seed=5))
        yield s, server, s.create_key(TENANT)
    finally:
        s.stop()
        server.stop()


def requests(s: QueryStack, key: str) -> dict[str, tuple[str, str, dict[str, str], bytes | None]]:
    any_id = next(iter(s.events[TENANT]))
    bearer = {"Authorization": f"Bearer {key}"}
    return {
        "page": ("GET", "/v1/events?limit=5", bearer, None),
        "filtered page": ("GET", "/v1/events?user_id=u1&type=click", bearer, None),
        "count": ("GET", "/v1/events/count", bearer, None),
        "get": ("GET", f"/v1/events/{any_id}", bearer, None),
        "query": ("POST", "/v1/events/query", bearer, b'{"limit": 3}'),
        "thisdata": ("GET", f"/v1/events.json?api_key={key}&limit=3", {}, None),
        "trieve": ("POST", "/api/analytics/events/all", {"Authorization": key, "TR-Dataset": TENANT},
                   b'{"page": 1}'),
        "fluidtopics": ("POST", "/analytics/api/v1/events", bearer,
                        (f'{{"startDate": "{day(-2)}", "endDate": "{day(1)}"}}').encode()),
        "eventstore": ("GET", "/api/event-stores/default/events?limit=3", bearer, None),
    }


def day(offset: int) -> str:
    """Today + ``offset`` days as ``YYYY-MM-DD`` (UTC)."""
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset * 86_400))


def call(s: QueryStack, method: str, path: str, headers: dict[str, str], body: bytes | None) -> httpx.Response:
    return httpx.request(method, s.base_url + path, headers=headers, content=body, timeout=30)


def tail_status(s: QueryStack, key: str) -> tuple[int, httpx.Headers, bytes]:
    """Status, headers and (for an error) body of ``GET /v1/tail``, without reading the stream."""
    with httpx.stream("GET", s.base_url + "/v1/tail", headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as r:
        return r.status_code, r.headers, (r.read() if r.status_code != 200 else b"")


def test_redis_down_answers_503_everywhere_and_nothing_fails_once_it_is_back(stack) -> None:
    s, server, key = stack
    reqs = requests(s, key)
    for name, (m, p, h, b) in reqs.items():
        assert call(s, m, p, h, b).status_code == 200, name
    server.stop()
    time.sleep(1.2)  # past the API key cache: the key is looked up in Redis again
    for name, (m, p, h, b) in reqs.items():
        r = call(s, m, p, h, b)
        assert r.status_code == 503, (name, r.status_code, r.text[:300])
        assert r.headers["retry-after"] == "1", name
        assert r.json()["error"]["code"] == "unavailable", name
    status, headers, body = tail_status(s, key)
    assert status == 503 and headers["retry-after"] == "1" and b'"unavailable"' in body
    server.start()
    server.wait_ready()
    for name, (m, p, h, b) in reqs.items():
        r = call(s, m, p, h, b)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
    assert tail_status(s, key)[0] == 200
    # a quick restart with no request in between: every pooled connection is stale
    server.stop()
    server.start()
    server.wait_ready()
    time.sleep(1.2)
    for name, (m, p, h, b) in reqs.items():
        r = call(s, m, p, h, b)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
