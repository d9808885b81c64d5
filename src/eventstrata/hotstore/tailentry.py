"""The tail stream's entry format (written by ``write.lua``). Pure.

Each write call appends at most one entry to the tenant's tail stream, announcing the call's
new events, which got consecutive global positions. The entry id is ``<last gpos>-0`` and its
one field ``n`` holds how many there are: an entry with id ``L`` and ``n = k`` announces
positions ``L - k + 1 … L``. A reader that knows the last position it delivered can tell from
an entry's first position whether it missed any (the stream was trimmed past it), and reads the
announced events themselves from the hot tier by position (``hotstore.read.read_seq``): the
stream holds no bodies, so it costs a few dozen bytes per write call, not a copy of each event.
"""

from __future__ import annotations

from collections.abc import Mapping

COUNT_FIELD = b"n"


def parse_entry_id(raw: object) -> int:
    """``b"123-0"`` → 123: the entry's last global position. Raises ``ValueError`` on anything
    else."""
    if not isinstance(raw, bytes | str):
        raise ValueError(f"not a stream entry id: {raw!r}")
    s = raw.decode("ascii") if isinstance(raw, bytes) else raw
    ms, _, _seq = s.partition("-")
    return int(ms)


def entry_count(entry_id: object, fields: Mapping[bytes | str, object] | None) -> int:
    """How many events an entry announces. Raises ``ValueError`` (no or a bad ``n``)."""
    raw = None
    if fields:
        raw = fields.get(COUNT_FIELD, fields.get(COUNT_FIELD.decode()))
    if not isinstance(raw, bytes | str) or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"tail entry {entry_id!r} announces no event")
    return int(raw)


def first_position(entry_id: object, fields: Mapping[bytes | str, object] | None) -> int:
    """The first global position an entry announces. Raises ``ValueError`` (bad id, no count)."""
    return parse_entry_id(entry_id) - entry_count(entry_id, fields) + 1
