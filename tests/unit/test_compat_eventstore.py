"""Event-store query parsing (seed 004): every parameter, default, limit and error body."""

from __future__ import annotations

from typing import Any

import pytest

from eventstrata.api.compat import eventstore_api as es
from eventstrata.api.compat.parsing import CompatError
from eventstrata.timeutil import parse_time_ms


def parse(*items: tuple[str, str], store: str = "orders") -> es.EsQuery:
    return es.parse_query(store, list(items))


def issues(*items: tuple[str, str], store: str = "orders") -> list[dict[str, Any]]:
    with pytest.raises(CompatError) as ei:
        parse(*items, store=store)
    assert ei.value.status == 400
    assert ei.value.body["error"] == "Invalid request body"
    details = ei.value.body["details"]
    for d in details:
        assert set(d) == {"code", "message", "path"} and isinstance(d["path"], list)
    return list(details)


def test_defaults() -> None:
    r = parse()
    q = r.query
    assert (q.limit, q.offset, q.sort, q.order, q.include_total) == (100, 0, "gpos", "asc", False)
    assert r.phase == "all"
    assert q.flt.store == "orders"
    assert q.flt.types == () and q.flt.ids == () and q.flt.stream_id is None


def test_filters() -> None:
    f = parse(("streamId", "user-123"), ("type", "user.created"), ("type", "order.placed"), ("eventId", "evt_1"),
              ("transactionId", "tx_1"), ("fromPosition", "5"), ("toPosition", "9"),
              ("fromDate", "2023-01-15T12:30:45Z"), ("toDate", "2023-01-16T00:00:00Z")).query.flt
    assert f.stream_id == "user-123" and f.types == ("user.created", "order.placed") and f.ids == ("evt_1",)
    assert f.transaction_id == "tx_1" and (f.min_gpos, f.max_gpos) == (5, 9)
    assert f.since_ms == parse_time_ms("2023-01-15T12:30:45Z")
    assert f.until_ms == parse_time_ms("2023-01-16T00:00:00Z") + 1  # toDate inclusive


@pytest.mark.parametrize(("value", "key"), [("globalPosition", "gpos"), ("createdAt", "time"),
                                            ("streamPosition", "spos")])
def test_sort_by(value: str, key: str) -> None:
    assert parse(("sortBy", value)).query.sort == key


def test_sort_direction() -> None:
    assert parse(("sortDirection", "desc")).query.order == "desc"
    assert parse(("sortDirection", "asc")).query.order == "asc"
    d = issues(("sortDirection", "DESC"))
    assert d[0]["code"] == "invalid_enum_value" and d[0]["path"] == ["sortDirection"]


def test_bad_sort_by() -> None:
    d = issues(("sortBy", "global_position"))
    assert d == [{"code": "invalid_enum_value", "path": ["sortBy"],
                  "message": "Invalid enum value. Expected 'globalPosition' | 'createdAt' | 'streamPosition', "
                             "received 'global_position'"}]


def test_limit_offset() -> None:
    assert parse(("limit", "1000"), ("offset", "9000")).query.limit == 1000
    assert issues(("limit", "0"))[0]["code"] == "too_small"
    assert issues(("limit", "1001"))[0]["code"] == "too_big"
    assert issues(("limit", "abc"))[0] == {"code": "invalid_type", "message": "Expected number, received nan",
                                           "path": ["limit"]}
    assert issues(("offset", "-1"))[0]["path"] == ["offset"]
    assert issues(("offset", "9950"), ("limit", "100"))[0]["code"] == "too_big"


def test_positions() -> None:
    assert issues(("fromPosition", "x"))[0]["path"] == ["fromPosition"]
    assert issues(("toPosition", "-2"))[0]["path"] == ["toPosition"]
    assert issues(("fromPosition", "9"), ("toPosition", "5"))[0]["code"] == "custom"


def test_dates() -> None:
    assert issues(("fromDate", "soon"))[0] == {"code": "invalid_string", "message": "Invalid datetime",
                                               "path": ["fromDate"]}
    assert issues(("fromDate", "2023-02-01"), ("toDate", "2023-01-01"))[0]["code"] == "custom"


def test_include_count_and_archived_and_phase() -> None:
    assert parse(("includeCount", "true")).query.include_total is True
    assert parse(("includeCount", "false")).query.include_total is False
    assert issues(("includeCount", "yes"))[0]["path"] == ["includeCount"]
    assert parse(("includeArchived", "false")).phase == "hot"
    assert parse(("includeArchived", "true")).phase == "all"
    assert parse(("phase", "archived")).phase == "archived"
    assert parse(("phase", "hot")).phase == "hot"
    assert issues(("phase", "live"))[0]["path"] == ["phase"]
    assert issues(("phase", "archived"), ("includeArchived", "false"))[0]["code"] == "custom"


def test_all_issues_reported_at_once() -> None:
    d = issues(("limit", "x"), ("sortBy", "y"), ("fromDate", "z"), store="bad store")
    assert {tuple(i["path"]) for i in d} == {("limit",), ("sortBy",), ("fromDate",), ("eventStoreName",)}


def test_for_watermark() -> None:
    w = 1_000
    base = parse(("fromDate", "1970-01-01T00:00:00.500Z"))
    assert base.for_watermark(w) == base.query
    hot = parse(("phase", "hot")).for_watermark(w)
    assert hot is not None and hot.flt.since_ms == w
    arch = parse(("phase", "archived")).for_watermark(w)
    assert arch is not None and arch.flt.until_ms == w
    assert parse(("phase", "archived")).for_watermark(0) is None
    assert parse(("phase", "hot"), ("toDate", "1970-01-01T00:00:00.100Z")).for_watermark(w) is None
    assert parse(("phase", "archived"), ("fromDate", "1970-01-01T00:00:02Z")).for_watermark(w) is None


def test_envelope() -> None:
    q = parse(("includeCount", "true")).query
    assert es.events_response(q, [{"a": 1}], total=1, has_more=False) == {
        "events": [{"a": 1}], "pagination": {"limit": 100, "offset": 0, "total": 1, "hasMore": False}}
    q = parse().query
    assert es.events_response(q, [], total=None, has_more=True) == {
        "events": [], "pagination": {"limit": 100, "offset": 0, "hasMore": True}}


def test_unauthorized_body_is_the_seeds() -> None:
    e = es.unauthorized()
    assert e.status == 401
    assert e.body == {"error": "UNAUTHORIZED",
                      "message": "Unauthorized: Organization ID not found in authentication context"}
