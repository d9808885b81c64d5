"""Cursor round trip and binding (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstrata.errors import ApiError
from eventstrata.query.cursor import CursorState, decode_cursor, encode_cursor
from eventstrata.query.filters import EventFilter

SECRET = b"s" * 32
F = EventFilter(user_ids=("a:b{c}*",), data_eq=((("a", "b"), 5),))


@given(ts=st.integers(0, 2**45), eid=st.text(min_size=1, max_size=40), w=st.integers(0, 2**45),
       order=st.sampled_from(["asc", "desc"]))
def test_round_trip(ts: int, eid: str, w: int, order: str) -> None:
    state = CursorState((ts, eid), w, order, "time")
    tok = encode_cursor(SECRET, "T", F, state)
    assert tok.isascii() and "/" not in tok and "+" not in tok
    assert decode_cursor(SECRET, tok, "T", F, order=order, sort="time") == state


def _bad(token: str, tenant: str = "T", flt: EventFilter = F, order: str = "desc", sort: str = "time") -> None:
    with pytest.raises(ApiError) as ei:
        decode_cursor(SECRET, token, tenant, flt, order=order, sort=sort)
    assert ei.value.status == 400 and ei.value.code == "invalid_cursor"
    assert ei.value.details[0].path == "cursor"


def test_binding_and_tampering() -> None:
    tok = encode_cursor(SECRET, "T", F, CursorState((5, "x"), 7, "desc", "time"))
    _bad(tok, tenant="U")
    _bad(tok, flt=EventFilter(user_ids=("other",)))
    _bad(tok, flt=EventFilter(user_ids=("a:b{c}*",), data_eq=((("a", "b"), "5"),)))
    _bad(tok, order="asc")
    _bad(tok, sort="gpos")
    body, sig = tok.split(".")
    for i in range(len(body)):
        c = "A" if body[i] != "A" else "B"
        tampered = body[:i] + c + body[i + 1:] + "." + sig
        _bad(tampered)
    _bad(encode_cursor(b"x" * 32, "T", F, CursorState((5, "x"), 7, "desc", "time")))
    for junk in ("", ".", "..", "a.b", "!!!.???", tok + ".x", tok[:-3]):
        _bad(junk)


def test_filter_hash_is_order_sensitive_only_where_meaningful() -> None:
    a = EventFilter(types=("a", "b"))
    tok = encode_cursor(SECRET, "T", a, CursorState((1, "i"), 0, "desc", "time"))
    assert decode_cursor(SECRET, tok, "T", EventFilter(types=("a", "b")), order="desc", sort="time")
