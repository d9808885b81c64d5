"""Reading stored events after a position, in position order, one page at a time.

Two sources, chosen per page by ``resume.plan_source``:

- the tail stream itself (the entries whose last position is above ``pos``:
  ``hotstore.tailentry.announced_after``) while it still holds ``position + 1``,
  with the announced events read from the hot tier by position — cheap and exact; a page whose
  first entry starts after ``position + 1`` (the stream was trimmed meanwhile) or whose events
  are not all hot any more is re-read from the tiers;
- the query tiers (``QueryEngine.page(sort="gpos", order="asc")`` with ``min_gpos = position+1``),
  hot then cold, for positions older than what the stream holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from eventstrata.errors import ApiError
from eventstrata.hotstore.interface import HotStore
from eventstrata.hotstore.tailentry import empty_ranges
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter, Order, SortKey
from eventstrata.tail.buffer import TailEntry, make_entry
from eventstrata.tail.hub import events_between
from eventstrata.tail.resume import plan_source, stream_page_is_contiguous

log = logging.getLogger(__name__)

STREAM_PAGE_ENTRIES = 32
"""Tail stream entries per catch-up page read from the stream (an entry holds one write call's
new events: a live trickle gives entries of one event, a bulk load entries of up to 500)."""


class PageLike(Protocol):
    @property
    def events(self) -> Sequence[Event]: ...

    @property
    def next_cursor(self) -> str | None: ...


class TierReader(Protocol):
    """What the tail needs of ``eventstrata.query.engine.QueryEngine``."""

    async def page(
        self,
        tenant: str,
        flt: EventFilter,
        *,
        order: Order = ...,
        sort: SortKey = ...,
        limit: int = ...,
        cursor: str | None = ...,
        include_total: bool = ...,
        now_ms: int,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class TierCursor:
    """Continuation of a tier walk: the exact filter of its first page and the engine's cursor
    (a page may stop early at the engine's scan cap with fewer events and a cursor)."""

    flt: EventFilter
    cursor: str


@dataclass(frozen=True, slots=True)
class CatchUpPage:
    """``entries``: matching events after the requested position, ascending; ``position``: the
    position this page proves covered (every matching event up to it is in ``entries`` or was
    before the request); ``exhausted``: nothing more was stored when the page was read;
    ``source``: where it came from; ``resume``: pass it to the next ``read_page`` to continue
    a tier walk."""

    entries: tuple[TailEntry, ...]
    position: int
    exhausted: bool
    source: str
    resume: TierCursor | None = None


class CatchUpUnavailable(Exception):
    """The events after a position are no longer in the stream and no tier reader is configured."""


class CatchUp:
    """Pages of stored events after a position. Blocks only on the hot store / the query engine.

    Raises the hot store's errors (Redis: the client's ``RedisError``s), ``ApiError`` from the
    engine, and ``CatchUpUnavailable``.
    """

    def __init__(
        self,
        store: HotStore,
        tiers: TierReader | None,
        *,
        page_size: int = 500,
        now_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._tiers = tiers
        self._page_size = page_size
        self._now_ms = now_ms

    async def stream_first(self, tenant: str) -> int | None:
        """The first position the tenant's tail stream still holds, or None when it is empty."""
        return await self._store.first_announced(tenant)

    async def read_page(self, tenant: str, flt: EventFilter, position: int,
                        resume: TierCursor | None = None) -> CatchUpPage:
        """The next page of matching events with ``gpos > position`` (continuing ``resume``,
        the previous page's tier cursor, when given)."""
        if resume is not None:
            return await self._tier_page(tenant, resume.flt, position, resume.cursor)
        if plan_source(position, await self.stream_first(tenant)) == "stream":
            page = await self._stream_page(tenant, flt, position)
            if page is not None:
                return page
        lower = position + 1 if flt.min_gpos is None else max(position + 1, flt.min_gpos)
        return await self._tier_page(tenant, replace(flt, min_gpos=lower), position, None)

    async def _stream_page(self, tenant: str, flt: EventFilter, position: int) -> CatchUpPage | None:
        """The events announced by up to ``STREAM_PAGE_ENTRIES`` entries after ``position``
        (each announces the new events of one write call: one to a few hundred), read from the
        hot tier by position; None when the stream or the hot tier no longer holds them all."""
        rows, bad = await self._store.announced_after(tenant, position, count=STREAM_PAGE_ENTRIES)
        if bad:
            return None  # read that stretch from the tiers
        first = rows[0].first if rows else None
        if not stream_page_is_contiguous(position, first):
            return None
        if not rows:
            return CatchUpPage((), position, True, "stream")
        last = rows[-1].last
        events = await events_between(self._store, tenant, position, last, empty_ranges(rows))
        if events is None:
            return None
        out = tuple(e for e in events if flt.matches(e.event))
        return CatchUpPage(out, last, len(rows) < STREAM_PAGE_ENTRIES, "stream")

    async def _tier_page(self, tenant: str, flt: EventFilter, position: int,
                         cursor: str | None) -> CatchUpPage:
        if self._tiers is None:
            raise CatchUpUnavailable(
                f"events after position {position} are no longer in the live stream "
                "and no query tiers are configured"
            )
        page = await self._tiers.page(
            tenant,
            flt,
            order="asc",
            sort="gpos",
            limit=self._page_size,
            cursor=cursor,
            include_total=False,
            now_ms=self._now_ms(),
        )
        out: list[TailEntry] = []
        reached = position
        for event in page.events:
            gpos = event.global_position
            if gpos is None or gpos <= reached:
                raise ApiError(500, "internal",
                               f"catch-up read returned an event out of position order ({gpos})")
            out.append(make_entry(gpos, event))
            reached = gpos
        nxt = page.next_cursor
        return CatchUpPage(tuple(out), reached, nxt is None, "tiers",
                           None if nxt is None else TierCursor(flt, nxt))
