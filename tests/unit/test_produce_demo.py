from __future__ import annotations

import random

from eventstrata.demo import DemoInfo, plan_events, tour_text
from eventstrata.formats.normalize import normalize
from eventstrata.model import Event
from eventstrata.produce import parse_line

NOW = 1_764_000_000_000


def test_parse_line_sets_headers_and_user_key() -> None:
    m = parse_line(b'{"tenant": "acme", "user_id": "u1", "type": "view"}\n', fmt="native", store="s")
    assert m is not None
    assert dict(m.headers) == {"es-format": b"native", "es-store": b"s"}
    assert m.key == b"acme:u1"
    assert m.value == b'{"tenant": "acme", "user_id": "u1", "type": "view"}'


def test_parse_line_keeps_bad_json_for_the_dlq_and_skips_blank() -> None:
    assert parse_line(b"   \n") is None
    m = parse_line(b"{not json", tenant="t")
    assert m is not None and m.value == b"{not json" and m.key is None


def test_demo_plan_is_deterministic_valid_and_spread_over_30_days() -> None:
    a = plan_events(random.Random(1), "demo", NOW, 500)
    b = plan_events(random.Random(1), "demo", NOW, 500)
    assert a == b
    events = [normalize(m.value, m.headers, now_ms=NOW) for m in a.messages]
    assert all(isinstance(e, Event) for e in events), [e for e in events if not isinstance(e, Event)][:3]
    evs = [e for e in events if isinstance(e, Event)]
    assert {e.format for e in evs} == {"native", "trieve", "thisdata", "fluidtopics", "eventstore"}
    assert {e.tenant for e in evs} == {"demo"}
    span = max(e.timestamp for e in evs) - min(e.timestamp for e in evs)
    assert span > 20 * 86_400_000  # both tiers get data with a 7-day hot retention
    counts = {u: sum(1 for e in evs if e.user_id == u) for u in a.users}
    assert counts[a.busiest_user] == max(counts.values())


def test_tour_names_every_endpoint_with_the_key() -> None:
    text = tour_text(DemoInfo(api="http://127.0.0.1:8080", tenant="demo", key="es_k", events=3000,
                              busiest_user="user-000"))
    for path in ("/v1/events?", "/v1/tail", "/api/analytics/events/all", "/v1/events.json",
                 "/analytics/api/v1/events", "/api/event-stores/"):
        assert path in text
    assert text.count("es_k") >= 6
