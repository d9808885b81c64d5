"""The seeds' own example events: normalize → canonical event (checked field by field) → render
in the event's own format == the input, except the fields the service adds or overrides, which
are listed explicitly per seed."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from eventstrata.formats import normalize, render, render_native
from eventstrata.model import Event, InvalidEvent

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z

# -- seed 000/001 (Trieve EventData example; identical in both pages) ---------------------------
TRIEVE_EXAMPLE: dict[str, Any] = {
    "created_at": "2021-08-10T00:00:00Z",
    "dataset_id": "00000000-0000-0000-0000-000000000000",
    "event_name": "Viewed Home Page",
    "event_type": "view",
    "is_conversion": True,
    "items": ["item1", "item2"],
    "metadata": "metadata",
    "request_id": "00000000-0000-0000-0000-000000000000",
    "updated_at": "2021-08-10T00:00:00Z",
    "user_id": "user1",
}

# -- seed 002 (ThisData GET /v1/events, first result) ---------------------------------------------
THISDATA_EXAMPLE: dict[str, Any] = {
    "published": "2016-09-28T00:01:27.608Z",
    "verb": "log-in-denied",
    "device": {
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/52.0.2743.116 Safari/537.36",
        "browser": "Chrome",
        "platform": "Macintosh",
        "os": "OS X 10.11.6",
        "mobile": False,
        "bot": False,
        "version": [52, 0, 2743, 116],
        "comment": ["Macintosh", "Intel Mac OS X 10_11_6"],
    },
    "location": {
        "ip": "125.236.200.125",
        "coordinates": {"latitude": -36.8667, "ip": "125.236.220.125", "longitude": 174.7667},
        "address": {
            "country_name": "New Zealand",
            "ip": "125.236.200.125",
            "country_iso_code": "NZ",
            "region_name": "Auckland",
            "region_iso_code": "AUK",
            "city_name": "Auckland",
            "postal_code": "1150",
            "timezone": "Pacific/Auckland",
        },
    },
    "session": None,
    "overall_score": 0.0,
    "id": "AVduGJcvJD0DIuzSzIZf",
    "user": {"name": "Eve Smith", "id": "112233"},
    "raw": {
        "ip": "125.236.220.125",
        "verb": "log-in-denied",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/52.0.2743.116 Safari/537.36",
        "user": {
            "id": "112233",
            "name": "Eve Smith",
            "email": "eve.smith:::at:::domain.com",
            "mobile": "+64270000001",
            "authenticated": False,
        },
    },
}

# -- seed 003 (Fluid Topics POST /analytics/api/v1/events, the result) ---------------------------
FLUIDTOPICS_EXAMPLE: dict[str, Any] = {
    "appName": "ft/turnkey-portal",
    "appVersion": "4.3.32",
    "contentLocale": "en-US",
    "datetime": 1714487636947,
    "id": "f0c7a781-8956-492c-8961-60fcefca2328",
    "name": "khub.search",
    "offline": False,
    "parameters": {
        "searchQuery": {
            "terms": "Keyword or semantic search",
            "facets": [{"key": "Version_FT", "values": ["Latest"]}],
            "searchType": "EVERYWHERE",
        },
        "searchResponse": {"autocorrect": False, "nbResults": 1261},
    },
    "sessionId": "dc439e78-9f84-4a37-a5ae-95e040b550c1",
    "tenantId": "documentation-docft-stable",
    "uiLocale": "en-US",
    "user": {
        "realm": ["internal", "Keycloak"],
        "groups": ["ft:administrator", "antidot", "nda_basic", "ft:authenticated", "nda_advanced"],
        "id": "a95f015f-bddc-4f6d-8719-171e3510b304",
        "roles": [
            "PERSONAL_BOOK_SHARE_USER", "PDF_EXPORT_USER", "PERSONAL_BOOK_USER", "OFFLINE_USER",
            "FEEDBACK_USER", "ANALYTICS_USER", "RATING_USER", "GENERATIVE_AI_USER", "ADMIN", "PRINT_USER",
            "COLLECTION_USER", "HTML_EXPORT_USER", "SAVED_SEARCH_USER",
        ],
    },
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "userIp": "10.60.1.38",
}

# -- seed 004 (event store GET /api/event-stores/{name}/events, both examples) ------------------
EVENTSTORE_EXAMPLES: list[dict[str, Any]] = [
    {
        "streamId": "user-123",
        "streamPosition": 0,
        "globalPosition": 42,
        "eventId": "evt_123",
        "type": "user.created",
        "data": {"userId": "123", "email": "user@example.com"},
        "metadata": {"correlationId": "abc-123"},
        "schemaVersion": "1.0.0",
        "transactionId": "tx_123",
        "createdAt": "2023-01-15T12:30:45Z",
    },
    {
        "streamId": "order-456",
        "streamPosition": 0,
        "globalPosition": 43,
        "eventId": "evt_456",
        "type": "order.placed",
        "data": {"orderId": "456", "total": 99.99},
        "metadata": {"correlationId": "def-456"},
        "schemaVersion": "1.0.0",
        "transactionId": "tx_456",
        "createdAt": "2023-01-15T12:31:22Z",
    },
]

# Fields the service adds (absent from the input) or overrides when rendering back, per format.
ADDED: dict[str, dict[str, Any]] = {
    # the example has no id: it is derived ("d-…"); request_type is nullable and absent → null
    "trieve": {"id": None, "request_type": None},
    "thisdata": {},
    "fluidtopics": {},
    "eventstore": {},
}
OVERRIDDEN: dict[str, set[str]] = {
    "trieve": {"dataset_id"},  # = the tenant (equal here: the tenant came from dataset_id)
    "thisdata": set(),
    "fluidtopics": {"tenantId"},  # = the tenant (equal here: the tenant came from tenantId)
    "eventstore": {"streamPosition", "globalPosition"},  # ours once assigned (see test below)
}


def _norm(obj: dict[str, Any], headers: list[tuple[str, bytes]] | None = None) -> Event:
    ev = normalize(orjson.dumps(obj), headers or [], now_ms=NOW)
    assert isinstance(ev, Event), ev
    return ev


def assert_round_trip(fmt: str, original: dict[str, Any], rendered: dict[str, Any]) -> None:
    for key, value in original.items():
        assert key in rendered, f"{fmt}: rendered event lost field {key!r}"
        assert rendered[key] == value, f"{fmt}: field {key!r}: {rendered[key]!r} != {value!r}"
        assert type(rendered[key]) is type(value), f"{fmt}: field {key!r} changed JSON type"
    added = set(rendered) - set(original)
    assert added <= set(ADDED[fmt]), f"{fmt}: unexpected added fields {added - set(ADDED[fmt])}"
    # the JSON text round-trips too (what the API actually sends)
    assert orjson.loads(orjson.dumps(rendered)) == rendered


def test_trieve_seed_maps_and_round_trips() -> None:
    ev = _norm(TRIEVE_EXAMPLE)
    assert ev.format == "trieve"
    assert ev.tenant == "00000000-0000-0000-0000-000000000000"
    assert ev.type == "view" and ev.name == "Viewed Home Page"
    assert ev.user_id == "user1"
    assert ev.timestamp == 1628553600000 and ev.received_at == NOW
    assert ev.items == ("item1", "item2")
    assert ev.is_conversion is True
    assert ev.metadata == "metadata"
    assert ev.request_id == "00000000-0000-0000-0000-000000000000"
    assert ev.id.startswith("d-") and len(ev.id) == 34
    assert ev.store == "default"
    assert ev.vendor == {}  # updated_at == created_at, no request_type, dataset_id == tenant
    out = render(ev, "trieve")
    assert_round_trip("trieve", TRIEVE_EXAMPLE, out)
    assert out["id"] == ev.id and out["request_type"] is None


def test_trieve_seed_with_tenant_header_keeps_dataset_id_in_vendor() -> None:
    ev = _norm(TRIEVE_EXAMPLE, [("es-tenant", b"acme")])
    assert ev.tenant == "acme"
    assert ev.vendor["dataset_id"] == "00000000-0000-0000-0000-000000000000"
    assert render(ev, "trieve")["dataset_id"] == "acme"


def test_thisdata_seed_maps_and_round_trips() -> None:
    ev = _norm(THISDATA_EXAMPLE, [("es-tenant", b"acme")])
    assert ev.format == "thisdata"
    assert ev.tenant == "acme"
    assert ev.id == "AVduGJcvJD0DIuzSzIZf"
    assert ev.type == "log-in-denied" and ev.name is None
    assert ev.timestamp == 1475020887608
    assert ev.user_id == "112233" and ev.user == {"name": "Eve Smith", "id": "112233"}
    assert ev.session_id is None and ev.source is None
    assert ev.vendor["device"]["browser"] == "Chrome"
    assert ev.vendor["location"]["address"]["city_name"] == "Auckland"
    assert ev.vendor["overall_score"] == 0.0
    assert ev.vendor["raw"]["user"]["authenticated"] is False
    assert "session" not in ev.vendor  # null is not stored; rendered back as null
    assert_round_trip("thisdata", THISDATA_EXAMPLE, render(ev, "thisdata"))


def test_thisdata_needs_a_tenant_header() -> None:
    res = normalize(orjson.dumps(THISDATA_EXAMPLE), [], now_ms=NOW)
    assert isinstance(res, InvalidEvent) and res.code == "bad_tenant"


def test_fluidtopics_seed_maps_and_round_trips() -> None:
    ev = _norm(FLUIDTOPICS_EXAMPLE)
    assert ev.format == "fluidtopics"
    assert ev.tenant == "documentation-docft-stable"
    assert ev.id == "f0c7a781-8956-492c-8961-60fcefca2328"
    assert ev.type == "khub.search" and ev.name == "khub.search"
    assert ev.timestamp == 1714487636947
    assert ev.user_id == "a95f015f-bddc-4f6d-8719-171e3510b304"
    assert ev.realms == ("internal", "Keycloak")
    assert "ft:administrator" in ev.groups and "ADMIN" in ev.roles
    assert ev.session_id == "dc439e78-9f84-4a37-a5ae-95e040b550c1"
    assert ev.source == "ft/turnkey-portal"
    assert ev.data["searchQuery"]["searchType"] == "EVERYWHERE"
    assert ev.vendor == {
        "appVersion": "4.3.32", "contentLocale": "en-US", "offline": False, "uiLocale": "en-US",
        "userAgent": FLUIDTOPICS_EXAMPLE["userAgent"], "userIp": "10.60.1.38",
    }
    assert_round_trip("fluidtopics", FLUIDTOPICS_EXAMPLE, render(ev, "fluidtopics"))


@pytest.mark.parametrize("example", EVENTSTORE_EXAMPLES, ids=["user-123", "order-456"])
def test_eventstore_seed_maps_and_round_trips(example: dict[str, Any]) -> None:
    ev = _norm(example, [("es-tenant", b"acme"), ("es-store", b"shop")])
    assert ev.format == "eventstore" and ev.tenant == "acme" and ev.store == "shop"
    assert ev.id == example["eventId"]
    assert ev.type == example["type"]
    assert ev.stream_id == example["streamId"]
    assert ev.transaction_id == example["transactionId"]
    assert ev.data == example["data"] and ev.metadata == example["metadata"]
    # the producer's positions are not ours: not in the canonical fields, kept in vendor
    assert ev.stream_position is None and ev.global_position is None
    assert ev.vendor["streamPosition"] == 0
    assert ev.vendor["globalPosition"] == example["globalPosition"]
    assert ev.vendor["schemaVersion"] == "1.0.0"
    # not stored yet: rendered with the producer's positions → identical to the input
    assert_round_trip("eventstore", example, render(ev, "eventstore"))
    # once the hot store assigned OUR positions, those are shown instead
    stored = ev.with_positions(7, 3)
    out = render(stored, "eventstore")
    assert out["globalPosition"] == 7 and out["streamPosition"] == 3
    expected = copy.deepcopy(example)
    for key in OVERRIDDEN["eventstore"]:
        expected.pop(key)
        out.pop(key)
    assert out == expected


def test_eventstore_user_id_from_data() -> None:
    ev = _norm(EVENTSTORE_EXAMPLES[0], [("es-tenant", b"acme")])
    assert ev.user_id == "123"  # data.userId (no metadata.userId)
    assert ev.store == "default"
    ev2 = _norm(EVENTSTORE_EXAMPLES[1], [("es-tenant", b"acme")])
    assert ev2.user_id is None


def test_eventstore_store_from_body_and_header_precedence() -> None:
    body = dict(EVENTSTORE_EXAMPLES[0], eventStoreName="billing")
    ev = _norm(body, [("es-tenant", b"acme")])
    assert ev.store == "billing" and "eventStoreName" not in ev.vendor
    ev2 = _norm(body, [("es-tenant", b"acme"), ("es-store", b"shop")])
    assert ev2.store == "shop" and ev2.vendor["eventStoreName"] == "billing"


@pytest.mark.parametrize(
    ("fmt", "example", "headers"),
    [
        ("trieve", TRIEVE_EXAMPLE, []),
        ("thisdata", THISDATA_EXAMPLE, [("es-tenant", b"acme")]),
        ("fluidtopics", FLUIDTOPICS_EXAMPLE, []),
        ("eventstore", EVENTSTORE_EXAMPLES[0], [("es-tenant", b"acme")]),
    ],
)
def test_seed_examples_are_detected_without_format_header(
    fmt: str, example: dict[str, Any], headers: list[tuple[str, bytes]]
) -> None:
    assert _norm(example, headers).format == fmt
    with_header = _norm(example, [*headers, ("es-format", fmt.encode())])
    assert with_header == _norm(example, headers)


@pytest.mark.parametrize(
    ("example", "headers"),
    [
        (TRIEVE_EXAMPLE, []),
        (THISDATA_EXAMPLE, [("es-tenant", b"acme")]),
        (FLUIDTOPICS_EXAMPLE, []),
        (EVENTSTORE_EXAMPLES[1], [("es-tenant", b"acme")]),
    ],
)
def test_seed_events_survive_storage_form(example: dict[str, Any], headers: list[tuple[str, bytes]]) -> None:
    ev = _norm(example, headers)
    back = Event.from_json(ev.to_json())
    assert back == ev
    assert render(back, ev.format) == render(ev, ev.format)
    assert render_native(back) == render_native(ev)
