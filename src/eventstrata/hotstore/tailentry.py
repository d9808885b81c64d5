"""The tail stream (written by ``write.lua``): its entry format, and the reads of it.

Each write call appends at most one entry to the tenant's tail stream, announcing the call's
new events, which got consecutive global positions. The entry id is ``<last gpos>-0`` and its
field ``n`` holds how many there are: an entry with id ``L`` and ``n = k`` announces
positions ``L - k + 1 … L``. After a jump of the positions (``keys.POS_PER_MS``: Redis changed
nodes) the entry also has ``s`` = how many positions before its events were left empty: with
``s = j`` it covers ``L - k - j + 1 … L``, the first ``j`` holding no event (``n`` may then be
0). A reader that knows the last position it delivered can tell from an entry's first position
whether it missed any (the stream was trimmed past it), and reads the
announced events themselves from the hot tier by position (``hotstore.read.read_seq``): the
stream holds no bodies, so it costs a few dozen bytes per write call, not a copy of each event.

The parsing functions are pure; ``last_announced``, ``first_announced`` and ``announced_after``
are the stream's only reads (one command each), so that the live tail (``eventstrata.tail``)
never names the stream's key or its commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventstrata.keys import TenantKeys
from eventstrata.redisconn import RedisClient, reply

COUNT_FIELD = b"n"
EMPTY_FIELD = b"s"


def parse_entry_id(raw: object) -> int:
    """``b"123-0"`` → 123: the entry's last global position. Raises ``ValueError`` on anything
    else."""
    if not isinstance(raw, bytes | str):
        raise ValueError(f"not a stream entry id: {raw!r}")
    s = raw.decode("ascii") if isinstance(raw, bytes) else raw
    ms, _, _seq = s.partition("-")
    return int(ms)


def _number(entry_id: object, fields: Mapping[bytes | str, object] | None, name: bytes) -> int | None:
    """The decimal field ``name`` of an entry; None when absent. Raises ``ValueError`` for one
    that is not a number."""
    raw = fields.get(name, fields.get(name.decode())) if fields else None
    if raw is None:
        return None
    if not isinstance(raw, bytes | str) or not raw.isdigit():
        raise ValueError(f"tail entry {entry_id!r} has a bad {name.decode()!r}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class Announcement:
    """One entry of the tail stream: it covers positions ``first`` … ``last``, of which the
    first ``empty`` hold no event (a jump) and the others are new events."""

    first: int
    last: int
    empty: int = 0

    @property
    def count(self) -> int:
        """How many events the entry announces."""
        return self.last - self.first + 1 - self.empty

    @property
    def empty_range(self) -> tuple[int, int] | None:
        """``(lo, hi)``: the positions this entry says hold no event; None when none."""
        return (self.first, self.first + self.empty - 1) if self.empty else None


def parse_entry(entry_id: object, fields: Mapping[bytes | str, object] | None) -> Announcement:
    """What an entry covers. Raises ``ValueError`` (a bad id, no or a bad ``n``, a bad ``s``, or
    an entry that covers no position at all)."""
    last = parse_entry_id(entry_id)
    count = _number(entry_id, fields, COUNT_FIELD)
    if count is None:
        raise ValueError(f"tail entry {entry_id!r} announces no event")
    empty = _number(entry_id, fields, EMPTY_FIELD) or 0
    if count + empty < 1:
        raise ValueError(f"tail entry {entry_id!r} covers no position")
    return Announcement(last - count - empty + 1, last, empty)


def entry_count(entry_id: object, fields: Mapping[bytes | str, object] | None) -> int:
    """How many events an entry announces. Raises like ``parse_entry``."""
    return parse_entry(entry_id, fields).count


def entry_empty(entry_id: object, fields: Mapping[bytes | str, object] | None) -> int:
    """How many empty positions an entry covers before its events (``s``; 0 when absent).
    Raises like ``parse_entry``."""
    return parse_entry(entry_id, fields).empty


def first_position(entry_id: object, fields: Mapping[bytes | str, object] | None) -> int:
    """The first global position an entry covers (its empty ones included). Raises like
    ``parse_entry``."""
    return parse_entry(entry_id, fields).first


def empty_ranges(entries: Sequence[Announcement], after: int = -1) -> list[tuple[int, int]]:
    """The positions ``entries`` ending above ``after`` say hold no event, as ``(lo, hi)``."""
    return [r for e in entries if e.last > after and (r := e.empty_range) is not None]


async def last_announced(redis: RedisClient, tk: TenantKeys) -> int | None:
    """The last position the tenant's tail stream announces; None when it holds no entry. One
    ``XREVRANGE``. Raises the client's ``RedisError``s, and ``ValueError`` for an entry that is
    not a tail entry."""
    last: Any = await reply(redis.xrevrange(tk.tail, "+", "-", count=1))
    return parse_entry_id(last[0][0]) if last else None


async def first_announced(redis: RedisClient, tk: TenantKeys) -> int | None:
    """The first position the tenant's tail stream still holds (trimming drops whole entries
    from the front); None when it holds no entry. One ``XRANGE``. Raises like
    ``last_announced``."""
    first: Any = await reply(redis.xrange(tk.tail, "-", "+", count=1))
    return first_position(first[0][0], first[0][1]) if first else None


async def announced_after(redis: RedisClient, tk: TenantKeys, after: int, *, count: int,
                          block_ms: int | None = None) -> tuple[list[Announcement], list[str]]:
    """The entries of the tenant's tail stream whose last position is above ``after``, oldest
    first, at most ``count``: one ``XRANGE``, or with ``block_ms`` one ``XREAD BLOCK`` that waits
    up to that long for an entry when there is none yet (the live tail's reader). Returns the
    entries and the ids of those that are not tail entries (skipped; the caller reports them).
    Raises the client's ``RedisError``s."""
    rows: list[tuple[Any, Any]]
    if block_ms is None:
        raw: Any = await reply(redis.xrange(tk.tail, f"({after}-0", "+", count=count))
        rows = list(raw or [])
    else:
        resp: Any = await reply(redis.xread({tk.tail: f"{after}-0"}, count=count, block=block_ms))
        rows = _entries_of(resp)
    good: list[Announcement] = []
    bad: list[str] = []
    for entry_id, fields in rows:
        try:
            good.append(parse_entry(entry_id, fields))
        except ValueError:
            bad.append(entry_id.decode("ascii", "replace") if isinstance(entry_id, bytes) else str(entry_id))
    return good, bad


def _entries_of(resp: Any) -> list[tuple[Any, Any]]:
    """Entries of a single-key XREAD reply (list form ``[[key, entries]]`` or RESP3 dict form;
    None when the block timed out)."""
    if not resp:
        return []
    if isinstance(resp, dict):
        out: list[tuple[Any, Any]] = []
        for value in resp.values():
            out.extend(value[0] if value and isinstance(value[0], list) else value)
        return out
    return [e for _key, entries in resp for e in entries]
