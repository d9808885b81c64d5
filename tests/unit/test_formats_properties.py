"""Property tests (hypothesis) of the format layer: normalize never raises and always answers
with an Event or a coded InvalidEvent; valid events survive the storage form and render in
every format; derived ids are stable; the fast timestamp parser agrees with timeutil's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eventstrata.formats import common, normalize, render, render_native
from eventstrata.formats.normalize import ADAPTERS
from eventstrata.model import FORMATS, INVALID_CODES, Event, Format, InvalidEvent
from eventstrata.timeutil import MAX_MS, format_ms, format_ms_seconds, parse_time_ms

NOW = 1_767_225_600_000
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.one_of(
    st.integers(min_value=-5, max_value=MAX_MS + 5),
    st.integers(min_value=NOW - 10**11, max_value=NOW + 2 * 86_400_000),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
    st.text(max_size=30),
    st.floats(allow_nan=False),
)
tenants = st.sampled_from(["acme", "t-1", "00000000-0000-0000-0000-000000000000", "", "a b", "x" * 65])
ids = st.one_of(st.text(min_size=1, max_size=20), st.integers(min_value=0, max_value=2**64 - 1), json_scalars)
users = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.text(max_size=10), st.integers(0, 10**6), json_scalars),
            "name": st.text(max_size=10),
            "realm": st.one_of(st.lists(st.text(max_size=5), max_size=3), st.text(max_size=5), json_values),
            "groups": st.lists(st.text(max_size=5), max_size=3),
            "roles": st.lists(st.text(max_size=5), max_size=3),
        },
    ),
    json_values,
)
str_or_junk = st.one_of(st.text(min_size=1, max_size=12), json_scalars)

# Every key any format reads, with plausible values, plus arbitrary other keys.
KEYED = {
    # native
    "id": ids, "tenant": tenants, "type": str_or_junk, "timestamp": timestamps, "name": str_or_junk,
    "user_id": ids, "source": str_or_junk, "session_id": str_or_junk, "stream_id": str_or_junk,
    "transaction_id": str_or_junk, "request_id": str_or_junk, "is_conversion": json_scalars,
    "store": st.sampled_from(["default", "s1", "", "a b", 3]), "items": st.lists(str_or_junk, max_size=3),
    "user": users, "data": json_values, "metadata": json_values,
    # trieve
    "event_type": str_or_junk, "event_name": str_or_junk, "dataset_id": tenants, "created_at": timestamps,
    "updated_at": timestamps, "request_type": str_or_junk,
    # thisdata
    "verb": str_or_junk, "published": timestamps, "device": json_values, "location": json_values,
    "session": st.one_of(json_values, st.fixed_dictionaries({"id": ids})), "overall_score": json_scalars,
    "raw": json_values, "source_name": str_or_junk,
    # fluid topics
    "datetime": timestamps, "tenantId": tenants, "appName": str_or_junk, "sessionId": str_or_junk,
    "parameters": json_values, "offline": json_scalars, "userAgent": st.text(max_size=10),
    # event store
    "streamId": str_or_junk, "eventId": ids, "createdAt": timestamps, "schemaVersion": json_scalars,
    "transactionId": str_or_junk, "streamPosition": json_scalars, "globalPosition": json_scalars,
    "eventStoreName": st.sampled_from(["orders", "", "a b", None]),
}


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(KEYED)), max_size=10, unique=True))
    obj = {k: draw(KEYED[k]) for k in keys}
    obj.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return obj


BASES: dict[str, dict[str, Any]] = {
    "native": {"tenant": "acme", "type": "t", "timestamp": NOW - 1000},
    "trieve": {"dataset_id": "acme", "event_type": "view", "created_at": "2025-01-01T00:00:00Z"},
    "thisdata": {"verb": "log-in", "published": "2025-01-01T00:00:00.000Z"},
    "fluidtopics": {"tenantId": "acme", "name": "khub.search", "datetime": NOW - 5},
    "eventstore": {"streamId": "s-1", "type": "x", "createdAt": "2025-01-01T00:00:00Z"},
}
VALID_FOR = {  # plausible *valid* values per key, to reach deep into the adapters
    "id": st.text(min_size=1, max_size=8) | st.integers(0, 10**9), "eventId": st.text(min_size=1, max_size=8),
    "name": st.text(max_size=8), "user_id": st.text(min_size=1, max_size=8), "source": st.text(max_size=5),
    "items": st.lists(st.text(max_size=5), max_size=3), "is_conversion": st.none() | st.booleans(),
    "user": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=5)},
                                  optional={"realm": st.lists(st.text(max_size=3), max_size=2)}),
    "data": st.dictionaries(st.text(max_size=5), json_values, max_size=3), "metadata": json_values,
    "session": st.fixed_dictionaries({"id": st.text(max_size=5)}), "parameters": st.dictionaries(
        st.text(max_size=5), json_values, max_size=3),
}


@st.composite
def near_valid(draw: st.DrawFn, fmt: str | None = None) -> dict[str, Any]:
    """A valid base object of a format with a few valid-ish or random fields over it."""
    f = fmt or draw(st.sampled_from(FORMATS))
    obj = dict(BASES[f])
    for key in draw(st.lists(st.sampled_from(sorted(VALID_FOR)), max_size=5, unique=True)):
        obj[key] = draw(VALID_FOR[key])
    if draw(st.integers(0, 3)) == 0:  # now and then one arbitrary field of any format
        key = draw(st.sampled_from(sorted(KEYED)))
        obj[key] = draw(KEYED[key])
    return obj


any_objects = st.one_of(objects(), near_valid())

header_names = st.sampled_from(["es-format", "es-tenant", "es-store", "ES-Tenant", "Es-Format", "x-other"])
header_values = st.one_of(
    st.sampled_from([f.encode() for f in FORMATS]),
    st.sampled_from([b"acme", b"t-1", b"", b"a b", b"orders", b"\xff"]),
    st.binary(max_size=10),
    st.none(),
    st.text(max_size=5),
)
header_lists = st.lists(st.tuples(header_names, header_values), max_size=4)
headers_any = st.one_of(
    header_lists,
    header_lists.map(tuple),
    st.dictionaries(header_names, header_values, max_size=3),
)


def check(res: Event | InvalidEvent) -> None:
    """The contract every answer satisfies."""
    if isinstance(res, InvalidEvent):
        assert res.code in INVALID_CODES
        assert isinstance(res.message, str) and res.message
        return
    assert type(res) is Event
    assert res.format in FORMATS
    assert isinstance(res.id, str) and 1 <= len(res.id) <= 512
    assert res.received_at == NOW
    assert 0 <= res.timestamp <= NOW + 86_400_000
    assert res.global_position is None and res.stream_position is None
    assert all(type(i) is str for i in res.items)
    assert isinstance(res.user, dict) and isinstance(res.data, dict) and isinstance(res.vendor, dict)
    # the storage form round-trips exactly
    back = Event.from_json(res.to_json())
    assert back == res
    # every renderer accepts every event, and the output is JSON
    for fmt in FORMATS:
        orjson.dumps(render(res, fmt))
    orjson.dumps(render_native(res))


# -- properties ----------------------------------------------------------------------------------------


@SETTINGS
@given(value=st.binary(max_size=600), headers=headers_any)
def test_any_bytes_never_raise(value: bytes, headers: Any) -> None:
    check(normalize(value, headers, now_ms=NOW))


@SETTINGS
@given(obj=any_objects, headers=headers_any)
def test_any_object_never_raises(obj: dict[str, Any], headers: Any) -> None:
    raw = orjson.dumps(obj)
    res = normalize(raw, headers, now_ms=NOW)
    check(res)
    # deterministic: the same message gives the same answer (ids included)
    assert normalize(raw, headers, now_ms=NOW) == res
    # and with just a tenant header (detection path; reaches the adapters far more often)
    check(normalize(raw, [("es-tenant", b"acme")], now_ms=NOW))


@SETTINGS
@given(obj=any_objects, fmt=st.sampled_from(FORMATS))
def test_adapters_never_raise(obj: dict[str, Any], fmt: Format) -> None:
    res = ADAPTERS[fmt](obj, "acme", "default", NOW)
    assert isinstance(res, Event | InvalidEvent)
    if isinstance(res, InvalidEvent):
        assert res.code in INVALID_CODES


@SETTINGS
@given(data=st.data(), later=st.integers(min_value=0, max_value=10**9))
def test_derived_ids_are_stable(data: st.DataObject, later: int) -> None:
    fmt = data.draw(st.sampled_from(FORMATS))
    obj = data.draw(near_valid(fmt))
    for key in ("id", "eventId"):
        obj.pop(key, None)
    headers = [("es-format", fmt.encode()), ("es-tenant", b"acme")]
    first = normalize(orjson.dumps(obj), headers, now_ms=NOW)
    assume(isinstance(first, Event))
    assert isinstance(first, Event)
    assert first.id.startswith("d-") and len(first.id) == 34
    # other key order, whitespace and receive time: same id
    reordered = dict(reversed(list(obj.items())))
    again = normalize(orjson.dumps(reordered, option=orjson.OPT_INDENT_2), headers, now_ms=NOW + later)
    assert isinstance(again, Event) and again.id == first.id


@st.composite
def ts_texts(draw: st.DrawFn) -> Any:
    dt = draw(st.datetimes(min_value=datetime(1969, 12, 30), max_value=datetime(9999, 12, 30)))
    form = draw(st.integers(0, 9))
    if form == 0:
        return dt.isoformat()
    if form == 1:
        return dt.isoformat() + "Z"
    if form == 2:
        return dt.isoformat(sep=" ", timespec="milliseconds")
    if form == 3:
        off = draw(st.integers(-23 * 60, 23 * 60))
        return dt.replace(tzinfo=timezone(timedelta(minutes=off))).isoformat()
    if form == 4:
        return dt.date().isoformat()
    if form == 5:
        return dt.strftime("%Y%m%dT%H%M%S")
    if form == 6:
        return dt.isoformat() + draw(st.sampled_from(["z", " ", "Zx", "+25:00", "+01"]))
    if form == 7:
        return " " + dt.isoformat()
    if form == 8:
        return draw(st.integers(-(10**17), 10**17))
    return draw(st.one_of(st.text(max_size=25), st.floats(), st.booleans(), st.none()))


@settings(max_examples=1000, deadline=None)
@given(value=ts_texts())
def test_fast_timestamp_parser_agrees_with_timeutil(value: Any) -> None:
    try:
        expected: int | None = parse_time_ms(value)
    except ValueError:
        expected = None
    try:
        got: int | None = common.parse_ts(value)
    except ValueError:
        got = None
    assert got == expected


@settings(max_examples=500, deadline=None)
@given(ms=st.one_of(st.integers(min_value=0, max_value=MAX_MS), st.sampled_from([0, MAX_MS, 951782400000])))
def test_fast_formatters_agree_with_timeutil(ms: int) -> None:
    assert common.iso_ms(ms) == format_ms(ms)
    assert common.iso_seconds(ms) == format_ms_seconds(ms)


@settings(max_examples=300, deadline=None)
@given(ms=st.integers(min_value=0, max_value=MAX_MS))
def test_vendor_time_parses_back(ms: int) -> None:
    text = common.vendor_time(ms)
    assert text.endswith("Z")
    assert parse_time_ms(text) == ms


# -- valid vendor objects round-trip through normalize → render -------------------------------------

short = st.text(st.characters(codec="utf-8"), min_size=1, max_size=10)
ms_ts = st.integers(min_value=0, max_value=NOW)


@st.composite
def valid_trieve(draw: st.DrawFn) -> dict[str, Any]:
    ts = draw(ms_ts)
    return {
        "id": draw(short),
        "created_at": common.vendor_time(ts),
        "dataset_id": "acme",
        "event_name": draw(short),
        "event_type": draw(short),
        "is_conversion": draw(st.none() | st.booleans()),
        "items": draw(st.lists(short, max_size=3)),
        "metadata": draw(json_values),
        "request_id": draw(st.none() | short),
        "request_type": draw(st.none() | short),
        "updated_at": common.vendor_time(draw(st.just(ts) | ms_ts)),
        "user_id": draw(st.none() | short),
    }


@st.composite
def valid_thisdata(draw: st.DrawFn) -> dict[str, Any]:
    obj = {
        "published": format_ms(draw(ms_ts)),
        "verb": draw(short),
        "device": draw(json_values),
        "location": draw(json_values),
        "session": draw(st.none() | st.fixed_dictionaries({"id": short}) | short),
        "overall_score": draw(st.none() | st.floats(0, 1)),
        "id": draw(short),
        "user": draw(st.none() | st.fixed_dictionaries({"id": short, "name": short})),
        "raw": draw(json_values),
    }
    if draw(st.booleans()):
        obj["source_name"] = draw(short)
    return obj


@st.composite
def valid_fluidtopics(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "appName": draw(st.none() | short),
        "appVersion": draw(st.none() | short),
        "contentLocale": draw(st.none() | short),
        "datetime": draw(ms_ts),
        "id": draw(short),
        "name": draw(short),
        "offline": draw(st.none() | st.booleans()),
        "parameters": draw(st.dictionaries(short, json_values, max_size=3)),
        "sessionId": draw(st.none() | short),
        "tenantId": "acme",
        "uiLocale": draw(st.none() | short),
        "user": draw(
            st.none()
            | st.fixed_dictionaries(
                {"id": short, "realm": st.lists(short, max_size=2), "groups": st.lists(short, max_size=2),
                 "roles": st.lists(short, max_size=2)}
            )
        ),
        "userAgent": draw(st.none() | short),
        "userIp": draw(st.none() | short),
    }


@st.composite
def valid_eventstore(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "streamId": draw(short),
        "streamPosition": draw(st.integers(0, 10**6)),
        "globalPosition": draw(st.integers(0, 10**9)),
        "eventId": draw(short),
        "type": draw(short),
        "data": draw(st.dictionaries(short, json_values, max_size=3)),
        "metadata": draw(st.none() | st.dictionaries(short, json_values, max_size=3)),
        "schemaVersion": draw(short),
        "transactionId": draw(short),
        "createdAt": common.vendor_time(draw(ms_ts)),
    }


# Absent/null-equivalent normalizations the renderers are allowed (documented in the adapters).
def _same(original: dict[str, Any], rendered: dict[str, Any]) -> None:
    for key, value in original.items():
        assert rendered[key] == value, (key, rendered[key], value)
    for key in set(rendered) - set(original):
        assert rendered[key] is None, key


@SETTINGS
@given(
    data=st.one_of(
        valid_trieve().map(lambda o: ("trieve", o)),
        valid_thisdata().map(lambda o: ("thisdata", o)),
        valid_fluidtopics().map(lambda o: ("fluidtopics", o)),
        valid_eventstore().map(lambda o: ("eventstore", o)),
    ),
    extra=st.dictionaries(st.sampled_from(["zz_custom", "other"]), json_values, max_size=2),
)
def test_valid_vendor_objects_round_trip(data: tuple[str, dict[str, Any]], extra: dict[str, Any]) -> None:
    fmt, obj = data
    obj = {**obj, **extra}
    headers = [("es-format", fmt.encode()), ("es-tenant", b"acme")]
    ev = normalize(orjson.dumps(obj), headers, now_ms=NOW)
    assert isinstance(ev, Event), ev
    out = render(ev, ev.format)
    if fmt == "thisdata" and obj["user"] is None:
        assert out["user"] is None
    _same(obj, out)
    # and again after the storage form
    assert ev.format == fmt
    assert render(Event.from_json(ev.to_json()), ev.format) == out


@SETTINGS
@given(obj=near_valid("native"))
def test_native_render_can_be_published_again(obj: dict[str, Any]) -> None:
    ev = normalize(orjson.dumps(obj), [("es-format", b"native"), ("es-tenant", b"acme")], now_ms=NOW)
    assume(isinstance(ev, Event))
    assert isinstance(ev, Event)
    out = render_native(ev)
    assert out["timestamp_ms"] == ev.timestamp
    assert parse_time_ms(out["timestamp"]) == ev.timestamp
    again = normalize(orjson.dumps(out), [], now_ms=NOW + 1)
    assert isinstance(again, Event), again
    assert again.received_at == NOW + 1
    # everything but receive time and the kept unknown fields (not part of the native output)
    expected = Event.from_dict({**ev.to_dict(), "received_at": NOW + 1, "vendor": {}})
    assert again == expected


def test_utc_constant_sanity() -> None:
    # the fast parser's epoch constants are the real epoch
    assert common.parse_ts("1970-01-01T00:00:00Z") == 0
    assert common.parse_ts(datetime(2000, 1, 1, tzinfo=UTC).isoformat()) == 946684800000
