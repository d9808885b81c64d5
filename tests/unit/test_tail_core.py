"""Pure parts of the live tail: subscriber buffer, resume parsing/planning, wire framing."""

from __future__ import annotations

import orjson
import pytest

from eventstrata.api.tail_routes import parse_tail_params
from eventstrata.errors import ApiError
from eventstrata.hotstore.tailentry import (
    Announcement,
    entry_count,
    entry_empty,
    first_position,
    parse_entry_id,
)
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter
from eventstrata.tail.buffer import SubscriberBuffer, make_entry
from eventstrata.tail.resume import (
    StartPoint,
    needs_catch_up,
    parse_position,
    past_empty,
    plan_source,
    resolve_start,
    stream_page_is_contiguous,
)
from eventstrata.tail.session import EventItem, Heartbeat, Lagged, Reconnect, TailFailed
from eventstrata.tail.wire import SseParser, sse_frame, ws_message


def ev(i: int, *, data: dict[str, object] | None = None, vendor: dict[str, object] | None = None) -> Event:
    return Event(id=f"e{i}", tenant="t", type="view", timestamp=1_700_000_000_000 + i,
                 received_at=1_700_000_000_000 + i, format="native", global_position=i,
                 data=data or {}, vendor=vendor or {})


# -- buffer -------------------------------------------------------------------------------
def test_buffer_is_fifo_and_flags_overflow_instead_of_dropping_silently() -> None:
    b = SubscriberBuffer(3, floor=10)
    for i in range(11, 14):
        assert b.push(make_entry(i, ev(i)))
    assert not b.push(make_entry(14, ev(14)))
    assert b.overflowed and b.dropped == 1
    assert not b.push(make_entry(15, ev(15)))  # stays overflowed until reset
    assert b.dropped == 2
    assert [getattr(b.pop(), "gpos", None) for _ in range(3)] == [11, 12, 13]
    assert b.pop() is None
    assert not b.push(make_entry(16, ev(16)))  # still overflowed even though empty now
    b.reset(16)
    assert (b.overflowed, b.floor, len(b)) == (False, 16, 0)
    assert b.push(make_entry(17, ev(17)))


def test_buffer_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError):
        SubscriberBuffer(0)


# -- resume -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("0", 0), ("42", 42), (" 7 ", 7), ("123-0", 123),
                                        ("9223372036854775807", 2**63 - 1)])
def test_parse_position_accepts_ids(text: str, value: int) -> None:
    assert parse_position(text, path="after") == value


@pytest.mark.parametrize("text", ["", "-1", "abc", "1.5", "12-1", "1e3", "9223372036854775808", "1 2", "0x10"])
def test_parse_position_rejects_malformed_ids_with_400(text: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_position(text, path="after")
    assert exc.value.status == 400 and exc.value.code == "invalid_parameter"
    assert exc.value.details[0].path == "after"


def test_resolve_start_precedence() -> None:
    assert resolve_start("5", "9", None) == StartPoint(9)  # Last-Event-ID wins (EventSource reconnect)
    assert resolve_start("5", None, None) == StartPoint(5)
    assert resolve_start("5", "  ", None) == StartPoint(5)
    assert resolve_start(None, None, 1_000) == StartPoint(0)  # since: from the start, time-filtered
    assert resolve_start("5", None, 1_000) == StartPoint(5)
    assert resolve_start(None, None, None) == StartPoint(None)  # live only
    with pytest.raises(ApiError):
        resolve_start(None, "x", None)


def test_plan_source_uses_the_stream_only_while_it_holds_the_next_position() -> None:
    # after = G, first id F: stream iff G + 1 >= F
    assert plan_source(0, 1) == "stream"
    assert plan_source(9, 10) == "stream"
    assert plan_source(8, 10) == "tiers"
    assert plan_source(0, 2) == "tiers"
    assert plan_source(500, 10) == "stream"
    assert plan_source(5, None) == "tiers"  # empty stream proves nothing


def test_contiguity_and_catch_up_need() -> None:
    assert stream_page_is_contiguous(5, 6)
    assert stream_page_is_contiguous(5, 3)  # position 5 lies inside the first entry (3..)
    assert stream_page_is_contiguous(5, None)
    assert not stream_page_is_contiguous(5, 8)
    assert needs_catch_up(3, 4) and not needs_catch_up(4, 4) and not needs_catch_up(5, 4)


# -- stream entries -----------------------------------------------------------------------
def test_make_entry_renders_the_native_shape_once() -> None:
    e = ev(7, vendor={"x": 1})
    entry = make_entry(7, e)
    assert entry.gpos == 7 and entry.event == e
    body = orjson.loads(entry.raw)
    assert body["id"] == "e7" and "vendor" not in body and body["timestamp"].endswith("Z")


def test_an_entry_announces_consecutive_positions_ending_at_its_id() -> None:
    assert parse_entry_id("12-0") == 12 and parse_entry_id(b"7-0") == 7
    assert first_position(b"7-0", {b"n": b"3"}) == 5 and first_position("7-0", {"n": "1"}) == 7
    assert entry_count(b"9-0", {b"n": b"500"}) == 500
    with pytest.raises(ValueError):
        parse_entry_id(None)
    for bad in (None, {}, {b"n": b"0"}, {b"n": b"x"}, {b"0": b"|x"}, {b"n": 5}, {b"n": b"0", b"s": b"0"},
                {b"n": b"2", b"s": b"-1"}, {b"n": b"2", b"s": b"x"}):
        with pytest.raises(ValueError):
            first_position(b"9-0", bad)


def test_an_entry_after_a_jump_covers_the_empty_positions_before_its_events() -> None:
    # positions 4..7 left empty by a jump, then events 8 and 9
    fields = {b"n": b"2", b"s": b"4"}
    assert entry_count(b"9-0", fields) == 2 and entry_empty(b"9-0", fields) == 4
    assert first_position(b"9-0", fields) == 4 and first_position("9-0", {"n": "0", "s": "6"}) == 4
    assert entry_empty("9-0", {"n": "3"}) == 0
    assert Announcement(4, 9, 4).empty_range == (4, 7) and Announcement(8, 9).empty_range is None
    # a reader passes over them, and only over them
    assert past_empty(3, [(4, 7)]) == 7 and past_empty(2, [(4, 7)]) == 2
    assert past_empty(5, [(4, 7), (8, 8), (10, 12)]) == 8 and past_empty(7, []) == 7


# -- wire ---------------------------------------------------------------------------------
def test_sse_frames_round_trip_through_the_parser() -> None:
    entry = make_entry(41, ev(41, data={"text": "line1\nline2"}))
    stream = b"".join([
        b": tail open\n\n",
        sse_frame(EventItem(entry)),
        sse_frame(Lagged(41, 90)),
        sse_frame(Heartbeat(95)),
        sse_frame(Reconnect(95)),
        sse_frame(TailFailed(410, "position_unavailable", "gone", 95)),
    ]).decode()
    p = SseParser()
    msgs = []
    for i in range(0, len(stream), 7):  # arbitrary chunking
        msgs.extend(p.feed(stream[i : i + 7]))
    assert [m.event for m in msgs] == ["message", "lagged", "heartbeat", "reconnect", "error"]
    assert msgs[0].id == "41" and orjson.loads(msgs[0].data)["data"]["text"] == "line1\nline2"
    assert orjson.loads(msgs[1].data) == {"position": 41, "head": 90}
    assert msgs[2].id == "95" and orjson.loads(msgs[2].data) == {"position": 95}
    assert orjson.loads(msgs[3].data) == {"position": 95}
    assert orjson.loads(msgs[4].data)["error"]["code"] == "position_unavailable"
    assert p.last_id == "95"


def test_ws_messages_are_json() -> None:
    entry = make_entry(3, ev(3))
    m = orjson.loads(ws_message(EventItem(entry)))
    assert m["type"] == "event" and m["id"] == 3 and m["event"]["id"] == "e3"
    assert orjson.loads(ws_message(Lagged(1, 2))) == {"type": "lagged", "position": 1, "head": 2}
    assert orjson.loads(ws_message(Heartbeat(5))) == {"type": "heartbeat", "position": 5}
    assert orjson.loads(ws_message(Reconnect(5))) == {"type": "reconnect", "position": 5}
    assert orjson.loads(ws_message(TailFailed(503, "unavailable", "x", 5)))["error"]["code"] == "unavailable"


# -- parameters ---------------------------------------------------------------------------
def test_tail_params_reuse_the_events_filters_and_reject_paging() -> None:
    flt, after = parse_tail_params([("type", "buy"), ("type", "view"), ("user_id", "u1"), ("after", "12"),
                                    ("access_token", "k"), ("data.plan", "pro")])
    assert after == "12"
    assert flt == EventFilter(types=("buy", "view"), user_ids=("u1",), data_eq=((("plan",), "pro"),))
    for bad in (("limit", "5"), ("cursor", "x"), ("order", "asc"), ("nonsense", "1")):
        with pytest.raises(ApiError) as exc:
            parse_tail_params([bad])
        assert exc.value.status == 400
    with pytest.raises(ApiError):
        parse_tail_params([("after", "1"), ("after", "2")])
