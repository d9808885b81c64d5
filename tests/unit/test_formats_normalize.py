"""normalize(): the order of checks, every InvalidEvent code with a message naming the field,
headers, format detection, tenants, stores, ids and timestamps."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from eventstrata import model
from eventstrata.formats import common, normalize
from eventstrata.formats.detect import candidates, detect_format
from eventstrata.model import INVALID_CODES, MAX_ID_LEN, Event, InvalidEvent

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000

NATIVE: dict[str, Any] = {"tenant": "acme", "type": "purchase", "timestamp": "2025-12-31T23:00:00Z"}


def norm(obj: Any, headers: Any = (), **kw: Any) -> Event | InvalidEvent:
    value = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    return normalize(value, headers, now_ms=NOW, **kw)


def ok(obj: Any, headers: Any = (), **kw: Any) -> Event:
    res = norm(obj, headers, **kw)
    assert isinstance(res, Event), res
    return res


def bad(obj: Any, headers: Any = (), **kw: Any) -> InvalidEvent:
    res = norm(obj, headers, **kw)
    assert isinstance(res, InvalidEvent), res
    assert res.code in INVALID_CODES
    assert res.message
    return res


# -- the envelope -----------------------------------------------------------------------------------


def test_minimal_native_event() -> None:
    ev = ok(NATIVE)
    assert (ev.tenant, ev.type, ev.timestamp, ev.received_at, ev.format) == (
        "acme", "purchase", NOW - 3_600_000, NOW, "native"
    )
    assert ev.store == "default" and ev.vendor == {} and ev.user == {} and ev.data == {}


def test_oversize_is_checked_first() -> None:
    raw = orjson.dumps({**NATIVE, "data": {"blob": "x" * 300_000}})
    assert bad(raw).code == "oversize"
    assert bad(b"{" * 300_000).code == "oversize"  # before parsing
    small = orjson.dumps(NATIVE)
    assert bad(small, max_bytes=len(small) - 1).code == "oversize"
    assert isinstance(norm(small, max_bytes=len(small)), Event)


@pytest.mark.parametrize("raw", [b"", b"{", b"nope", b'{"a":1', b"\xff\xfe", b'{"a": NaN}', b'{"a": 1e400}'])
def test_malformed_json(raw: bytes) -> None:
    assert bad(raw).code == "malformed_json"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"true", b"[{}]"])
def test_not_an_object(raw: bytes) -> None:
    assert bad(raw).code == "not_an_object"


def test_nesting_limit() -> None:
    deep: Any = "leaf"
    for _ in range(common.MAX_DEPTH):  # 64 levels under the top-level object: 65 deep
        deep = [deep]
    res = bad({**NATIVE, "data": {"x": deep}})
    assert res.code == "oversize" and "nested" in res.message
    shallow: Any = "leaf"
    for _ in range(common.MAX_DEPTH - 3):
        shallow = {"k": shallow}
    ev = ok({**NATIVE, "data": {"x": shallow}})
    assert Event.from_json(ev.to_json()) == ev
    # many brackets but shallow: fine
    ok({**NATIVE, "items": [], "data": {"xs": [[1]] * 200}})


# -- format ------------------------------------------------------------------------------------------


def test_format_header_wins_over_shape() -> None:
    ev = ok({"type": "t", "timestamp": 1, "verb": "x"}, [("es-format", b"native"), ("es-tenant", b"a")])
    assert ev.format == "native" and ev.vendor == {"extra": {"verb": "x"}}


@pytest.mark.parametrize("value", [b"NATIVE", b" native ", b"Native"])
def test_format_header_is_lenient_about_case_and_blanks(value: bytes) -> None:
    assert ok(NATIVE, [("es-format", value)]).format == "native"


@pytest.mark.parametrize("value", [b"", b"json", b"trieve2", b"\xff"])
def test_unknown_format_header(value: bytes) -> None:
    res = bad(NATIVE, [("es-format", value)])
    assert res.code == "unknown_format" and "es-format" in res.message


def test_undetectable_and_ambiguous_shapes() -> None:
    assert bad({"hello": "world"}).code == "unknown_format"
    res = bad({**NATIVE, "verb": "log-in"})
    assert res.code == "unknown_format" and "thisdata" in res.message and "native" in res.message


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"event_type": "view"}, "trieve"),
        ({"dataset_id": "d"}, "trieve"),
        ({"verb": "log-in"}, "thisdata"),
        ({"published": "x"}, "thisdata"),
        ({"datetime": 1}, "fluidtopics"),
        ({"tenantId": "t", "name": "n"}, "fluidtopics"),
        ({"streamId": "s"}, "eventstore"),
        ({"eventId": "e", "type": "t"}, "eventstore"),
        ({"type": "t", "timestamp": 1}, "native"),
        ({"type": "t", "tenant": "a"}, "native"),
        ({"type": "t"}, None),
        ({"event_type": "v", "streamId": "s"}, None),
    ],
)
def test_detection_rules(obj: dict[str, Any], expected: str | None) -> None:
    assert detect_format(obj) == expected
    assert (len(candidates(obj)) == 1) == (expected is not None)


# -- tenant -------------------------------------------------------------------------------------------


def test_tenant_header_wins_over_body() -> None:
    assert ok(NATIVE, [("es-tenant", b"other")]).tenant == "other"


@pytest.mark.parametrize(
    "tenant", ["", "a b", "x" * 65, "{acme}", "ac:me", "acme\n", "é", "a/b", "*"]
)
def test_bad_tenants(tenant: str) -> None:
    assert bad({**NATIVE, "tenant": tenant}).code == "bad_tenant"
    assert bad(NATIVE, [("es-tenant", tenant.encode())]).code == "bad_tenant"


@pytest.mark.parametrize("tenant", [1, None, ["acme"], {"t": 1}, True])
def test_body_tenant_must_be_a_string(tenant: Any) -> None:
    res = bad({**NATIVE, "tenant": tenant})
    assert res.code == "bad_tenant"


def test_tenant_missing_for_shapes_without_tenant_field() -> None:
    obj = {"verb": "log-in", "published": "2025-01-01T00:00:00Z"}
    res = bad(obj)
    assert res.code == "bad_tenant" and "es-tenant" in res.message
    assert ok(obj, [("es-tenant", b"t-1.x_y")]).tenant == "t-1.x_y"


def test_valid_tenant_edge_cases() -> None:
    assert ok({**NATIVE, "tenant": "A" * 64}).tenant == "A" * 64
    assert ok({**NATIVE, "tenant": "a._-9"}).tenant == "a._-9"


# -- headers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"es-tenant": b"h"},
        [("es-tenant", b"h")],
        (("es-tenant", b"h"),),
        [("ES-Tenant", b"h")],
        [("es-tenant", "h")],  # a str value is accepted too
        [("es-tenant", b"first"), ("es-tenant", b"h")],  # last wins
        [("x-other", b"1"), ("es-tenant", b"h"), ("traceparent", b"00-aa")],
    ],
)
def test_header_forms(headers: Any) -> None:
    assert ok(NATIVE, headers).tenant == "h"


@pytest.mark.parametrize(
    "headers",
    [
        [("es-tenant", None)],  # null header value = absent
        [("es-tenant",)],  # not a pair: skipped
        [(b"es-tenant", b"h")],  # non-str name: skipped
        [("es-tenant", 5)],
        [None],
        [("es-tenant", b"h", b"extra")],
    ],
)
def test_unreadable_headers_never_raise(headers: Sequence[Any]) -> None:
    res = norm(NATIVE, headers)
    assert isinstance(res, Event | InvalidEvent)
    if isinstance(res, Event):
        assert res.tenant in ("acme", "5")


def test_no_headers_at_all() -> None:
    assert ok(NATIVE, None).tenant == "acme"
    assert ok(NATIVE, []).tenant == "acme"
    assert ok(NATIVE, {}).tenant == "acme"


def test_undecodable_header_value_is_invalid_not_an_exception() -> None:
    assert bad(NATIVE, [("es-tenant", b"\xff\xfe")]).code == "bad_tenant"
    assert bad(NATIVE, [("es-format", b"nat\xffive")]).code == "unknown_format"


# -- store ---------------------------------------------------------------------------------------------


def test_store_resolution() -> None:
    assert ok(NATIVE).store == "default"
    assert ok({**NATIVE, "store": "s1"}).store == "s1"
    assert ok({**NATIVE, "store": "s1"}, [("es-store", b"s2")]).store == "s2"
    assert ok(NATIVE, [("es-store", b"default")]).store == "default"
    assert bad({**NATIVE, "store": "a b"}).code == "bad_store"
    assert bad({**NATIVE, "store": 3}).code == "bad_store"
    assert bad(NATIVE, [("es-store", b"")]).code == "bad_store"
    assert bad(NATIVE, [("es-store", b"x" * 129)]).code == "bad_store"


# -- ids -------------------------------------------------------------------------------------------


def test_producer_ids() -> None:
    assert ok({**NATIVE, "id": "e1"}).id == "e1"
    assert ok({**NATIVE, "id": 42}).id == "42"
    assert ok({**NATIVE, "id": "x" * MAX_ID_LEN}).id == "x" * MAX_ID_LEN
    assert ok({**NATIVE, "id": "a:b {c} *\x00"}).id == "a:b {c} *\x00"


@pytest.mark.parametrize("value", ["", "x" * (MAX_ID_LEN + 1), 1.5, True, [], {}])
def test_bad_ids(value: Any) -> None:
    res = bad({**NATIVE, "id": value})
    assert res.code == "bad_id" and "'id'" in res.message


@pytest.mark.parametrize(
    ("fmt_obj", "id_key", "headers"),
    [
        ({"event_type": "view", "created_at": "2025-01-01T00:00:00Z", "dataset_id": "t"}, "id", []),
        ({"verb": "log-in", "published": "2025-01-01T00:00:00Z"}, "id", [("es-tenant", b"t")]),
        ({"name": "khub.search", "datetime": 1735689600000, "tenantId": "t"}, "id", []),
        ({"type": "x", "streamId": "s", "createdAt": "2025-01-01T00:00:00Z"}, "eventId", [("es-tenant", b"t")]),
    ],
)
def test_vendor_ids_and_derived_ids(fmt_obj: dict[str, Any], id_key: str, headers: list[Any]) -> None:
    assert ok({**fmt_obj, id_key: "given"}, headers).id == "given"
    assert bad({**fmt_obj, id_key: 1.5}, headers).code == "bad_id"
    derived = ok(fmt_obj, headers).id
    assert derived.startswith("d-") and len(derived) == 34
    # same content, other key order / whitespace / receive time → same id
    reordered = dict(reversed(list(fmt_obj.items())))
    again = normalize(orjson.dumps(reordered, option=orjson.OPT_INDENT_2), headers, now_ms=NOW + 5)
    assert isinstance(again, Event) and again.id == derived
    # other content → other id
    assert ok({**fmt_obj, "extra_field": 1}, headers).id != derived


def test_derived_id_depends_on_tenant_format_and_store() -> None:
    base = ok(NATIVE).id
    assert ok(NATIVE, [("es-tenant", b"other")]).id != base
    assert ok(NATIVE, [("es-store", b"s")]).id != base
    assert common.derive_id(NATIVE, "acme", "native", "default") == base
    assert common.derive_id(NATIVE, "acme", "trieve", "default") != base


# -- required fields and types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "headers", "field"),
    [
        ({"tenant": "a", "timestamp": 1}, [("es-format", b"native")], "type"),
        ({"tenant": "a", "type": "t"}, [("es-format", b"native")], "timestamp"),
        ({"dataset_id": "a", "created_at": "2025-01-01"}, [], "event_type"),
        ({"dataset_id": "a", "event_type": "v"}, [], "created_at"),
        ({"published": "2025-01-01"}, [("es-tenant", b"a")], "verb"),
        ({"verb": "x"}, [("es-tenant", b"a")], "published"),
        ({"tenantId": "a", "datetime": 1}, [], "name"),
        ({"tenantId": "a", "name": "n"}, [], "datetime"),
        ({"streamId": "s", "createdAt": "2025-01-01"}, [("es-tenant", b"a")], "type"),
        ({"eventId": "e", "type": "t", "createdAt": "2025-01-01"}, [("es-tenant", b"a")], "streamId"),
        ({"streamId": "s", "type": "t"}, [("es-tenant", b"a")], "createdAt"),
    ],
)
def test_missing_required_fields(obj: dict[str, Any], headers: list[Any], field: str) -> None:
    res = bad(obj, headers)
    assert res.code == "missing_field"
    assert repr(field) in res.message


TRIEVE = {"dataset_id": "acme", "event_type": "view", "created_at": "2025-01-01T00:00:00Z"}
THISDATA = {"verb": "log-in", "published": "2025-01-01T00:00:00.000Z"}
FT = {"tenantId": "acme", "name": "khub.search", "datetime": 1735689600000}
ES = {"streamId": "s-1", "type": "x", "createdAt": "2025-01-01T00:00:00Z"}
TH = [("es-tenant", b"acme")]


@pytest.mark.parametrize(
    ("obj", "headers", "field"),
    [
        ({**NATIVE, "type": 5}, [], "type"),
        ({**NATIVE, "type": ""}, [], "type"),
        ({**NATIVE, "name": 5}, [], "name"),
        ({**NATIVE, "source": []}, [], "source"),
        ({**NATIVE, "session_id": {}}, [], "session_id"),
        ({**NATIVE, "stream_id": 1}, [], "stream_id"),
        ({**NATIVE, "transaction_id": True}, [], "transaction_id"),
        ({**NATIVE, "request_id": 1.0}, [], "request_id"),
        ({**NATIVE, "is_conversion": "yes"}, [], "is_conversion"),
        ({**NATIVE, "is_conversion": 1}, [], "is_conversion"),
        ({**NATIVE, "items": "sku"}, [], "items"),
        ({**NATIVE, "items": ["a", 1]}, [], "items"),
        ({**NATIVE, "user": []}, [], "user"),
        ({**NATIVE, "user": {"groups": 5}}, [], "user.groups"),
        ({**NATIVE, "data": "x"}, [], "data"),
        ({**NATIVE, "user_id": 1.5}, [], "user_id"),
        ({**NATIVE, "user_id": ""}, [], "user_id"),
        ({**TRIEVE, "items": [None]}, [], "items"),
        ({**TRIEVE, "is_conversion": "true"}, [], "is_conversion"),
        ({**TRIEVE, "event_name": 3}, [], "event_name"),
        ({**TRIEVE, "request_type": 3}, [], "request_type"),
        ({**TRIEVE, "request_id": 3}, [], "request_id"),
        ({**TRIEVE, "user_id": {}}, [], "user_id"),
        ({**THISDATA, "user": "eve"}, TH, "user"),
        ({**THISDATA, "user": {"id": []}}, TH, "user.id"),
        ({**THISDATA, "session": 5}, TH, "session"),
        ({**THISDATA, "session": {"id": 1.5}}, TH, "session.id"),
        ({**THISDATA, "source_name": 5}, TH, "source_name"),
        ({**FT, "user": "u"}, [], "user"),
        ({**FT, "user": {"realm": 5}}, [], "user.realm"),
        ({**FT, "user": {"roles": {}}}, [], "user.roles"),
        ({**FT, "user": {"id": False}}, [], "user.id"),
        ({**FT, "parameters": []}, [], "parameters"),
        ({**FT, "sessionId": 1}, [], "sessionId"),
        ({**FT, "appName": 1}, [], "appName"),
        ({**ES, "data": []}, TH, "data"),
        ({**ES, "metadata": "m"}, TH, "metadata"),
        ({**ES, "transactionId": 5}, TH, "transactionId"),
        ({**ES, "streamId": 5}, TH, "streamId"),
    ],
)
def test_wrong_types_name_the_field(obj: dict[str, Any], headers: list[Any], field: str) -> None:
    res = bad(obj, headers)
    assert res.code == "wrong_type", res
    assert f"'{field}'" in res.message, res.message


def test_integer_user_ids_become_strings() -> None:
    assert ok({**NATIVE, "user_id": 7}).user_id == "7"
    ev = ok({**THISDATA, "user": {"id": 112233, "name": "Eve"}}, TH)
    assert ev.user_id == "112233" and ev.user["id"] == 112233  # the user object is kept as sent


def test_vendor_pass_through_fields_are_not_validated() -> None:
    ev = ok({**THISDATA, "device": "weird", "overall_score": "high"}, TH)
    assert ev.vendor["device"] == "weird" and ev.vendor["overall_score"] == "high"
    ev2 = ok({**FT, "offline": "no", "appVersion": 4}, [])
    assert ev2.vendor["offline"] == "no" and ev2.vendor["appVersion"] == 4


def test_thisdata_session_forms() -> None:
    assert ok({**THISDATA, "session": {"id": "s1", "td_cookie_expected": True}}, TH).session_id == "s1"
    assert ok({**THISDATA, "session": "s2"}, TH).session_id == "s2"
    assert ok({**THISDATA, "session": {"id": 9}}, TH).session_id == "9"
    assert ok({**THISDATA, "session": {}}, TH).session_id is None


def test_eventstore_user_id_sources() -> None:
    assert ok({**ES, "metadata": {"userId": "m"}, "data": {"userId": "d"}}, TH).user_id == "m"
    assert ok({**ES, "metadata": {"userId": 5}, "data": {"userId": "d"}}, TH).user_id == "5"
    assert ok({**ES, "metadata": {"userId": []}, "data": {"userId": "d"}}, TH).user_id == "d"
    assert ok({**ES, "data": {"userId": {"x": 1}}}, TH).user_id is None


def test_unknown_fields_are_kept_in_vendor_extra_in_order() -> None:
    ev = ok({**TRIEVE, "zeta": 1, "alpha": [2]})
    assert list(ev.vendor["extra"]) == ["zeta", "alpha"]
    ev2 = ok({**NATIVE, "custom": {"a": 1}, "received_at": 5, "global_position": 9, "format": "x"})
    assert ev2.vendor == {"extra": {"custom": {"a": 1}}}
    assert ev2.received_at == NOW and ev2.global_position is None and ev2.format == "native"


# -- timestamps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-01T00:00:00Z", 1735689600000),
        ("2025-01-01T00:00:00.123Z", 1735689600123),
        ("2025-01-01T00:00:00.123456Z", 1735689600123),
        ("2025-01-01T01:00:00+01:00", 1735689600000),
        ("2025-01-01 00:00:00", 1735689600000),
        ("2025-01-01", 1735689600000),
        ("2025-01-01T00:00:00z", 1735689600000),
        (1735689600000, 1735689600000),
        (1735689600000.9, 1735689600000),
        ("1735689600000", 1735689600000),
    ],
)
def test_timestamp_forms(value: Any, expected: int) -> None:
    assert ok({**NATIVE, "timestamp": value}).timestamp == expected


@pytest.mark.parametrize("value", ["yesterday", "", "2025-13-01", -1, True, [], {}, 10**17, "2025-01-01T25:00"])
def test_bad_timestamps(value: Any) -> None:
    res = bad({**NATIVE, "timestamp": value})
    assert res.code == "bad_timestamp" and "'timestamp'" in res.message


def test_trieve_updated_at_is_checked_and_kept_only_when_different() -> None:
    assert bad({**TRIEVE, "updated_at": "soon"}).code == "bad_timestamp"
    ev = ok({**TRIEVE, "updated_at": "2025-01-02T00:00:00Z"})
    assert ev.vendor["updated_at"] == 1735776000000
    assert "updated_at" not in ok({**TRIEVE, "updated_at": "2025-01-01T00:00:00.000Z"}).vendor


def test_future_timestamps() -> None:
    assert ok({**NATIVE, "timestamp": NOW + DAY}).timestamp == NOW + DAY
    res = bad({**NATIVE, "timestamp": NOW + DAY + 1})
    assert res.code == "future_timestamp"
    assert ok({**NATIVE, "timestamp": NOW + 2 * DAY}, max_future_skew_ms=3 * DAY).timestamp == NOW + 2 * DAY
    # the past is fine (late events are the archiver's business)
    assert ok({**NATIVE, "timestamp": 0}).timestamp == 0


def test_first_failure_wins() -> None:
    # bad tenant and bad type at once: tenant is checked before the adapter runs
    assert bad({**NATIVE, "tenant": "a b", "type": 5}).code == "bad_tenant"
    # unknown format before tenant
    assert bad({"x": 1}, [("es-tenant", b"a b")]).code == "unknown_format"
    # missing type before bad timestamp
    assert bad({"tenant": "a", "timestamp": "x"}, [("es-format", b"native")]).code == "missing_field"


# -- the fast paths agree with the reference implementations --------------------------------------------


def test_make_event_builds_an_ordinary_frozen_event() -> None:
    assert model._SHELL_OK  # on CPython the fast path is active …
    assert tuple(f.name for f in dataclasses.fields(Event)) == model.EVENT_FIELDS
    args: tuple[Any, ...] = (
        "i", "t", "x", 1, 2, "trieve", None, "u", None, "s", None, None, None, None, "r", False,
        "default", ("a",), {}, {"d": 1}, None, {"v": 1},
    )
    fast = model.make_event(*args)
    assert type(fast) is Event
    assert fast == Event(*args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fast, "id", "other")
    assert Event.from_json(fast.to_json()) == fast
