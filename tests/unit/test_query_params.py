"""Parameter parsing and validation of the native query (pure)."""

from __future__ import annotations

import pytest

from eventstrata.errors import ApiError
from eventstrata.query.params import (
    MAX_LIMIT,
    bucket_starts,
    parse_query_body,
    parse_query_items,
)


def _err(items: list[tuple[str, str]]) -> ApiError:
    with pytest.raises(ApiError) as ei:
        parse_query_items(items)
    assert ei.value.status == 400
    return ei.value


def test_all_filters_parse() -> None:
    q = parse_query_items([
        ("user_id", "a:b{c}*"), ("user_id", " "), ("type", "view"), ("exclude_type", "x"), ("name", "N"),
        ("source", "web"), ("session_id", "s"), ("stream_id", "st"), ("transaction_id", "t"),
        ("is_conversion", "true"), ("realm", "eu"), ("group", "g1"), ("group", "g2"), ("role", "r"),
        ("data.plan", "pro"), ("data.n", "5"), ("data.s", '"5"'), ("data.o", '{"a":[1]}'), ("metadata.a.b", "null"),
        ("since", "2026-01-01T00:00:00+02:00"), ("until", "1767225600000"), ("order", "asc"), ("limit", "1000"),
        ("include_total", "true"),
    ])
    f = q.filter
    assert f.user_ids == ("a:b{c}*", " ") and f.types == ("view",) and f.exclude_types == ("x",)
    assert f.names == ("N",) and f.source == "web" and f.is_conversion is True
    assert f.groups == ("g1", "g2") and f.roles == ("r",) and f.realms == ("eu",)
    assert dict(f.data_eq) == {("plan",): "pro", ("n",): 5, ("s",): "5", ("o",): {"a": [1]}}
    assert f.metadata_eq == ((("a", "b"), None),)
    assert f.since_ms == 1767218400000 and f.until_ms == 1767225600000
    assert (q.order, q.limit, q.include_total) == ("asc", 1000, True)


def test_defaults() -> None:
    q = parse_query_items([])
    assert (q.order, q.sort, q.limit, q.cursor, q.include_total, q.offset) == ("desc", "time", 50, None, False, None)


@pytest.mark.parametrize(("items", "path"), [
    ([("limit", "0")], "limit"),
    ([("limit", str(MAX_LIMIT + 1))], "limit"),
    ([("limit", "abc")], "limit"),
    ([("limit", "-1")], "limit"),
    ([("order", "sideways")], "order"),
    ([("sort", "random")], "sort"),
    ([("since", "yesterday")], "since"),
    ([("until", "2026-13-01")], "until"),
    ([("since", "2026-01-02"), ("until", "2026-01-01")], "until"),
    ([("since", "2020-01-01"), ("until", "2026-01-01")], "until"),
    ([("is_conversion", "maybe")], "is_conversion"),
    ([("include_total", "2")], "include_total"),
    ([("source", "")], "source"),
    ([("source", "a"), ("source", "b")], "source"),
    ([("user_id", "x" * 1025)], "user_id"),
    ([("user_id", "a\x00b")], "user_id"),
    ([("bogus", "1")], "bogus"),
    ([("data.", "1")], "data."),
    ([("data.a..b", "1")], "data.a..b"),
    ([("data." + ".".join("p" * 11), "1")], "data." + ".".join("p" * 11)),
    ([("data.²", "1")], "data.²"),
    ([("data.q", "a\x00")], "data.q"),
    ([("offset", "10001")], "offset"),
    ([("offset", "5"), ("cursor", "abc")], "offset"),
    ([("cursor", "x" * 3000)], "cursor"),
    ([("bucket", "1h")], "bucket"),
])
def test_errors_name_the_parameter(items: list[tuple[str, str]], path: str) -> None:
    e = _err(items)
    assert e.code == "invalid_parameter"
    assert path in [d.path for d in e.details]
    native = e.to_native()["error"]
    assert isinstance(native, dict) and native["details"]


def test_too_many_values_and_paths() -> None:
    e = _err([("type", f"t{i}") for i in range(101)])
    assert e.details[0].path == "type"
    e = _err([(f"data.k{i}", "1") for i in range(21)])
    assert e.details[0].path == "data"


def test_several_errors_reported_together() -> None:
    e = _err([("limit", "0"), ("order", "x"), ("since", "nope")])
    assert {d.path for d in e.details} == {"limit", "order", "since"}


def test_bucket_only_where_allowed() -> None:
    assert parse_query_items([("bucket", "1h")], allow_bucket=True).bucket == "1h"
    with pytest.raises(ApiError):
        parse_query_items([("bucket", "2h")], allow_bucket=True)


def test_body_parsing() -> None:
    q = parse_query_body({"user_id": ["u1", "u2"], "type": "view", "data": {"a.b": "5", "n": 5},
                          "metadata": {"x": None}, "limit": 10, "order": "asc", "since": 0,
                          "include_total": True, "sort": "gpos"})
    assert q.filter.user_ids == ("u1", "u2") and q.filter.types == ("view",)
    assert dict(q.filter.data_eq) == {("a", "b"): "5", ("n",): 5}
    assert q.filter.metadata_eq == ((("x",), None),)
    assert (q.limit, q.order, q.sort, q.include_total, q.filter.since_ms) == (10, "asc", "gpos", True, 0)


@pytest.mark.parametrize("body", [
    [], "x", None, {"limit": "10"}, {"limit": True}, {"limit": 0}, {"user_id": [1]}, {"user_id": {"a": 1}},
    {"data": [1]}, {"unknown": 1}, {"since": True}, {"since": [1]}, {"include_total": "perhaps"},
    {"cursor": 5}, {"offset": -1}, {"bucket": "1h"},
])
def test_body_errors(body: object) -> None:
    with pytest.raises(ApiError) as ei:
        parse_query_body(body)
    assert ei.value.status == 400


def test_bucket_starts() -> None:
    assert bucket_starts(90, 250, 100) == [0, 100, 200]
    with pytest.raises(ApiError):
        bucket_starts(0, 10_001 * 60_000, 60_000)


def test_deeply_nested_path_filter_values_are_a_400_not_a_crash() -> None:
    """A value nested ~500 deep used to reach recursive code (RecursionError → 500)."""
    from eventstrata.query.params import MAX_VALUE_DEPTH

    deep = "[" * 500 + "]" * 500
    e = _err([("data.i", deep)])
    assert [d.path for d in e.details] == ["data.i"] and "deeper" in e.details[0].message
    ok = "[" * MAX_VALUE_DEPTH + "1" + "]" * MAX_VALUE_DEPTH
    assert parse_query_items([("data.i", ok)]).filter.data_eq
    with pytest.raises(ApiError) as ei:
        parse_query_body({"metadata": {"a.b": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}})
    assert ei.value.details[0].path == "metadata.a.b"


@pytest.mark.parametrize("bucket", [{}, [], 1, True, ["1h"]])
def test_a_bucket_of_the_wrong_type_is_a_400_not_a_crash(bucket: object) -> None:
    """``{"bucket": {}}`` used to raise TypeError (unhashable) → 500."""
    with pytest.raises(ApiError) as ei:
        parse_query_body({"bucket": bucket})
    assert ei.value.status == 400 and "bucket" in [d.path for d in ei.value.details]


def test_request_json_is_bounded_in_depth() -> None:
    import orjson

    from eventstrata.formats.common import MAX_DEPTH, JsonTooDeep, loads_bounded

    assert loads_bounded(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert loads_bounded("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(JsonTooDeep):
        loads_bounded("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(orjson.JSONDecodeError):
        loads_bounded(b"{")
