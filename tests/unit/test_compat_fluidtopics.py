"""Fluid Topics events / count request parsing (seed 003): every field, default and limit."""

from __future__ import annotations

import orjson
import pytest

from eventstrata.api.compat import fluidtopics_api as ft
from eventstrata.api.compat.parsing import CompatError
from eventstrata.timeutil import parse_time_ms

NOW = parse_time_ms("2026-11-24T12:34:56.789Z")


def parse(paging_allowed: bool = True, **kw: object) -> ft.FtQuery:
    return ft.parse_body(orjson.dumps(kw), now_ms=NOW, paging_allowed=paging_allowed)


def err(raw: bytes | None = None, **kw: object) -> str:
    with pytest.raises(CompatError) as ei:
        ft.parse_body(orjson.dumps(kw) if raw is None else raw, now_ms=NOW)
    assert ei.value.status == 400
    assert ei.value.body["status"] == 400 and ei.value.body["error"] == "Bad Request"
    return str(ei.value.body["message"])


def test_defaults() -> None:
    q = parse(startDate="2026-11-01")
    assert q.start_ms == parse_time_ms("2026-11-01T00:00:00Z")
    assert q.end_ms == NOW
    assert (q.order, q.page, q.per_page) == ("desc", 1, ft.DEFAULT_PER_PAGE)
    assert (q.flt.since_ms, q.flt.until_ms) == (q.start_ms, NOW)
    oq = q.offset_query()
    assert (oq.limit, oq.offset, oq.include_total, oq.sort) == (ft.DEFAULT_PER_PAGE, 0, True, "time")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-05-01", "2026-05-01T00:00:00Z"),
        ("2026-05-01T10:20", "2026-05-01T10:20:00Z"),
        ("2026-05-01T10:20:30", "2026-05-01T10:20:30Z"),
    ],
)
def test_three_date_formats(text: str, iso: str) -> None:
    assert parse(startDate=text).start_ms == parse_time_ms(iso)
    assert parse(startDate="2026-04-01", endDate=text).end_ms == parse_time_ms(iso)


@pytest.mark.parametrize("text", ["2026-5-1", "2026-05-01T10", "2026-05-01 10:20", "2026-05-01T10:20:30Z",
                                  "2026-13-01", 20260501, "01/05/2026"])
def test_bad_dates(text: object) -> None:
    assert "startDate" in err(startDate=text)
    assert "endDate" in err(startDate="2026-04-01", endDate=text)


def test_start_date_required() -> None:
    assert "startDate is required" in err(endDate="2026-05-01")
    assert "startDate is required" in err(startDate=None)


def test_start_date_within_past_year() -> None:
    assert parse(startDate="2025-11-24T12:34:57").start_ms > 0
    assert "past year" in err(startDate="2025-11-24T12:34:56")
    assert "past year" in err(startDate="2026-11-25")


def test_one_year_before_leap_day() -> None:
    assert ft.one_year_before(parse_time_ms("2028-02-29T05:00:00Z")) == parse_time_ms("2027-02-28T05:00:00Z")


def test_end_date_exclusive_and_after_start() -> None:
    q = parse(startDate="2026-05-01", endDate="2026-05-02")
    assert q.flt.until_ms == parse_time_ms("2026-05-02T00:00:00Z")
    assert "later than startDate" in err(startDate="2026-05-01", endDate="2026-05-01")
    assert "later than startDate" in err(startDate="2026-05-02", endDate="2026-05-01")
    # a future endDate is fine
    assert parse(startDate="2026-05-01", endDate="2027-01-01").end_ms == parse_time_ms("2027-01-01")


def test_filters() -> None:
    q = parse(startDate="2026-05-01", filters={
        "name": ["khub.search", "khub.search", "x"],
        "user": {"id": ["u1"], "realm": ["internal", "Keycloak"], "group": ["ft:administrator"], "role": ["R"]},
    })
    f = q.flt
    assert f.names == ("khub.search", "x") and f.user_ids == ("u1",)
    assert f.realms == ("internal", "Keycloak") and f.groups == ("ft:administrator",) and f.roles == ("R",)
    assert parse(startDate="2026-05-01", filters={}).flt.names == ()
    assert parse(startDate="2026-05-01", filters={"name": []}).flt.names == ()


@pytest.mark.parametrize(
    "filters",
    [[], {"name": "khub.search"}, {"name": [1]}, {"user": []}, {"user": {"id": "u"}}, {"user": {"role": [None]}}],
)
def test_bad_filters(filters: object) -> None:
    assert "filters" in err(startDate="2026-05-01", filters=filters)


def test_paging() -> None:
    q = parse(startDate="2026-05-01", paging={"page": 3, "perPage": 7})
    assert (q.page, q.per_page) == (3, 7)
    oq = q.offset_query()
    assert (oq.limit, oq.offset) == (7, 14)
    assert "paging.perPage is required" in err(startDate="2026-05-01", paging={"page": 1})
    assert "paging.page is required" in err(startDate="2026-05-01", paging={"perPage": 1})
    assert "paging.page" in err(startDate="2026-05-01", paging={"page": 0, "perPage": 1})
    assert "paging.perPage" in err(startDate="2026-05-01", paging={"page": 1, "perPage": 0})
    assert "paging.perPage" in err(startDate="2026-05-01", paging={"page": 1, "perPage": ft.MAX_PER_PAGE + 1})
    assert "paging.page" in err(startDate="2026-05-01", paging={"page": "1", "perPage": 1})
    assert "paging" in err(startDate="2026-05-01", paging=[1, 2])
    assert parse(startDate="2026-05-01", paging={"page": 100, "perPage": 100}).page == 100
    assert "10000" in err(startDate="2026-05-01", paging={"page": 101, "perPage": 100})


@pytest.mark.parametrize(("value", "order"), [("latestFirst", "desc"), ("LatestFirst", "desc"),
                                              ("OLDESTFIRST", "asc"), ("oldestFirst", "asc")])
def test_sort_order(value: str, order: str) -> None:
    assert parse(startDate="2026-05-01", sortOrder=value).order == order


@pytest.mark.parametrize("value", ["newest", 1, "latest_first"])
def test_bad_sort_order(value: object) -> None:
    assert "sortOrder" in err(startDate="2026-05-01", sortOrder=value)


def test_count_ignores_paging_and_sort() -> None:
    q = parse(False, startDate="2026-05-01", paging={"page": 0}, sortOrder="bad")
    assert (q.page, q.order) == (1, "desc")


@pytest.mark.parametrize("raw", [b"{", b"[]", b"", b"null"])
def test_body_must_be_object(raw: bytes) -> None:
    err(raw)


def test_seed_request_example() -> None:
    seed = {
        "startDate": "2026-01-01", "endDate": "2026-05-01",
        "filters": {"name": ["khub.search"], "user": {"realm": ["internal", "Keycloak"],
                                                      "group": ["ft:administrator", "TechWriter"],
                                                      "role": ["FEEDBACK_USER"]}},
        "paging": {"page": 1, "perPage": 1}, "sortOrder": "latestFirst",
    }
    q = ft.parse_body(orjson.dumps(seed), now_ms=NOW)
    assert (q.page, q.per_page, q.order) == (1, 1, "desc")
    assert q.flt.groups == ("ft:administrator", "TechWriter")


def test_envelopes() -> None:
    q = parse(startDate="2026-01-01", endDate="2026-05-01", paging={"page": 2, "perPage": 2})
    r = ft.events_response(q, 4, [{"id": "x"}])
    assert r == {"startDate": "2026-01-01T00:00:00", "endDate": "2026-05-01T00:00:00",
                 "paging": {"page": 2, "perPage": 2, "totalCount": 4, "lastPage": True}, "results": [{"id": "x"}]}
    assert ft.events_response(q, 5, [])["paging"]["lastPage"] is False
    assert ft.count_response(q, 9) == {"startDate": "2026-01-01T00:00:00", "endDate": "2026-05-01T00:00:00",
                                       "count": 9}
    assert ft.format_date(NOW) == "2026-11-24T12:34:56"


def test_unauthorized_body() -> None:
    assert ft.unauthorized().status == 401
    assert ft.unauthorized().body["status"] == 401


def test_a_deeply_nested_body_is_a_400() -> None:
    deep = "[" * 500 + "]" * 500
    with pytest.raises(CompatError) as ei:
        ft.parse_body(('{"filters": ' + deep + '}').encode(), now_ms=0)
    assert ei.value.status == 400
