"""Merging tiers: order with ties, boundaries, de-duplication (pure)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.stored import StoredEvents
from eventstrata.model import Event
from eventstrata.query.merge import SourceResult, merge_results, sort_position

CODEC = BodyCodec()


def ev(ts: int, eid: str, gpos: int | None = None) -> Event:
    return Event(id=eid, tenant="T", type="t", timestamp=ts, received_at=ts, format="native", global_position=gpos)


def test_ties_break_by_id_both_orders() -> None:
    a = [ev(5, "b"), ev(5, "a"), ev(4, "z")]
    b = [ev(6, "d"), ev(5, "c")]
    m = merge_results([SourceResult(tuple(a), True), SourceResult(tuple(b), True)], order="desc", sort="time",
                      limit=10)
    assert [(e.timestamp, e.id) for e in m.events] == [(6, "d"), (5, "c"), (5, "b"), (5, "a"), (4, "z")]
    assert m.next_position is None
    m = merge_results([SourceResult(tuple(a), True), SourceResult(tuple(b), True)], order="asc", sort="time",
                      limit=2)
    assert [(e.timestamp, e.id) for e in m.events] == [(4, "z"), (5, "a")]
    assert m.next_position == (5, "a")


def test_dedupe_by_id() -> None:
    m = merge_results([SourceResult((ev(5, "x"),), True), SourceResult((ev(5, "x"),), True)], order="asc",
                      sort="time", limit=10)
    assert len(m.events) == 1


def test_boundary_cuts_the_page() -> None:
    hot = SourceResult((ev(10, "a"), ev(8, "b")), False, (8, "b"))
    cold = SourceResult((ev(9, "q"), ev(7, "r")), True)
    m = merge_results([hot, cold], order="desc", sort="time", limit=10)
    assert [e.timestamp for e in m.events] == [10, 9, 8]
    assert m.next_position == (8, "b")


def test_gpos_sort() -> None:
    m = merge_results([SourceResult((ev(1, "a", 3), ev(9, "b", 1)), True)], order="asc", sort="gpos", limit=5)
    assert [e.global_position for e in m.events] == [1, 3]
    assert sort_position(ev(1, "a", None), "gpos") == (-1, "a")


def stored(events: list[Event], bodies: list[bytes] | None = None) -> StoredEvents:
    """A hot source's events as the hot reader builds them (real stored bodies, no ids records)."""
    out = StoredEvents(CODEC)
    for i, e in enumerate(events):
        out.add((e.timestamp, e.id), CODEC.encode_event(e) if bodies is None else bodies[i], None)
    return out


def test_a_page_from_one_stored_source_is_its_slice_and_is_not_decoded() -> None:
    hot = [ev(9, "c"), ev(8, "b"), ev(7, "a")]
    garbage = [b"not a body"] * 3  # decoding any of them raises: the merge must not
    for cold in ((), (ev(1, "x"),)):
        m = merge_results([SourceResult(stored(hot, garbage), False, (7, "a")), SourceResult(cold, True)],
                          order="desc", sort="time", limit=2)
        assert isinstance(m.events, StoredEvents) and m.events.positions == [(9, "c"), (8, "b")]
        assert m.next_position == (8, "b")


def test_stored_and_plain_sources_interleave_and_dedupe() -> None:
    hot = stored([ev(9, "c"), ev(6, "b"), ev(5, "dup")])
    cold = (ev(8, "y"), ev(5, "dup"), ev(4, "x"))
    m = merge_results([SourceResult(hot, True), SourceResult(cold, True)], order="desc", sort="time", limit=10)
    assert not isinstance(m.events, StoredEvents)
    assert [(e.timestamp, e.id) for e in m.events] == [(9, "c"), (8, "y"), (6, "b"), (5, "dup"), (4, "x")]
    assert m.events[0] == ev(9, "c")


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from("abcdef")), unique=True, max_size=30),
       st.integers(1, 8), st.sampled_from(["asc", "desc"]), st.randoms(), st.booleans())
def test_paging_by_merge_equals_sort(items: list[tuple[int, str]], limit: int, order: str,
                                     rnd: random.Random, hot_stored: bool) -> None:
    events = [ev(t, f"{i}{t}") for t, i in items]
    split = [rnd.random() < 0.5 for _ in events]
    want = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=order == "desc")
    got: list[Event] = []
    after = None
    for _ in range(100):
        srcs = []
        for flag in (True, False):
            part = [e for e, s in zip(events, split, strict=True) if s is flag]
            part.sort(key=lambda e: (e.timestamp, e.id), reverse=order == "desc")
            if after is not None:
                part = [e for e in part if ((e.timestamp, e.id) > after if order == "asc"
                                            else (e.timestamp, e.id) < after)]
            page = stored(part[:limit]) if flag and hot_stored else tuple(part[:limit])
            srcs.append(SourceResult(page, len(part) <= limit,
                                     sort_position(part[limit - 1], "time") if len(part) > limit else None))
        m = merge_results(srcs, order=order, sort="time", limit=limit)
        got.extend(m.events)  # decodes stored events: equal to the produced ones
        after = m.next_position
        if after is None:
            break
    assert got == want
