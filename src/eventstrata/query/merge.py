"""Merging the results of several sources (hot tier, cold tier) into one page. Pure.

Each source returns the matching events strictly after the request's cursor, in the requested
order, and says whether it is ``exhausted`` (nothing more after its last event within its range)
or, if not, up to which sort position it has looked (``boundary``). The merged page may only
contain events at or before the earliest boundary of any non-exhausted source — beyond it, that
source might still hold events that sort earlier.

A hot source's events are a ``StoredEvents``: for the time sort the merge orders them by their
known positions without decoding them, and a page that is a prefix of one source is that
source's slice (still undecoded, for the native API's ``native_json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventstrata.hotstore.stored import StoredEvents
from eventstrata.model import Event
from eventstrata.query.filters import Order, SortKey

SortPos = tuple[Any, ...]


def sort_position(e: Event, sort: SortKey) -> SortPos:
    """The total-order key of ``e`` for ``sort`` (ascending sense).

    time → ``(timestamp, id)``; gpos → ``(global_position or -1, id)``;
    spos → ``(stream_position or -1, timestamp, id)``.
    """
    if sort == "time":
        return (e.timestamp, e.id)
    if sort == "gpos":
        return (e.global_position if e.global_position is not None else -1, e.id)
    return (e.stream_position if e.stream_position is not None else -1, e.timestamp, e.id)


def before(a: SortPos, b: SortPos, order: Order) -> bool:
    """True when position ``a`` comes strictly before ``b`` in ``order``."""
    return a < b if order == "asc" else a > b


def after_cursor(pos: SortPos, cursor: SortPos | None, order: Order) -> bool:
    """True when ``pos`` comes strictly after ``cursor`` (always, when there is no cursor)."""
    return cursor is None or before(cursor, pos, order)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """Matching events of one source, in order, all strictly after the cursor."""

    events: Sequence[Event]
    exhausted: bool
    boundary: SortPos | None = None  # last position examined; required when not exhausted
    watermark_after: int | None = None
    """The archive watermark as read after the source's last read (hot tier only, when it read
    bodies), so the engine need not read it again; None = not read."""


@dataclass(frozen=True, slots=True)
class Merged:
    events: Sequence[Event]
    next_position: SortPos | None  # continue strictly after this; None = no more pages


def _keyed(events: Sequence[Event], sort: SortKey) -> Iterable[tuple[SortPos, str]]:
    """``(sort position, id)`` of each event, without decoding stored ones where possible."""
    if sort == "time" and isinstance(events, StoredEvents):
        return ((p, p[1]) for p in events.positions)
    return ((sort_position(e, sort), e.id) for e in events)


def merge_results(results: Sequence[SourceResult], *, order: Order, sort: SortKey, limit: int) -> Merged:
    """Merge sources by ``sort`` in ``order``, de-duplicating by event id (first kept), and cut
    the page at ``limit`` events and at the earliest boundary of a non-exhausted source."""
    seen: set[str] = set()
    items: list[tuple[SortPos, int, int]] = []  # (position, source, index in the source)
    for s, r in enumerate(results):
        for i, (pos, eid) in enumerate(_keyed(r.events, sort)):
            if eid in seen:
                continue
            seen.add(eid)
            items.append((pos, s, i))
    items.sort(key=lambda t: t[0], reverse=(order == "desc"))
    cut: SortPos | None = None
    for r in results:
        if not r.exhausted:
            b = r.boundary
            if b is None:
                raise ValueError("a non-exhausted source must report its boundary")
            if cut is None or before(b, cut, order):
                cut = b
    if cut is not None:
        items = [t for t in items if not before(cut, t[0], order)]
    if len(items) > limit:
        page = items[:limit]
        return Merged(_pick(results, page), page[-1][0])
    if len(items) == limit and limit > 0 and cut is not None:
        return Merged(_pick(results, items), items[-1][0])
    return Merged(_pick(results, items), cut)


def _pick(results: Sequence[SourceResult], items: Sequence[tuple[SortPos, int, int]]) -> Sequence[Event]:
    """The events of ``items``: a slice of their source when they are its first ``len(items)``
    in order (no decoding), else a tuple."""
    if items:
        src = items[0][1]
        if all(s == src and i == k for k, (_, s, i) in enumerate(items)):
            return results[src].events[: len(items)]
    return tuple(results[s].events[i] for _, s, i in items)
