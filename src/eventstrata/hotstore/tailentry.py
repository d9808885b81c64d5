"""The tail stream's entry format (written by ``write.lua``). Pure.

Each write call appends at most one entry to the tenant's tail stream: the call's new events,
which got consecutive global positions. The entry id is ``<last gpos>-0``; the fields, one per
event in position order, are named ``0``, ``1``, … (the event's index in the entry) with value
``<stream position>|<stored body>`` (the stream position empty when the event has none; the
body as ``hotstore.codec`` stores it). So an entry with id ``L`` and ``n`` fields holds
positions ``L - n + 1 … L``, and a reader that knows the last position it delivered can tell
from an entry's first position whether it missed any (the stream was trimmed past it).

One entry per call instead of one per event: Redis does one ``XADD`` per write call instead of
one per new event, and the stream has one entry header per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TailRecord:
    """One event of a tail entry: its positions and its stored body."""

    gpos: int
    spos: int | None
    body: bytes


def parse_entry_id(raw: object) -> int:
    """``b"123-0"`` → 123: the entry's last global position. Raises ``ValueError`` on anything
    else."""
    if not isinstance(raw, bytes | str):
        raise ValueError(f"not a stream entry id: {raw!r}")
    s = raw.decode("ascii") if isinstance(raw, bytes) else raw
    ms, _, _seq = s.partition("-")
    return int(ms)


def first_position(entry_id: object, fields: Mapping[bytes | str, object] | None) -> int:
    """The first global position an entry holds. Raises ``ValueError`` (bad id, no fields)."""
    if not fields:
        raise ValueError(f"tail entry {entry_id!r} holds no event")
    return parse_entry_id(entry_id) - len(fields) + 1


def parse_entry(entry_id: object, fields: Mapping[bytes | str, object]) -> list[TailRecord]:
    """The events of an entry, in position order. Raises ``ValueError``/``TypeError`` on a
    malformed one (a bad id, a field that is not an index of the entry, a value without
    ``|``)."""
    first = first_position(entry_id, fields)
    n = len(fields)
    out: list[TailRecord | None] = [None] * n
    for name, value in fields.items():
        i = int(name)
        if not 0 <= i < n or out[i] is not None:
            raise ValueError(f"tail entry {entry_id!r}: bad field {name!r}")
        if not isinstance(value, bytes | str):
            raise TypeError(f"tail entry {entry_id!r}: field {name!r} is not a string")
        raw = value if isinstance(value, bytes) else value.encode()
        sep = raw.index(b"|")
        out[i] = TailRecord(first + i, int(raw[:sep]) if sep else None, raw[sep + 1:])
    return [r for r in out if r is not None]
