"""The query engine: one entry point for every read surface (native API, compatible endpoints,
live-tail catch-up).

Per request the tenant's archive watermark ``W`` is read once; the plan splits the time range at
``W`` (hot ``ts >= W``, cold ``ts < W``; in position order the hot part also covers the late
events below ``W`` that are still only in Redis: ``planner.plan_for``). After the hot read the
watermark is read again: if the archiver advanced it to ``W2`` meanwhile (and may have removed
hot windows below ``W2``), the cold range ``[W, W2)`` is read as well and merged with
de-duplication by id — the archiver publishes to Parquet before it advances ``W`` and removes
from Redis, so the union is complete.
A first page newest-first (the commonest request) reads ``W`` inside its first hot call instead
(``HotReader.first_page``: W, the range clamped at it and the bodies in one atomic script):
nothing can move between that W and those reads.

Cursor stability: a cursor carries the last sort position (and the first page's ``W``). Every
later page re-reads the current ``W`` and continues strictly after the position over the union
of both tiers, which always holds every event that existed at the first page exactly once
(events only ever move hot → cold, published before removal). So a page walk never skips or
repeats such an event, whatever the archiver does in between.

All methods may block on Redis / DuckDB; they raise ``ApiError`` for bad cursors and queries
that exceed documented limits, and the Redis / DuckDB errors of the backends otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.hotstore.interface import HotStore
from eventstrata.model import Event
from eventstrata.query.cold import ColdExecutor, ColdQuery
from eventstrata.query.cursor import CursorState, decode_cursor, encode_cursor
from eventstrata.query.filters import EventFilter, Order, SortKey
from eventstrata.query.hot_reader import HotReader
from eventstrata.query.merge import SortPos, SourceResult, merge_results, sort_position
from eventstrata.query.params import MAX_LIMIT, MAX_OFFSET
from eventstrata.query.planner import ColdPlan, HotPlan, Plan, plan_cold, plan_for, plan_query

Observer = Callable[[str, float], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """A page of events. A page read from the hot tier alone is a ``StoredEvents`` (decoded
    when accessed; the native API renders it without decoding)."""

    events: Sequence[Event]
    next_cursor: str | None
    total: int | None = None


class QueryEngine:
    """Reads of one deployment. ``secret`` signs cursors (see ``cursor_secret``)."""

    def __init__(self, hot: HotStore, cold: ColdQuery, *,
                 secret: bytes, hot_scan_cap: int = 50_000, cold_scan_cap: int = 50_000,
                 observe: Observer | None = None) -> None:
        self._store = hot
        self._hot = HotReader(hot, scan_cap=hot_scan_cap)
        self._cold = ColdExecutor(cold, scan_cap=cold_scan_cap)
        self._secret = secret
        self._observe = observe

    async def watermark(self, tenant: str) -> int:
        return await self._store.watermark(tenant)

    async def _timed(self, tier: str, aw: Awaitable[T]) -> T:
        if self._observe is None:
            return await aw
        t0 = time.perf_counter()
        try:
            return await aw
        finally:
            self._observe(tier, time.perf_counter() - t0)

    # -- pages ---------------------------------------------------------------------------
    async def page(self, tenant: str, flt: EventFilter, *, order: Order = "desc", sort: SortKey = "time",
                   limit: int = 50, cursor: str | None = None, include_total: bool = False,
                   now_ms: int) -> Page:
        """One page strictly after ``cursor`` (or from the start). ``next_cursor`` is None when
        there are no more events. Raises ``ApiError(400, "invalid_cursor")`` for a cursor of
        another tenant/filter/order/sort or a forged one."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "invalid_parameter", f"limit must be 1..{MAX_LIMIT}",
                           (ErrorDetail("limit", f"must be 1..{MAX_LIMIT}"),))
        after: SortPos | None = None
        first_w: int | None = None
        if cursor is not None:
            state = decode_cursor(self._secret, cursor, tenant, flt, order=order, sort=sort)
            after, first_w = state.position, state.watermark
        events, nxt, w = await self._collect(tenant, flt, order=order, sort=sort, limit=limit,
                                             after=after, now_ms=now_ms)
        token = None
        if nxt is not None:
            token = encode_cursor(self._secret, tenant, flt,
                                  CursorState(nxt, first_w if first_w is not None else w, order, sort))
        total = await self.count(tenant, flt, now_ms=now_ms) if include_total else None
        return Page(events, token, total)

    async def _collect(self, tenant: str, flt: EventFilter, *, order: Order, sort: SortKey, limit: int,
                       after: SortPos | None, now_ms: int) -> tuple[Sequence[Event], SortPos | None, int]:
        first: SourceResult | None = None
        w: int | None = None
        if sort == "time" and order == "desc" and after is None:
            # The commonest request: its hot part (one index key) is read in one call that also
            # reads W, atomically; W then splits the plan as if it had been read first.
            unclamped = plan_query(flt, watermark=0, now_ms=now_ms).hot
            if unclamped is not None:
                first, w = await self._timed("hot", self._hot.first_page(tenant, unclamped, flt, want=limit))
        if w is None:
            w = await self.watermark(tenant)
        plan = plan_for(flt, sort=sort, watermark=w, now_ms=now_ms)
        results: list[SourceResult] = []
        hot_read = False
        if sort == "time":
            # Tiers do not interleave by time: desc reads hot first, asc reads cold first; the
            # second tier is read only when the first is exhausted and the page is not full.
            tiers = ("hot", "cold") if order == "desc" else ("cold", "hot")
            got = 0
            for tier in tiers:
                if results and (not results[-1].exhausted or got >= limit):
                    if results[-1].exhausted and results[-1].events:
                        # The later tier was not read: it only holds events after the earlier
                        # tier's last one, so it is "examined" up to exactly there.
                        last = sort_position(results[-1].events[-1], sort)
                        results.append(SourceResult((), False, last))
                    break
                if tier == "hot" and first is not None:
                    res = first if plan.hot is not None else None
                else:
                    res = await self._read_tier(tier, tenant, plan, flt, order=order, sort=sort,
                                                after=after, want=limit - got)
                if res is None:
                    continue
                hot_read = hot_read or tier == "hot"
                results.append(res)
                got += len(res.events)
        else:
            for tier in ("hot", "cold"):
                res = await self._read_tier(tier, tenant, plan, flt, order=order, sort=sort,
                                               after=after, want=limit)
                if res is not None:
                    hot_read = hot_read or tier == "hot"
                    results.append(res)
        if hot_read and plan.hot is not None:
            # W again, after every hot read: the hot tier's last read (bodies) carries it when
            # it read any, else one more GET. Events the archiver moved meanwhile are in [w, w2).
            hot_w = [r.watermark_after for r in results if r.watermark_after is not None]
            w2 = hot_w[-1] if hot_w else await self.watermark(tenant)
            if w2 > w:
                extra = self._gap_plan(flt, w, w2)
                if extra is not None:
                    results.append(await self._timed("cold", self._cold.scan(
                        tenant, extra, flt, sort=sort, order=order, after=after, want=limit)))
        merged = merge_results(results, order=order, sort=sort, limit=limit)
        return merged.events, merged.next_position, w

    @staticmethod
    def _gap_plan(flt: EventFilter, w: int, w2: int) -> ColdPlan | None:
        lo = w if flt.since_ms is None else max(flt.since_ms, w)
        hi = w2 if flt.until_ms is None else min(flt.until_ms, w2)
        if lo >= hi:
            return None
        return plan_cold(flt, lo, hi)

    async def _read_tier(self, tier: str, tenant: str, plan: Plan, flt: EventFilter, *, order: Order,
                         sort: SortKey, after: SortPos | None, want: int) -> SourceResult | None:
        if tier == "hot":
            hp: HotPlan | None = plan.hot
            if hp is None:
                return None
            if sort == "time":
                return await self._timed("hot", self._hot.scan_time(tenant, hp, flt, order=order,
                                                                     after=after, want=want))
            if sort == "gpos":
                return await self._timed("hot", self._hot.scan_gpos(tenant, hp, flt, order=order,
                                                                     after=after, want=want))
            return await self._timed("hot", self._hot.scan_spos(tenant, hp, flt, order=order,
                                                                 after=after, want=want))
        cp = plan.cold
        if cp is None:
            return None
        return await self._timed("cold", self._cold.scan(tenant, cp, flt, sort=sort, order=order,
                                                         after=after, want=want))

    async def page_offset(self, tenant: str, flt: EventFilter, *, order: Order = "desc",
                          sort: SortKey = "time", limit: int = 50, offset: int = 0,
                          include_total: bool = False, now_ms: int) -> Page:
        """Offset paging (compatible endpoints): skip ``offset`` matching events (≤ 10,000), then
        up to ``limit``. ``next_cursor`` continues after the page like ``page``'s."""
        if not 0 <= offset <= MAX_OFFSET:
            raise ApiError(400, "invalid_parameter", f"offset must be 0..{MAX_OFFSET}",
                           (ErrorDetail("offset", f"must be 0..{MAX_OFFSET}"),))
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "invalid_parameter", f"limit must be 1..{MAX_LIMIT}",
                           (ErrorDetail("limit", f"must be 1..{MAX_LIMIT}"),))
        collected: list[Event] = []
        after: SortPos | None = None
        nxt: SortPos | None = None
        w = 0
        target = offset + limit
        first = True
        while len(collected) < target and (first or nxt is not None):
            first = False
            events, nxt, w = await self._collect(tenant, flt, order=order, sort=sort,
                                                 limit=min(MAX_LIMIT, target - len(collected)),
                                                 after=after, now_ms=now_ms)
            collected.extend(events)
            after = nxt
        page = tuple(collected[offset:target])
        token = None
        if nxt is not None and page:
            token = encode_cursor(self._secret, tenant, flt,
                                  CursorState(sort_position(page[-1], sort), w, order, sort))
        total = await self.count(tenant, flt, now_ms=now_ms) if include_total else None
        return Page(page, token, total)

    # -- counts and lookups --------------------------------------------------------------
    async def count(self, tenant: str, flt: EventFilter, *, now_ms: int) -> int:
        """Exact number of matching events over both tiers (split at one read of W; W is read
        again after the hot count -- by the hot count's last Redis call when it can carry it).
        A count the hot indexes decide alone reads W and counts the hot part in one atomic
        call (``HotReader.count_clamped``), then the archive below that W.
        """
        clamped = await self._clamped_counts(tenant, flt, now_ms=now_ms, bucket_ms=None)
        if clamped is not None:
            n, _, cold = clamped
            return n if cold is None else n + await self._cold.count(tenant, cold, flt)
        w = await self.watermark(tenant)
        plan = plan_query(flt, watermark=w, now_ms=now_ms)
        n = 0
        w2: int | None = None
        if plan.hot is not None:
            n, w2 = await self._hot_count(tenant, plan.hot, flt)
        if w2 is None:
            w2 = await self.watermark(tenant)
        cold = plan.cold
        if w2 > w:
            # Hot windows below w2 may have vanished during the hot count: count [.., w2) cold
            # and only the hot part at or above w2.
            plan2 = plan_query(flt, watermark=w2, now_ms=now_ms)
            n = 0 if plan2.hot is None else (await self._hot_count(tenant, plan2.hot, flt))[0]
            cold = plan2.cold
        if cold is not None:
            n += await self._cold.count(tenant, cold, flt)
        return n

    async def _clamped_counts(self, tenant: str, flt: EventFilter, *, now_ms: int, bucket_ms: int | None
                              ) -> tuple[int, dict[int, int], ColdPlan | None] | None:
        """The hot count (and buckets) read atomically with W by one call, and the cold plan
        below that W; None when the hot indexes do not decide the count alone (post-filter),
        the range is empty, or the tenant is sharded (the caller takes the general path).
        Events below W are in the archive before W is raised, and the hot tier loses none at or
        above W, so the two parts count every event once."""
        unclamped = plan_query(flt, watermark=0, now_ms=now_ms).hot
        if unclamped is None or unclamped.post_filter or not self._hot.counts_at_watermark(tenant):
            return None
        n, buckets, w = await self._timed("hot", self._hot.count_clamped(tenant, unclamped, bucket_ms))
        return n, buckets, plan_query(flt, watermark=w, now_ms=now_ms).cold

    async def _hot_count(self, tenant: str, hp: HotPlan, flt: EventFilter) -> tuple[int, int | None]:
        """The hot count, and W as read after every hot read of it (None when the last read
        could not carry it: the caller reads it)."""
        if not hp.post_filter:
            return await self._hot.count_fast(tenant, hp)
        n = 0
        after: SortPos | None = None
        while True:
            res = await self._hot.scan_time(tenant, hp, flt, order="asc", after=after, want=MAX_LIMIT)
            n += len(res.events)
            if res.exhausted:
                return n, res.watermark_after
            after = res.boundary

    async def count_buckets(self, tenant: str, flt: EventFilter, *, bucket_ms: int,
                            now_ms: int) -> dict[int, int]:
        """Matching events per ``bucket_ms`` bucket (aligned to the epoch, UTC): start → count.
        Buckets without events are absent."""
        clamped = await self._clamped_counts(tenant, flt, now_ms=now_ms, bucket_ms=bucket_ms)
        if clamped is not None:
            _, out, cold = clamped
            if cold is not None:
                for b, c in (await self._cold.bucket_counts(tenant, cold, flt, bucket_ms)).items():
                    out[b] = out.get(b, 0) + c
            return dict(sorted(out.items()))
        w = await self.watermark(tenant)
        plan = plan_query(flt, watermark=w, now_ms=now_ms)
        out = {}
        if plan.hot is not None:
            if not plan.hot.post_filter:
                for b, c in (await self._hot.bucket_counts(tenant, plan.hot, bucket_ms)).items():
                    out[b] = out.get(b, 0) + c
            else:
                times: list[int] = []
                after: SortPos | None = None
                while True:
                    res = await self._hot.scan_time(tenant, plan.hot, flt, order="asc", after=after,
                                                    want=MAX_LIMIT)
                    times.extend(e.timestamp for e in res.events)
                    if res.exhausted:
                        break
                    after = res.boundary
                for ts in times:
                    b = ts - ts % bucket_ms
                    out[b] = out.get(b, 0) + 1
        if plan.cold is not None:
            for b, c in (await self._cold.bucket_counts(tenant, plan.cold, flt, bucket_ms)).items():
                out[b] = out.get(b, 0) + c
        return dict(sorted(out.items()))

    async def get(self, tenant: str, event_id: str, *, now_ms: int) -> Event | None:
        """The event with ``event_id`` of ``tenant`` from either tier, or None."""
        del now_ms
        # one Redis call: the read script finds the id's time and user in ids, then its body
        found = await self._hot.by_ids(tenant, [event_id])
        if found[0] is not None:
            return found[0]
        return await self._cold.get(tenant, event_id)

