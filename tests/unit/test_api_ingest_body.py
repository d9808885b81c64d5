"""``POST /v1/ingest``'s body handling (``api.ingest_body``) and key scopes. Pure."""

from __future__ import annotations

import gzip
import random

import orjson
import pytest

from eventstrata.api.ingest_body import Limits, check_events, decode_body, split_events
from eventstrata.auth import DEFAULT_SCOPES, MissingScope, parse_scopes
from eventstrata.errors import ApiError
from eventstrata.formats.normalize import normalize
from eventstrata.formats.samples import sample_event
from eventstrata.model import FORMATS, Event

NOW = 1_800_000_000_000
LIMITS = Limits(max_bytes=10_000, max_events=10, max_event_bytes=4096, max_future_skew_ms=86_400_000)


def _samples(tenant: str = "acme") -> list[dict[str, object]]:
    rng = random.Random(3)
    return [sample_event(rng, fmt, tenant, f"u{i}", NOW - 1000 * i)[0] for i, fmt in enumerate(FORMATS)]


def test_an_array_of_envelopes_of_every_format_is_accepted_as_the_worker_will_store_it() -> None:
    objs = _samples()
    body = orjson.dumps([{"format": fmt, "event": o} for fmt, o in zip(FORMATS, objs, strict=True)])
    accepted, rejected = check_events(split_events(body, 10), tenant="acme", fmt=None, now_ms=NOW, limits=LIMITS)
    assert rejected == [] and [a.index for a in accepted] == [0, 1, 2, 3, 4]
    for a, fmt, obj in zip(accepted, FORMATS, objs, strict=True):
        assert a.message.value == orjson.dumps(obj)
        assert dict(a.message.headers) == {"es-tenant": b"acme", "es-format": fmt.encode()}
        worker = normalize(a.message.value, a.message.headers, now_ms=NOW)  # what the worker will do
        assert isinstance(worker, Event) and worker.id == a.id and worker.tenant == "acme"
        assert a.message.key == f"acme:{worker.user_id}".encode()
    again, _ = check_events(split_events(body, 10), tenant="acme", fmt=None, now_ms=NOW + 5, limits=LIMITS)
    assert [a.id for a in again] == [a.id for a in accepted]  # a retried request names the same ids


def test_ndjson_lines_keep_their_bytes_and_bad_lines_are_rejected_with_dead_letter_codes() -> None:
    native = orjson.dumps({"id": "n1", "type": "signup", "user_id": "u1", "timestamp": NOW - 10})
    lines = [native, b"", b"{not json", orjson.dumps({"id": "n2", "user_id": "u1", "timestamp": NOW}),
             b"[1]", orjson.dumps({"id": "n3", "type": "t", "timestamp": NOW + 2 * 86_400_000})]
    accepted, rejected = check_events(split_events(b"\n".join(lines) + b"\n", 10), tenant="acme", fmt="native",
                                      now_ms=NOW, limits=LIMITS)
    assert [(a.index, a.id, a.message.value) for a in accepted] == [(0, "n1", native)]
    assert [(r.index, r.code) for r in rejected] == [(1, "malformed_json"), (2, "missing_field"),
                                                     (3, "not_an_object"), (4, "future_timestamp")]
    assert all(r.message for r in rejected)


def test_a_body_naming_another_tenant_fails_the_whole_request() -> None:
    rng = random.Random(1)
    for fmt, field in (("native", "tenant"), ("trieve", "dataset_id"), ("fluidtopics", "tenantId")):
        obj = sample_event(rng, fmt, "globex", "u1", NOW - 5)[0]
        assert obj[field] == "globex"
        body = orjson.dumps([{"format": fmt, "event": obj}])
        with pytest.raises(ApiError) as err:
            check_events(split_events(body, 10), tenant="acme", fmt=None, now_ms=NOW, limits=LIMITS)
        assert (err.value.status, err.value.code) == (400, "tenant_mismatch")
        same = sample_event(random.Random(1), fmt, "acme", "u1", NOW - 5)[0]
        ok, _ = check_events(split_events(orjson.dumps([same]), 10), tenant="acme", fmt=fmt, now_ms=NOW,
                             limits=LIMITS)
        assert len(ok) == 1


def test_limits_encodings_and_malformed_bodies() -> None:
    one = orjson.dumps({"id": "a", "type": "t", "timestamp": NOW})
    assert decode_body(gzip.compress(one), "gzip", 10_000) == one
    assert decode_body(one, None, 10_000) == one
    cases = [
        (lambda: decode_body(b"x" * 10_001, None, 10_000), 413, "payload_too_large"),
        (lambda: decode_body(gzip.compress(b" " * 20_000), "gzip", 10_000), 413, "payload_too_large"),
        (lambda: decode_body(b"\x1f\x8b garbage", "gzip", 10_000), 400, "invalid_body"),
        (lambda: decode_body(gzip.compress(one)[:-6], "gzip", 10_000), 400, "invalid_body"),
        (lambda: decode_body(one, "br", 10_000), 415, "unsupported_encoding"),
        (lambda: split_events(b"\n".join([one] * 11), 10), 413, "payload_too_large"),
        (lambda: split_events(orjson.dumps([{}] * 11), 10), 413, "payload_too_large"),
        (lambda: split_events(b"[1, 2", 10), 400, "invalid_body"),
        (lambda: split_events(b" \n \n", 10), 400, "invalid_body"),
        (lambda: check_events([(one, None)], tenant="acme", fmt="xml", now_ms=NOW, limits=LIMITS), 400,
         "invalid_parameter"),
    ]
    for call, status, code in cases:
        with pytest.raises(ApiError) as err:
            call()
        assert (err.value.status, err.value.code) == (status, code)


def test_scopes_parse_and_a_missing_scope_says_what_the_key_may_do() -> None:
    assert parse_scopes("ingest, read") == ("read", "ingest")
    assert parse_scopes("ingest") == ("ingest",)
    assert parse_scopes("admin,read") == ("read", "admin")
    assert "admin" not in DEFAULT_SCOPES  # administration is never given by default
    for bad in ("", "write", "read,root"):
        with pytest.raises(ValueError):
            parse_scopes(bad)
    exc = MissingScope("acme", "read", frozenset({"ingest"}))
    assert str(exc) == "this key may not read (its scopes: ingest)"


def test_rate_windows_and_budgets() -> None:
    from eventstrata.config import ConfigError, Settings
    from eventstrata.ratelimit import Budgets, retry_after_s, window_of

    assert window_of(1_000) == window_of(1_999) == 1 and window_of(2_000) == 2
    assert retry_after_s(1_000) == 1 and retry_after_s(1_999) == 1
    s = Settings.from_env(env={"EVENTSTRATA_RATE_READS": "7", "EVENTSTRATA_RATE_INGEST_EVENTS": "100"})
    assert s.rate_budgets() == Budgets(reads=7, ingest=0, ingest_events=100)
    assert Budgets().of("reads") == 0
    with pytest.raises(ConfigError):
        Settings.from_env(env={"EVENTSTRATA_RATE_READS": "-1"})


def test_a_body_declared_json_must_look_like_json() -> None:
    for body in (b"\x00", b"hello", b"  1\n2", b'{"a": 1}\n{"b": 2}', b'"text"'):
        with pytest.raises(ApiError) as info:
            split_events(body, 10, json_declared=True)
        assert (info.value.status, info.value.code) == (400, "invalid_body")
    assert split_events(b' {"a": 1}', 10, json_declared=True) == [(b'{"a":1}', {"a": 1})]  # one event
    assert len(split_events(b'{"a": 1}\n{"b": 2}', 10)) == 2  # NDJSON: objects, one per line
    assert split_events(b"hello", 10) == [(b"hello", None)]  # NDJSON: a bad line is one rejected event
