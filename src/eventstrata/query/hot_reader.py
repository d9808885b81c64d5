"""Hot-tier executor: reads the index family chosen by the planner through the hot store
(``hotstore.interface.HotStore``; on Redis one call of the read script per round).

Every round is one ``HotStore.scan``: the family's events over the plan's range, in the
requested order, strictly after a ``(ts, id)`` position, with their bodies and positions, and
the archive watermark read after them. ``EventFilter.matches`` post-filters.

Bounded work: a call examines at most ``scan_cap`` index members; when it stops early it
returns a non-exhausted ``SourceResult`` whose boundary is the last examined position, so the
page may come back partial with a cursor (documented in docs/API.md).

sort=gpos reads the tenant's events by global position (``HotStore.by_position``). sort=spos collects
every matching hot event (at most ``spos_cap``, else ``ApiError(400, "query_too_broad")``) and
sorts them in memory.

All methods may block on the store and raise its errors (Redis: the client's ``RedisError``s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.interface import HotStore
from eventstrata.hotstore.read import Row
from eventstrata.hotstore.stored import StoredEvents
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter, Order
from eventstrata.query.merge import SortPos, SourceResult, after_cursor, sort_position
from eventstrata.query.planner import HotPlan

DEFAULT_SCAN_CAP = 50_000
SPOS_CAP = 10_000
MAX_BATCH = 1000
EXAMINE = 2000
"""Most members a (user, type) source examines per call (they are filtered inside Redis)."""


class HotReader:
    """Reads one tenant's hot tier for the query engine, through ``store``. Stateless apart from
    the store."""

    def __init__(self, store: HotStore, *, scan_cap: int = DEFAULT_SCAN_CAP,
                 codec: BodyCodec | None = None) -> None:
        self._store = store
        self._codec = codec if codec is not None else BodyCodec()
        self.scan_cap = scan_cap

    async def by_ids(self, tenant: str, ids: Sequence[str]) -> list[Event | None]:
        """Events of ``ids`` (None where absent), one call."""
        rows = await self._store.rows(tenant, ids)
        return [None if r is None else self._codec.stored_event(r.body, r.ref, r.id, r.ts) for r in rows]

    # -- sort = time ---------------------------------------------------------------------
    async def scan_time(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                        after: SortPos | None, want: int, post_filter: bool = True,
                        first: bool = False) -> SourceResult:
        """Up to ``want`` matching events strictly after ``after`` (a ``(ts, id)``).

        Each round is one read-script call (index range, bodies, then a read of the archive
        watermark): the result's ``watermark_after`` is W as the last call read it. With
        ``first`` the first call also reads W before anything else and clamps the range at it
        (``first_page``). The result's events are a ``StoredEvents`` (decoded where the
        post-filter needed them, else when accessed)."""
        res, _ = await self._scan(tenant, plan, flt, order=order, after=after, want=want,
                                  post_filter=post_filter, first=first)
        return res

    async def first_page(self, tenant: str, plan: HotPlan, flt: EventFilter, *, want: int,
                         post_filter: bool = True) -> tuple[SourceResult, int]:
        """``scan_time(order="desc", after=None)`` for a plan whose range is not yet clamped at
        the archive watermark: the first call reads W, then the range clamped at it, in one
        atomic script. Returns the result and that W."""
        res, w = await self._scan(tenant, plan, flt, order="desc", after=None, want=want,
                                  post_filter=post_filter, first=True)
        assert w is not None
        return res, w

    async def _scan(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                    after: SortPos | None, want: int, post_filter: bool,
                    first: bool) -> tuple[SourceResult, int | None]:
        src = plan.sources()
        lo, hi = plan.lo, plan.hi
        matched = StoredEvents(self._codec)
        if hi is not None and lo >= hi:
            return SourceResult(matched, True), (await self._store.watermark(tenant) if first else None)
        filtering = post_filter and plan.post_filter
        scanned = 0
        pos: tuple[int, str] | None = None if after is None else (int(after[0]), str(after[1]))
        batch_factor = 4
        first_w: int | None = None
        while True:
            need = want - len(matched)
            batch = min(MAX_BATCH, max(16, need * batch_factor)) if filtering else min(MAX_BATCH, need)
            examine = min(EXAMINE, max(batch, self.scan_cap - scanned))
            r = await self._store.scan(tenant, src, lo=lo, hi=hi, order=order, after=pos, limit=batch,
                           examine=examine, first=first and first_w is None, then_w=True)
            if r.w is not None:
                first_w = r.w
                lo = max(lo, r.w)
            scanned += examine if src.family == "ut" and not r.complete else len(r.rows)
            done = _match_round(r.rows, flt, filtering=filtering, want=want, rest=r.complete,
                                matched=matched, codec=self._codec)
            if done is not None:
                return replace(done, watermark_after=r.w_after), first_w
            assert r.boundary is not None
            pos = r.boundary
            if scanned >= self.scan_cap:
                return SourceResult(matched, False, pos, watermark_after=r.w_after), first_w
            batch_factor = min(batch_factor * 2, 64)

    # -- sort = gpos ---------------------------------------------------------------------
    async def scan_gpos(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                        after: SortPos | None, want: int) -> SourceResult:
        """Up to ``want`` matching hot events (ts in the plan's range) strictly after ``after``
        (a ``(gpos, id)``), ordered by global position, read from the seq blocks."""
        matched: list[Event] = []
        scanned = 0
        pos = after
        last: int | None = None if after is None else int(after[0])
        batch_factor = 2
        while len(matched) < want:
            if scanned >= self.scan_cap:
                assert pos is not None
                return SourceResult(tuple(matched), False, pos)
            batch = min(MAX_BATCH, max(16, (want - len(matched)) * batch_factor))
            got = await self._store.by_position(tenant, after=last, order=order, limit=batch,
                                                least=flt.min_gpos, greatest=flt.max_gpos)
            scanned += len(got)
            for sr in got:
                row = sr.row
                if row is None or row.ts < plan.lo or (plan.hi is not None and row.ts >= plan.hi):
                    continue
                e = self._codec.stored_event(row.body, row.ref, row.id, row.ts)
                if flt.matches(e):
                    matched.append(e)
                    if len(matched) >= want:
                        return SourceResult(tuple(matched), False, (sr.gpos, sr.id))
            if len(got) < batch:
                return SourceResult(tuple(matched), True)
            last = got[-1].gpos
            pos = (last, got[-1].id)
            batch_factor = min(batch_factor * 2, 64)
        assert pos is not None
        return SourceResult(tuple(matched), False, pos)

    # -- sort = spos ---------------------------------------------------------------------
    async def scan_spos(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                        after: SortPos | None, want: int) -> SourceResult:
        """Matching hot events ordered by ``(stream_position, ts, id)``: collects all matching
        events of the hot range (at most ``SPOS_CAP``) and sorts them in memory."""
        res = await self.scan_time(tenant, plan, flt, order="asc", after=None, want=SPOS_CAP + 1)
        if len(res.events) > SPOS_CAP or not res.exhausted:
            raise ApiError(400, "query_too_broad",
                           f"sort=spos reads at most {SPOS_CAP} hot events; add stream_id or a time range",
                           (ErrorDetail("sort", "too many candidate events for sort=spos"),))
        items = sorted(res.events, key=lambda e: sort_position(e, "spos"), reverse=(order == "desc"))
        items = [e for e in items if after_cursor(sort_position(e, "spos"), after, order)]
        if len(items) > want:
            return SourceResult(tuple(items[:want]), False, sort_position(items[want - 1], "spos"))
        return SourceResult(tuple(items), True)

    # -- counting ------------------------------------------------------------------------
    async def count_fast(self, tenant: str, plan: HotPlan) -> tuple[int, int]:
        """Exact count without bodies (only valid when ``plan.post_filter`` is False), then the
        archive watermark, in one call. Returns ``(count, watermark read after the count)``."""
        w, n, _ = await self._store.count(tenant, plan.sources(), lo=plan.lo, hi=plan.hi)
        return n, w

    async def bucket_counts(self, tenant: str, plan: HotPlan, bucket_ms: int) -> dict[int, int]:
        """Events per ``bucket_ms`` bucket in the plan's range (only valid when
        ``plan.post_filter`` is False), one call."""
        _, _, buckets = await self._store.count(tenant, plan.sources(), lo=plan.lo, hi=plan.hi,
                                                bucket_ms=bucket_ms)
        return buckets

    def counts_at_watermark(self, tenant: str) -> bool:
        """Whether ``count_clamped`` serves ``tenant``: its hot tier is in one slot (a sharded
        tenant's shards each hold a mirror of W)."""
        return self._store.counts_at_watermark(tenant)

    async def count_clamped(self, tenant: str, plan: HotPlan,
                            bucket_ms: int | None = None) -> tuple[int, dict[int, int], int]:
        """``count_fast`` (and ``bucket_counts`` with ``bucket_ms``) of a plan whose range is
        not yet clamped at the archive watermark: one atomic call reads W and counts
        ``[max(lo, W), hi)``. Returns ``(count, buckets, W)``; the caller counts ``[lo, W)``
        in the archive. Only for a tenant ``counts_at_watermark`` accepts (else
        ``ValueError``)."""
        w, n, buckets = await self._store.count(tenant, plan.sources(), lo=plan.lo, hi=plan.hi,
                                                bucket_ms=bucket_ms, clamp=True)
        return n, buckets, w


def _match_round(rows: Sequence[Row], flt: EventFilter, *, filtering: bool, want: int,
                 rest: bool, matched: StoredEvents, codec: BodyCodec) -> SourceResult | None:
    """One round of a time scan, pure (apart from decoding): appends the round's matching events
    to ``matched``, decoding them only when ``filtering``.
    Returns the result when the page is full (exhausted only if that was the range's last
    event) or when nothing follows the round (``rest``); None when the scan must read on after
    the round's boundary."""
    for i, row in enumerate(rows):
        body = row.body
        pos = (row.ts, row.id)
        if filtering:
            e = codec.stored_event(body, row.ref, row.id, row.ts)
            if not flt.matches(e):
                continue
            matched.add(pos, body, row.ref, e)
        else:
            matched.add(pos, body, row.ref)
        if len(matched) >= want:
            if rest and i == len(rows) - 1:
                return SourceResult(matched, True)
            return SourceResult(matched, False, pos)
    if rest:
        return SourceResult(matched, True)
    return None


__all__ = ["HotReader"]
