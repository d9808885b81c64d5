"""The client's pure parts: query strings, retry delays, ingest answers, error envelopes."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from eventstrata.client import (
    ApiError,
    ArchiveStatus,
    KeyRecord,
    NotFound,
    Rejected,
    _archive_status,
    _dead_letters,
    _key_record,
    _merge_ingest,
    _raise_for,
    query_params,
    retry_delay,
)


def test_filters_become_the_query_string_of_get_events() -> None:
    when = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert query_params({"user_id": ["u1", "u2"], "type": "buy", "is_conversion": True, "limit": 50,
                         "since": when, "until": 1_800_000_000_000, "data": {"plan": "pro", "n": 3},
                         "metadata": {"a.b": False}, "cursor": None}) == [
        ("user_id", "u1"), ("user_id", "u2"), ("type", "buy"), ("is_conversion", "true"), ("limit", "50"),
        ("since", "2026-12-06T09:00:00Z"), ("until", "1800000000000"), ("data.plan", "pro"), ("data.n", "3"),
        ("metadata.a.b", "false")]
    assert query_params({"since": dt.datetime(2026, 1, 1)}) == [("since", "2026-01-01T00:00:00Z")]  # naive = UTC
    with pytest.raises(TypeError):
        query_params({"data": "plan=pro"})


def test_retry_delays_honour_retry_after_else_back_off() -> None:
    assert retry_delay(1, "3", 0.5) == 3.0
    assert [retry_delay(a, None, 0.5) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(1, "Wed, 21 Oct 2026 07:28:00 GMT", 0.5) == 0.5  # an HTTP date: back off instead
    assert retry_delay(20, None, 0.5) == 30.0


def test_ingest_answers_merge_across_chunks_in_call_order() -> None:
    result = _merge_ingest(4, [(0, {"accepted": [{"index": 1, "id": "b"}], "rejected": [
        {"index": 0, "code": "missing_field", "message": "type"}]}),
        (2, {"accepted": [{"index": 0, "id": "c"}, {"index": 1, "id": "d"}], "rejected": []})])
    assert result.ids == (None, "b", "c", "d")
    assert result.rejected == (Rejected(0, "missing_field", "type"),)


def test_error_answers_raise_with_the_envelope() -> None:
    body = {"error": {"code": "forbidden", "message": "no", "details": [{"path": "x", "message": "y"}]}}
    with pytest.raises(ApiError) as err:
        _raise_for(httpx.Response(403, json=body))
    assert (err.value.status, err.value.code, err.value.message) == (403, "forbidden", "no")
    assert err.value.details == ({"path": "x", "message": "y"},)
    with pytest.raises(NotFound):
        _raise_for(httpx.Response(404, json={"error": {"code": "not_found", "message": "gone"}}))
    with pytest.raises(ApiError) as err:
        _raise_for(httpx.Response(502, text="bad gateway"))
    assert (err.value.status, err.value.code) == (502, "http_error")
    _raise_for(httpx.Response(200, json={}))


def test_admin_answers_become_typed_values() -> None:
    assert _key_record({"lookup": "ab12cd34", "tenant": "acme", "scopes": ["read", "admin"],
                        "created": "2026-12-06T10:00:00.000Z", "revoked": False}) == KeyRecord(
        "ab12cd34", "acme", ("read", "admin"), "2026-12-06T10:00:00.000Z", False)
    body = {"tenant": "acme", "watermark": None, "watermark_ms": 0, "redis_watermark_ms": 0, "files": 0,
            "bytes": 0, "rows": 0, "hot_windows": 3, "added_later": 1}
    assert _archive_status(body) == ArchiveStatus("acme", None, 0, 0, 0, 0, 0, 3)  # unknown fields ignored
    letters = _dead_letters({"dead_letters": [{"offset": 1}], "counts": {"malformed_json": 2}})
    assert letters.letters == ({"offset": 1},) and letters.counts == {"malformed_json": 2}
