"""ThisData ``GET /v1/events`` query parsing (seed 002): every parameter, default and limit."""

from __future__ import annotations

import pytest

from eventstrata.api.compat import thisdata_api
from eventstrata.api.compat.parsing import CompatError
from eventstrata.timeutil import parse_time_ms

NOW = parse_time_ms("2026-11-24T00:00:00Z")
DAY = 86_400_000


def parse(*items: tuple[str, str]) -> thisdata_api.OffsetQuery:
    return thisdata_api.parse_query(list(items), now_ms=NOW)


def err(*items: tuple[str, str]) -> dict[str, object]:
    with pytest.raises(CompatError) as ei:
        parse(*items)
    assert ei.value.status == 400
    assert set(ei.value.body) == {"error"}
    return ei.value.body


def test_defaults() -> None:
    q = parse(("api_key", "k"))
    assert (q.order, q.sort, q.limit, q.offset, q.include_total) == ("desc", "time", 50, 0, True)
    f = q.flt
    assert f.since_ms == NOW - 30 * DAY and f.until_ms is None
    assert f.exclude_types == ("page-view",)
    assert f.types == () and f.user_ids == () and f.source is None


def test_api_key() -> None:
    assert thisdata_api.api_key([("api_key", "abc")]) == "abc"
    for items in ([], [("api_key", "")], [("api_key", "  ")]):
        with pytest.raises(CompatError) as ei:
            thisdata_api.api_key(items)
        assert ei.value.status == 401 and set(ei.value.body) == {"error"}


def test_after_inclusive_and_max_90_days() -> None:
    assert parse(("after", "2026-09-01")).flt.since_ms == parse_time_ms("2026-09-01T00:00:00Z")
    assert parse(("after", "2026-11-01T10:00:00+02:00")).flt.since_ms == parse_time_ms("2026-11-01T08:00:00Z")
    assert parse(("after", "2026-08-26T00:00:00Z")).flt.since_ms == NOW - 90 * DAY  # exactly 90 days
    assert "90 days" in str(err(("after", "2026-08-25T23:59:59Z"))["error"])
    err(("after", "not-a-time"))


def test_before_inclusive() -> None:
    f = parse(("before", "2026-11-20T00:00:00Z")).flt
    assert f.until_ms == parse_time_ms("2026-11-20T00:00:00Z") + 1
    err(("after", "2026-11-20"), ("before", "2026-11-19"))
    err(("before", "garbage"))


def test_user_id_and_source_name() -> None:
    f = parse(("user_id", "112233"), ("source_name", "web")).flt
    assert f.user_ids == ("112233",) and f.source == "web"


def test_verb_and_verbs_combine() -> None:
    f = parse(("verb", "log-in"), ("verbs[]", "log-in-denied"), ("verbs[]", "log-in"), ("verbs", "x")).flt
    assert f.types == ("log-in", "log-in-denied", "x")


def test_exclude_verb_default_and_overrides() -> None:
    assert parse(("exclude_verb", "log-out")).flt.exclude_types == ("log-out",)
    assert parse(("exclude_verb", "")).flt.exclude_types == ()
    assert parse(("exclude_verbs[]", "a"), ("exclude_verbs[]", "b")).flt.exclude_types == ("a", "b", "page-view")
    assert parse(("exclude_verbs[]", "a"), ("exclude_verb", "b")).flt.exclude_types == ("a", "b")
    # asking for page-view explicitly switches the default exclusion off
    f = parse(("verbs[]", "page-view"))
    assert f.flt.types == ("page-view",) and f.flt.exclude_types == ()


def test_limit_and_offset() -> None:
    assert parse(("limit", "200")).limit == 200
    assert parse(("limit", "1")).limit == 1
    assert parse(("offset", "50")).offset == 50
    assert "200" in str(err(("limit", "201"))["error"])
    err(("limit", "0"))
    err(("limit", "ten"))
    err(("offset", "-1"))
    err(("offset", "x"))
    assert parse(("offset", "9950"), ("limit", "50")).offset == 9950
    err(("offset", "9951"), ("limit", "50"))


def test_seed_examples() -> None:
    q = parse(("api_key", "REDACTED"), ("after", "2026-09-01"))
    assert q.flt.since_ms == parse_time_ms("2026-09-01")
    q = parse(("api_key", "REDACTED"), ("user_id", "112233"), ("verbs[]", "log-in"), ("verbs[]", "log-in-denied"))
    assert q.flt.user_ids == ("112233",) and q.flt.types == ("log-in", "log-in-denied")


def test_envelope() -> None:
    assert thisdata_api.events_response(2, [{"id": "a"}]) == {"total": 2, "results": [{"id": "a"}]}


def test_thisdata_alias_only_takes_api_key_requests_without_authorization() -> None:
    from eventstrata.api.compat.alias import is_thisdata_request

    assert is_thisdata_request("GET", "/v1/events", b"api_key=k&limit=5", [b"host"])
    assert not is_thisdata_request("GET", "/v1/events", b"api_key=k", [b"Authorization"])
    assert not is_thisdata_request("GET", "/v1/events", b"user_id=u", [b"host"])
    assert not is_thisdata_request("POST", "/v1/events", b"api_key=k", [])
    assert not is_thisdata_request("GET", "/v1/events/count", b"api_key=k", [])
