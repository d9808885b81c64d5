"""Never a 500 on input: every parser of request input (native query string and body, Trieve
and Fluid Topics bodies, ``POST /v1/ingest`` bodies, tail parameters and resume ids) either
accepts it or raises the surface's own 400 (or 413) error, whatever the names, types and
nesting (seeded hypothesis runs).

The strategies include what once crashed the API: JSON nested hundreds of levels deep (a
``data.<path>`` value, a body field) and containers where a string belongs (``"bucket": {}``).
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstrata.api.compat import fluidtopics_api, trieve_api
from eventstrata.api.compat.parsing import CompatError
from eventstrata.api.ingest_body import Limits, check_events, decode_body, split_events
from eventstrata.api.tail_routes import parse_tail_params
from eventstrata.errors import ApiError
from eventstrata.query.params import _CONTROL, _REPEATABLE, _SINGLE, parse_query_body, parse_query_items
from eventstrata.tail.resume import resolve_start

FUZZ = settings(max_examples=400, derandomize=True, deadline=None)

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=8)
deep_text = st.sampled_from([1, 10, 17, 65, 300, 500, 900]).flatmap(
    lambda d: st.sampled_from(["[" * d + "]" * d, '{"a":' * d + "1" + "}" * d]))
deep_values = deep_text.map(orjson.loads)
any_value = json_values | deep_values
names = st.sampled_from([*_REPEATABLE, *_SINGLE, *_CONTROL, "data.a", "metadata.a.b", "data.x.0", "nope"])


@FUZZ
@given(st.lists(st.tuples(names, st.text(max_size=20) | deep_text), max_size=6), st.booleans())
def test_query_string_parsing_never_crashes(items: list[tuple[str, str]], allow_bucket: bool) -> None:
    try:
        parse_query_items(items, allow_bucket=allow_bucket)
    except ApiError as exc:
        assert exc.status == 400


@FUZZ
@given(st.dictionaries(names | st.sampled_from(["data", "metadata"]), any_value
                       | st.dictionaries(st.sampled_from(["a", "a.b", "x.0"]), any_value, max_size=2), max_size=6))
def test_query_body_parsing_never_crashes(body: dict[str, Any]) -> None:
    try:
        parse_query_body(body)
    except ApiError as exc:
        assert exc.status == 400


def _body(fields: list[str]) -> Any:
    return st.dictionaries(st.sampled_from(fields), any_value | st.dictionaries(st.sampled_from(fields), any_value,
                                                                                max_size=3), max_size=4)


def _raw(fields: list[str], wrap: str) -> Any:
    """Request bodies as bytes: random objects of ``fields``, or ``wrap`` around deep JSON text
    (built as text: orjson serializes at most 255 levels)."""
    dumped = _body(fields).map(lambda b: orjson.dumps(b, option=orjson.OPT_NON_STR_KEYS) if _dumpable(b) else b"{")
    return dumped | deep_text.map(lambda t: (wrap % t).encode())


@FUZZ
@given(_raw(["filter", "page", "user_id", "event_type", "is_conversion", "metadata_filter", "date_range",
             "gt", "lt", "gte", "lte"], '{"filter": %s, "page": 1}'),
       st.sampled_from(['a.b = "x"', "a = " + "[" * 500 + "]" * 500, "a = {", "=", "a.b = 1"]))
def test_trieve_body_parsing_never_crashes(raw: bytes, metadata_filter: str) -> None:
    for candidate in (raw, orjson.dumps({"filter": {"metadata_filter": metadata_filter}})):
        try:
            trieve_api.parse_events_body(candidate)
        except CompatError as exc:
            assert exc.status == 400


@FUZZ
@given(_raw(["startDate", "endDate", "filters", "paging", "sortOrder", "name", "user", "id", "realm", "group",
             "role", "page", "perPage"], '{"startDate": "2026-01-01", "filters": %s}'))
def test_fluidtopics_body_parsing_never_crashes(raw: bytes) -> None:
    for paging_allowed in (True, False):
        try:
            fluidtopics_api.parse_body(raw, now_ms=1_767_225_600_000, paging_allowed=paging_allowed)
        except CompatError as exc:
            assert exc.status == 400


_EVENT_FIELDS = ["format", "event", "id", "type", "user_id", "timestamp", "tenant", "data", "dataset_id",
                 "tenantId", "eventType", "verb"]


@FUZZ
@given(st.lists(_raw(_EVENT_FIELDS, '{"format": "native", "event": %s}')
                | _raw(_EVENT_FIELDS, '{"type": "t", "timestamp": 1, "data": %s}'), min_size=1, max_size=4),
       st.booleans(), st.sampled_from([None, "native", "trieve", "nope", ""]))
def test_ingest_body_parsing_never_crashes(lines: list[bytes], as_array: bool, fmt: str | None) -> None:
    """``POST /v1/ingest``: a JSON array or NDJSON of anything gives accepted and rejected events
    or the 400/413 of the body, never another error (an element nested 300 deep once raised
    orjson's TypeError when serialized again)."""
    raw = b"[" + b",".join(lines) + b"]" if as_array else b"\n".join(lines)
    limits = Limits(max_bytes=1 << 20, max_events=3, max_event_bytes=4096, max_future_skew_ms=86_400_000)
    try:
        events = split_events(decode_body(raw, None, limits.max_bytes), limits.max_events)
        accepted, rejected = check_events(events, tenant="acme", fmt=fmt, now_ms=1_767_225_600_000,
                                          limits=limits)
    except ApiError as exc:
        assert exc.status in (400, 413)
    else:
        assert sorted([a.index for a in accepted] + [r.index for r in rejected]) == list(range(len(events)))


@FUZZ
@given(st.lists(st.tuples(names | st.sampled_from(["after", "since", "limit", "cursor"]),
                          st.text(max_size=24) | deep_text), max_size=5),
       st.none() | st.text(max_size=30) | st.integers(-5, 2**70).map(str))
def test_tail_parameters_and_resume_ids_never_crash(items: list[tuple[str, str]], last_event_id: str | None) -> None:
    try:
        _, after = parse_tail_params(items)
        resolve_start(after, last_event_id, None)
    except ApiError as exc:
        assert exc.status == 400


def test_the_fuzzed_json_reaches_the_depths_that_crashed() -> None:
    """The strategies do produce what they are meant to (the 500-deep value of the bug report)."""
    assert max(_depth(orjson.loads("[" * d + "]" * d)) for d in (500, 900)) >= 500


def _dumpable(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # nested deeper than orjson serializes (255) or a non-finite float
        return False
    return True


def _depth(value: Any) -> int:
    from eventstrata.formats.common import json_depth

    return json_depth(value)
