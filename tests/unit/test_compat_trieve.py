"""Trieve request parsing (seeds 000/001): every field, default, limit and error."""

from __future__ import annotations

import orjson
import pytest

from eventstrata.api.compat import trieve_api
from eventstrata.api.compat.parsing import CompatError
from eventstrata.timeutil import parse_time_ms


def body(**kw: object) -> bytes:
    return orjson.dumps(kw)


def err(raw: bytes) -> CompatError:
    with pytest.raises(CompatError) as ei:
        trieve_api.parse_events_body(raw)
    assert ei.value.status == 400
    assert set(ei.value.body) == {"message"}
    return ei.value


def test_empty_body_defaults_first_page_newest_first() -> None:
    for raw in (b"{}", body(filter=None, page=None)):
        q = trieve_api.parse_events_body(raw)
        assert (q.order, q.sort, q.limit, q.offset, q.include_total) == ("desc", "time", 10, 0, False)
        assert q.flt == trieve_api.EventFilter()


def test_pages_are_one_based_ten_per_page_and_zero_is_first() -> None:
    assert trieve_api.parse_events_body(body(page=0)).offset == 0
    assert trieve_api.parse_events_body(body(page=1)).offset == 0
    assert trieve_api.parse_events_body(body(page=2)).offset == 10
    assert trieve_api.parse_events_body(body(page=trieve_api.MAX_PAGE)).offset == 9990


@pytest.mark.parametrize("page", [-1, trieve_api.MAX_PAGE + 1, "2", 1.5, True])
def test_bad_page(page: object) -> None:
    assert "page" in err(body(page=page)).body["message"]


@pytest.mark.parametrize("raw", [b"nope", b"[]", b"", b"3"])
def test_body_must_be_a_json_object(raw: bytes) -> None:
    assert "Json deserialize error" in err(raw).body["message"]


def test_date_range_bounds() -> None:
    t = parse_time_ms("2021-08-10T00:00:00Z")
    f = trieve_api.parse_events_body(body(filter={"date_range": {"gte": "2021-08-10T00:00:00Z"}})).flt
    assert (f.since_ms, f.until_ms) == (t, None)
    f = trieve_api.parse_events_body(body(filter={"date_range": {"gt": "2021-08-10T00:00:00Z"}})).flt
    assert f.since_ms == t + 1
    f = trieve_api.parse_events_body(body(filter={"date_range": {"lt": "2021-08-10T00:00:00Z"}})).flt
    assert (f.since_ms, f.until_ms) == (None, t)
    f = trieve_api.parse_events_body(body(filter={"date_range": {"lte": "2021-08-10T00:00:00Z"}})).flt
    assert f.until_ms == t + 1
    # both lower bounds: the stricter wins; same for upper bounds
    f = trieve_api.parse_events_body(
        body(filter={"date_range": {"gt": "2021-08-10T00:00:00Z", "gte": "2021-08-09T00:00:00Z",
                                    "lt": "2021-08-12T00:00:00Z", "lte": "2021-08-11T00:00:00Z"}})
    ).flt
    assert (f.since_ms, f.until_ms) == (t + 1, t + 86_400_000 + 1)


def test_date_range_without_zone_is_utc_and_seed_example_format_parses() -> None:
    f = trieve_api.parse_events_body(body(filter={"date_range": {"gte": "2021-01-01 00:00:00.000"}})).flt
    assert f.since_ms == parse_time_ms("2021-01-01T00:00:00Z")


@pytest.mark.parametrize("value", ["yesterday", 5, {"a": 1}])
def test_bad_date_range_value(value: object) -> None:
    assert "date_range.gt" in err(body(filter={"date_range": {"gt": value}})).body["message"]


def test_date_range_must_be_object() -> None:
    err(body(filter={"date_range": "2021"}))


@pytest.mark.parametrize("et", trieve_api.EVENT_TYPES)
def test_event_type_enum(et: str) -> None:
    assert trieve_api.parse_events_body(body(filter={"event_type": et})).flt.types == (et,)


@pytest.mark.parametrize("et", ["search", "View", 3])
def test_event_type_outside_enum(et: object) -> None:
    assert "unknown variant" in err(body(filter={"event_type": et})).body["message"]


def test_is_conversion() -> None:
    assert trieve_api.parse_events_body(body(filter={"is_conversion": True})).flt.is_conversion is True
    assert trieve_api.parse_events_body(body(filter={"is_conversion": False})).flt.is_conversion is False
    err(body(filter={"is_conversion": "true"}))


def test_user_id() -> None:
    assert trieve_api.parse_events_body(body(filter={"user_id": "user1"})).flt.user_ids == ("user1",)
    err(body(filter={"user_id": 7}))


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ('path = "value"', ("path",), "value"),
        ('path.attribute = "value"', ("path", "attribute"), "value"),
        ("a.b=3", ("a", "b"), 3),
        ("flag = true", ("flag",), True),
        ('x = "a = b"', ("x",), "a = b"),
    ],
)
def test_metadata_filter(text: str, path: tuple[str, ...], value: object) -> None:
    f = trieve_api.parse_events_body(body(filter={"metadata_filter": text})).flt
    assert f.metadata_eq == ((path, value),)


@pytest.mark.parametrize("text", ["path", '= "v"', 'a..b = "v"', "a = value", 'a b = "v"', ""])
def test_bad_metadata_filter_is_400(text: str) -> None:
    assert "metadata_filter" in err(body(filter={"metadata_filter": text})).body["message"]


def test_filter_must_be_object() -> None:
    err(body(filter=[1]))


def test_unknown_fields_ignored() -> None:
    assert trieve_api.parse_events_body(body(filter={"whatever": 1}, extra=2)).flt == trieve_api.EventFilter()


def test_seed_example_filter() -> None:
    example = {
        "date_range": {"gt": "2021-08-10T00:00:00Z", "lt": "2021-08-11T00:00:00Z"},
        "event_type": "view",
        "is_conversion": True,
        "metadata_filter": 'path = "value"',
        "user_id": "user1",
    }
    f = trieve_api.parse_events_body(body(filter=example)).flt
    assert f.types == ("view",) and f.user_ids == ("user1",) and f.is_conversion is True
    assert f.since_ms == parse_time_ms("2021-08-10T00:00:00Z") + 1
    assert f.until_ms == parse_time_ms("2021-08-11T00:00:00Z")
    assert f.metadata_eq == ((("path",), "value"),)


def test_auth_headers() -> None:
    assert trieve_api.parse_auth("k123", "acme") == ("k123", "acme")
    assert trieve_api.parse_auth("Bearer k123", " acme ") == ("k123", "acme")
    assert trieve_api.parse_auth("bearer k123", "acme") == ("k123", "acme")
    for bad in (None, "", "Bearer ", "Basic a b"):
        with pytest.raises(CompatError) as ei:
            trieve_api.parse_auth(bad, "acme")
        assert (ei.value.status, ei.value.body) == (401, {"message": "Unauthorized"})
    for ds in (None, "", "a/b", "x" * 65):
        with pytest.raises(CompatError) as ei:
            trieve_api.parse_auth("k", ds)
        assert ei.value.status == 400 and "TR-Dataset" in ei.value.body["message"]


def test_envelope() -> None:
    assert trieve_api.events_response([{"id": "a"}]) == {"events": [{"id": "a"}]}
    assert trieve_api.events_response([]) == {"events": []}


def test_deeply_nested_bodies_and_filter_literals_are_400s() -> None:
    deep = "[" * 500 + "]" * 500
    with pytest.raises(CompatError) as ei:
        trieve_api.parse_events_body(('{"filter": {"metadata_filter": "a.b = ' + deep + '"}}').encode())
    assert ei.value.status == 400
    with pytest.raises(CompatError) as ei:
        trieve_api.parse_events_body(('{"filter": ' + deep + '}').encode())
    assert ei.value.status == 400
