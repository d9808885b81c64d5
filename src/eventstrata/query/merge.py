"""Merging the results of several sources (hot tier, cold tier) into one page. Pure.

Each source returns the matching events strictly after the request's cursor, in the requested
order, and says whether it is ``exhausted`` (nothing more after its last event within its range)
or, if not, up to which sort position it has looked (``boundary``). The merged page may only
contain events at or before the earliest boundary of any non-exhausted source — beyond it, that
source might still hold events that sort earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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

    events: tuple[Event, ...]
    exhausted: bool
    boundary: SortPos | None = None  # last position examined; required when not exhausted
    watermark_after: int | None = None
    """The archive watermark as read after the source's last read (hot tier only, when it read
    bodies), so the engine need not read it again; None = not read."""


@dataclass(frozen=True, slots=True)
class Merged:
    events: tuple[Event, ...]
    next_position: SortPos | None  # continue strictly after this; None = no more pages


def merge_results(results: Sequence[SourceResult], *, order: Order, sort: SortKey, limit: int) -> Merged:
    """Merge sources by ``sort`` in ``order``, de-duplicating by event id (first kept), and cut
    the page at ``limit`` events and at the earliest boundary of a non-exhausted source."""
    seen: set[str] = set()
    items: list[tuple[SortPos, Event]] = []
    for r in results:
        for e in r.events:
            if e.id in seen:
                continue
            seen.add(e.id)
            items.append((sort_position(e, sort), e))
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
        return Merged(tuple(e for _, e in page), page[-1][0])
    if len(items) == limit and limit > 0 and cut is not None:
        return Merged(tuple(e for _, e in items), items[-1][0])
    if cut is not None:
        return Merged(tuple(e for _, e in items), cut)
    return Merged(tuple(e for _, e in items), None)
