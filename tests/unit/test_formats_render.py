"""Renderers: the native API JSON, cross-format rendering (any event in any vendor shape),
positions, and the samples generator (deterministic, ~600 bytes, round-trips)."""

from __future__ import annotations

import random
import statistics
from typing import Any, cast

import orjson
import pytest

from eventstrata.formats import normalize, render, render_native
from eventstrata.formats.render import RENDERERS
from eventstrata.formats.samples import encode_headers, sample_event
from eventstrata.model import FORMATS, Event, Format

NOW = 1_767_225_600_000
TS = 1_767_139_200_123  # 2025-12-31T00:00:00.123Z

# The keys each vendor shape always has (the seeds' field lists).
SHAPES: dict[str, set[str]] = {
    "trieve": {"created_at", "dataset_id", "event_name", "event_type", "id", "is_conversion", "items",
               "metadata", "request_id", "request_type", "updated_at", "user_id"},
    "thisdata": {"published", "verb", "device", "location", "session", "overall_score", "id", "user", "raw"},
    "fluidtopics": {"appName", "appVersion", "contentLocale", "datetime", "id", "name", "offline",
                    "parameters", "sessionId", "tenantId", "uiLocale", "user", "userAgent", "userIp"},
    "eventstore": {"streamId", "streamPosition", "globalPosition", "eventId", "type", "data", "metadata",
                   "schemaVersion", "transactionId", "createdAt"},
}


def full_native() -> Event:
    ev = normalize(
        orjson.dumps(
            {
                "id": "e-1", "tenant": "acme", "type": "purchase", "name": "Purchased", "user_id": "u-1",
                "timestamp": TS, "source": "web", "session_id": "s-1", "stream_id": "order-9",
                "transaction_id": "tx-1", "request_id": "r-1", "is_conversion": True, "items": ["sku-1"],
                "user": {"realm": ["internal"], "groups": ["g"], "roles": ["ADMIN"], "name": "Ann"},
                "data": {"total": 9.5}, "metadata": {"ip": "10.0.0.1"}, "custom": 1,
            }
        ),
        [],
        now_ms=NOW,
    )
    assert isinstance(ev, Event)
    return ev


def test_render_native_shape() -> None:
    ev = full_native().with_positions(12, 3)
    out = render_native(ev)
    assert out["timestamp"] == "2025-12-31T00:00:00.123Z"
    assert out["timestamp_ms"] == TS
    assert out["received_at"] == "2026-01-01T00:00:00.000Z"
    assert out["global_position"] == 12 and out["stream_position"] == 3
    assert "vendor" not in out and out["format"] == "native"
    expected = ev.to_dict()
    del expected["vendor"]
    for key in ("timestamp", "received_at"):
        del expected[key]
    assert {k: v for k, v in out.items() if k in expected} == expected
    assert set(out) == set(expected) | {"timestamp", "received_at", "timestamp_ms"}
    assert render(ev, "native") == out


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "native"])
def test_any_event_renders_in_every_vendor_shape(fmt: Format) -> None:
    ev = full_native().with_positions(12, 3)
    out = render(ev, fmt)
    assert set(out) >= SHAPES[fmt]
    assert "custom" not in out  # another format's unknown fields never leak into this shape
    orjson.dumps(out)


def test_cross_format_mappings() -> None:
    ev = full_native().with_positions(12, 3)
    tr = render(ev, "trieve")
    assert (tr["event_type"], tr["event_name"], tr["dataset_id"], tr["user_id"]) == ("purchase", "Purchased", "acme", "u-1")
    assert tr["created_at"] == tr["updated_at"] == "2025-12-31T00:00:00.123Z"
    assert tr["items"] == ["sku-1"] and tr["is_conversion"] is True and tr["request_id"] == "r-1"
    td = render(ev, "thisdata")
    assert td["verb"] == "purchase" and td["published"] == "2025-12-31T00:00:00.123Z"
    assert td["user"] == {"id": "u-1", "name": "Ann"} and td["session"] == {"id": "s-1"}
    assert td["source_name"] == "web"
    ft = render(ev, "fluidtopics")
    assert ft["name"] == "purchase" and ft["datetime"] == TS and ft["tenantId"] == "acme"
    assert ft["appName"] == "web" and ft["sessionId"] == "s-1" and ft["parameters"] == {"total": 9.5}
    assert ft["user"]["id"] == "u-1" and ft["user"]["realm"] == ["internal"]
    es = render(ev, "eventstore")
    assert (es["streamId"], es["streamPosition"], es["globalPosition"]) == ("order-9", 3, 12)
    assert es["eventId"] == "e-1" and es["transactionId"] == "tx-1" and es["createdAt"] == "2025-12-31T00:00:00.123Z"
    assert es["schemaVersion"] == "1.0.0" and es["data"] == {"total": 9.5}


def test_minimal_event_renders_with_nulls() -> None:
    ev = normalize(b'{"type":"t","timestamp":0,"tenant":"a"}', [], now_ms=NOW)
    assert isinstance(ev, Event)
    assert render(ev, "trieve")["event_name"] == "t"
    assert render(ev, "trieve")["created_at"] == "1970-01-01T00:00:00Z"
    assert render(ev, "thisdata")["user"] is None
    assert "source_name" not in render(ev, "thisdata")
    assert render(ev, "fluidtopics")["user"] is None
    es = render(ev, "eventstore")
    assert es["streamId"] is None and es["streamPosition"] is None and es["globalPosition"] is None


def test_eventstore_positions_are_ours_once_assigned() -> None:
    raw = {"streamId": "s", "streamPosition": 5, "globalPosition": 50, "eventId": "e", "type": "t",
           "createdAt": "2025-01-01T00:00:00Z"}
    ev = normalize(orjson.dumps(raw), [("es-tenant", b"a")], now_ms=NOW)
    assert isinstance(ev, Event)
    assert (render(ev, "eventstore")["streamPosition"], render(ev, "eventstore")["globalPosition"]) == (5, 50)
    stored = ev.with_positions(1, 1)
    assert (render(stored, "eventstore")["streamPosition"], render(stored, "eventstore")["globalPosition"]) == (1, 1)
    # ours even when the stream position is missing: never a mix of ours and theirs
    gpos_only = ev.with_positions(2, None)
    out = render(gpos_only, "eventstore")
    assert (out["streamPosition"], out["globalPosition"]) == (None, 2)


def test_unknown_fields_render_back_only_in_their_own_format() -> None:
    raw = {"verb": "log-in", "published": "2025-01-01T00:00:00.000Z", "custom": {"a": 1}, "verb_extra": 2}
    ev = normalize(orjson.dumps(raw), [("es-tenant", b"a")], now_ms=NOW)
    assert isinstance(ev, Event)
    out = render(ev, "thisdata")
    assert out["custom"] == {"a": 1} and out["verb_extra"] == 2
    assert "custom" not in render(ev, "trieve")


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(full_native(), cast(Format, "json"))
    assert set(RENDERERS) == set(FORMATS)


# -- samples ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_samples_normalize_and_round_trip(fmt: Format) -> None:
    rng = random.Random(7)
    sizes = []
    for i in range(300):
        obj, headers = sample_event(rng, fmt, "acme", f"user{i % 17:04d}", NOW - i * 60_000)
        raw = orjson.dumps(obj)
        sizes.append(len(raw))
        ev = normalize(raw, encode_headers(headers), now_ms=NOW)
        assert isinstance(ev, Event), ev
        assert ev.format == fmt and ev.tenant == "acme" and ev.timestamp == NOW - i * 60_000
        assert ev.user_id == f"user{i % 17:04d}"
        assert not ev.id.startswith("d-")  # samples carry producer ids
        if fmt == "native":
            out = render_native(ev)
            assert out["timestamp_ms"] == ev.timestamp
            continue
        out = render(ev, fmt)
        for key, value in obj.items():
            assert out[key] == value, (fmt, key)
        assert all(out[k] is None for k in set(out) - set(obj))
    assert 450 <= statistics.mean(sizes) <= 750, statistics.mean(sizes)


def test_samples_are_deterministic_and_varied() -> None:
    def batch(seed: int) -> list[tuple[dict[str, Any], dict[str, str]]]:
        rng = random.Random(seed)
        return [sample_event(rng, f, "t1", "u1", NOW) for f in FORMATS for _ in range(20)]

    assert batch(1) == batch(1)
    assert batch(1) != batch(2)
    events = [normalize(orjson.dumps(o), encode_headers(h), now_ms=NOW) for o, h in batch(3)]
    types = {e.type for e in events if isinstance(e, Event)}
    assert len(events) == 100
    assert len(types) > 10


def test_sample_headers() -> None:
    rng = random.Random(1)
    for fmt in FORMATS:
        _, headers = sample_event(rng, fmt, "t1", "u1", NOW)
        assert headers["es-format"] == fmt and headers["es-tenant"] == "t1"
    stores = {sample_event(rng, "eventstore", "t1", "u1", NOW)[1]["es-store"] for _ in range(50)}
    assert stores == {"accounts", "orders"}
    assert encode_headers({"es-tenant": "é"}) == [("es-tenant", "é".encode())]
    with pytest.raises(ValueError, match="unknown format"):
        sample_event(rng, "csv", "t1", "u1", NOW)
