"""Hot-tier executor: reads the Redis sorted sets chosen by the planner.

Reads the plan's index keys (each spans the whole hot tier) in the requested order with
``ZRANGE … BYSCORE [REV] LIMIT 0 n`` starting strictly after a ``(ts, id)`` position. Members
are ``member(ts, id)`` so no ``WITHSCORES`` is needed for the time sort; ties at the position's
score are handled by reading that exact score in full and comparing ids, then continuing from
the exclusive bound ``(ts``. Every key of a round is read in one pipeline; bodies and their
positions come in one more command (``hotstore.read``: one read-only Lua call);
``EventFilter.matches`` post-filters.

Bounded work: a call examines at most ``scan_cap`` index members; when it stops early it
returns a non-exhausted ``SourceResult`` whose boundary is the last examined position, so the
page may come back partial with a cursor (documented in docs/API.md).

sort=gpos reads the tenant's ``seq`` sorted set (score = global position). sort=spos collects
every matching hot event (at most ``spos_cap``, else ``ApiError(400, "query_too_broad")``) and
sorts them in memory.

All methods may block on Redis and raise the client's ``RedisError``s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from eventstrata.archive.hot import parse_watermark
from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.read import Ref, Stored, read_events, read_first_page, read_stored
from eventstrata.hotstore.stored import StoredEvents, TimePos
from eventstrata.keys import KeyLayout, TenantKeys, member, parse_member
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter, Order
from eventstrata.query.merge import SortPos, SourceResult, after_cursor, sort_position
from eventstrata.query.planner import HotPlan
from eventstrata.redisconn import RedisClient, reply

DEFAULT_SCAN_CAP = 50_000
SPOS_CAP = 10_000
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class _Cand:
    ts: int
    id: str
    pos: SortPos


class HotReader:
    """Reads one tenant's hot tier for the query engine. Stateless apart from the client."""

    def __init__(self, redis: RedisClient, layout: KeyLayout, *, window_ms: int,
                 scan_cap: int = DEFAULT_SCAN_CAP, codec: BodyCodec | None = None) -> None:
        self._redis = redis
        self._codec = codec if codec is not None else BodyCodec()
        self._layout = layout
        self._window_ms = window_ms
        self.scan_cap = scan_cap

    # -- bodies --------------------------------------------------------------------------
    async def bodies(self, tk: TenantKeys, cands: Sequence[_Cand]) -> list[Event | None]:
        """Events of ``cands`` (None for ones removed meanwhile), one pipeline."""
        return await read_events(self._redis, tk, [(c.ts, c.id) for c in cands],
                                 window_ms=self._window_ms, codec=self._codec)

    async def bodies_of(self, tk: TenantKeys, refs: Sequence[Ref]) -> list[Event | None]:
        """Events of ``(ts, id)`` pairs (None where absent; ``ts`` None: the id's own time)."""
        return await read_events(self._redis, tk, refs, window_ms=self._window_ms, codec=self._codec)

    # -- sort = time ---------------------------------------------------------------------
    async def scan_time(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                        after: SortPos | None, want: int, post_filter: bool = True,
                        matched: StoredEvents | None = None) -> SourceResult:
        """Up to ``want`` matching events strictly after ``after`` (a ``(ts, id)``); with
        ``matched``, continues filling it (the events before ``after``, which count towards
        ``want``) and returns it as the result's events.

        Each round reads the plan's index keys (one range command each, two when continuing
        inside a tie at the cursor's millisecond) in one pipeline, then the bodies of the
        candidates in one read-script call, which ends with a ``GET`` of the archive watermark: the
        result's ``watermark_after`` is that value when the bodies were the call's last read
        (None when an index read came last, or nothing was read). The result's events are a
        ``StoredEvents`` (decoded where the post-filter needed them, else when accessed)."""
        tk = self._layout.tenant(tenant)
        lo, hi = plan.lo, plan.hi
        if after is not None:
            a_ts = int(after[0])
            if order == "desc":
                hi = a_ts + 1 if hi is None else min(hi, a_ts + 1)
            else:
                lo = max(lo, a_ts)
        if matched is None:
            matched = StoredEvents(self._codec)
        if hi is not None and lo >= hi:
            return SourceResult(matched, True)
        keys = plan.keys(tk)
        filtering = post_filter and plan.post_filter
        scanned = 0
        pos: SortPos | None = after
        batch_factor = 4 if filtering else 1
        wm: int | None = None  # W as read with the last bodies, while no index read followed
        while True:
            if scanned >= self.scan_cap:
                assert pos is not None
                return SourceResult(matched, False, pos, watermark_after=wm)
            need = want - len(matched)
            batch = min(MAX_BATCH, max(16, need * batch_factor))
            cands, complete = await self._fetch(keys, lo=lo, hi=hi, after=pos, order=order, batch=batch)
            wm = None  # a watermark read before this index read would be stale
            take = cands if filtering else cands[:need]
            if not take:
                return SourceResult(matched, True)
            rest = complete and len(take) == len(cands)  # nothing after take in the index
            scanned += len(take)
            refs = [(c.ts, c.id) for c in take]
            stored, raw_w = await read_stored(self._redis, tk, refs, then_get=tk.watermark,
                                              window_ms=self._window_ms)
            wm = parse_watermark(raw_w)
            done = _match_round(refs, stored, flt, filtering=filtering, want=want, rest=rest,
                                matched=matched, codec=self._codec)
            if done is not None:
                return replace(done, watermark_after=wm)
            pos = take[-1].pos
            batch_factor = min(batch_factor * 2, 64)

    # -- the first page, newest first, of one key: one call ---------------------------------
    @staticmethod
    def one_call(plan: HotPlan) -> bool:
        """Whether ``first_page`` can serve ``plan`` (it reads exactly one index key)."""
        return plan.kind == "all" or len(plan.combos) == 1

    async def first_page(self, tenant: str, plan: HotPlan, flt: EventFilter, *, want: int,
                         post_filter: bool = True) -> tuple[SourceResult, int]:
        """``scan_time(order="desc", after=None)`` for a ``one_call`` plan whose range is not yet
        clamped at the archive watermark: the first round -- W, the index range ``[max(lo, W),
        hi)``, the bodies -- is one atomic call (``hotstore.read.read_first_page``). Returns the
        result and that W. When the first round does not fill the page, the rest is
        ``scan_time`` after the last member examined (its ``watermark_after`` then is the
        result's); otherwise the result's ``watermark_after`` is W itself: nothing was read
        after it."""
        tk = self._layout.tenant(tenant)
        (key,) = plan.keys(tk)
        filtering = post_filter and plan.post_filter
        batch = min(MAX_BATCH, max(16, want * (4 if filtering else 1)))
        nbodies = batch if filtering else min(batch, want)
        fp = await read_first_page(self._redis, tk, key, lo=plan.lo, hi=plan.hi, limit=batch, bodies=nbodies,
                                   window_ms=self._window_ms)
        take = [parse_member(m) for m in fp.members[:nbodies]]
        rest = len(fp.members) < batch and len(take) == len(fp.members)  # nothing after take
        matched = StoredEvents(self._codec)
        done = _match_round(take, fp.stored, flt, filtering=filtering, want=want, rest=rest,
                            matched=matched, codec=self._codec)
        if done is not None:
            return replace(done, watermark_after=fp.w), fp.w
        more = await self.scan_time(tenant, replace(plan, lo=max(plan.lo, fp.w)), flt, order="desc",
                                    after=take[-1], want=want, post_filter=post_filter, matched=matched)
        return more, fp.w

    async def _fetch(self, keys: Sequence[str], *, lo: int, hi: int | None, after: SortPos | None,
                     order: Order, batch: int) -> tuple[list[_Cand], bool]:
        """Members of ``keys`` with score in ``[lo, hi)`` strictly after ``after``, merged in
        ``order``, and whether the list is complete (else it is cut at the earliest last member
        of a key that returned a full ``batch``). One pipeline."""
        pipe = self._redis.pipeline(transaction=False)
        desc = order == "desc"
        a_ts = int(after[0]) if after is not None else None
        if a_ts is not None and not (lo <= a_ts and (hi is None or a_ts < hi)):
            a_ts = None  # the cursor lies outside the range: no tie to resolve
        tie = a_ts is not None
        top = "+inf" if hi is None else f"({hi}"
        for key in keys:
            if a_ts is not None:
                pipe.execute_command("ZRANGE", key, a_ts, a_ts, "BYSCORE")
                if desc:
                    pipe.execute_command("ZRANGE", key, f"({a_ts}", lo, "BYSCORE", "REV", "LIMIT", 0, batch)
                else:
                    pipe.execute_command("ZRANGE", key, f"({a_ts}", top, "BYSCORE", "LIMIT", 0, batch)
            elif desc:
                pipe.execute_command("ZRANGE", key, top, lo, "BYSCORE", "REV", "LIMIT", 0, batch)
            else:
                pipe.execute_command("ZRANGE", key, lo, top, "BYSCORE", "LIMIT", 0, batch)
        results: list[Any] = await pipe.execute()
        merged: list[_Cand] = []
        cut: SortPos | None = None
        ri = 0
        for _ in keys:
            if tie:
                for m in results[ri]:
                    ts, eid = parse_member(m)
                    if after_cursor((ts, eid), after, order):
                        merged.append(_Cand(ts, eid, (ts, eid)))
                ri += 1
            rest_raw = results[ri]
            ri += 1
            last: _Cand | None = None
            for m in rest_raw:
                ts, eid = parse_member(m)
                last = _Cand(ts, eid, (ts, eid))
                merged.append(last)
            if last is not None and len(rest_raw) >= batch and (
                    cut is None or (last.pos > cut if desc else last.pos < cut)):
                cut = last.pos
        if len(keys) > 1 or tie:
            merged.sort(key=lambda c: c.pos, reverse=desc)
        if cut is not None:
            c0 = cut
            merged = [c for c in merged if not after_cursor(c.pos, c0, order)]
        return merged, cut is None

    # -- sort = gpos ---------------------------------------------------------------------
    async def scan_gpos(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                        after: SortPos | None, want: int) -> SourceResult:
        """Up to ``want`` matching hot events (ts in the plan's range) strictly after ``after``
        (a ``(gpos, id)``), ordered by global position, read from ``seq``."""
        tk = self._layout.tenant(tenant)
        lo_g = "-inf" if flt.min_gpos is None else str(flt.min_gpos)
        hi_g = "+inf" if flt.max_gpos is None else str(flt.max_gpos)
        if after is not None:
            if order == "asc":
                lo_g = f"({int(after[0])}"
            else:
                hi_g = f"({int(after[0])}"
        matched: list[Event] = []
        scanned = 0
        pos = after
        batch_factor = 2
        while len(matched) < want:
            if scanned >= self.scan_cap:
                assert pos is not None
                return SourceResult(tuple(matched), False, pos)
            batch = min(MAX_BATCH, max(16, (want - len(matched)) * batch_factor))
            if order == "asc":
                raw = await reply(self._redis.execute_command(
                    "ZRANGE", tk.seq, lo_g, hi_g, "BYSCORE", "LIMIT", 0, batch, "WITHSCORES"))
            else:
                raw = await reply(self._redis.execute_command(
                    "ZRANGE", tk.seq, hi_g, lo_g, "BYSCORE", "REV", "LIMIT", 0, batch, "WITHSCORES"))
            pairs = _pairs(raw)
            if not pairs:
                return SourceResult(tuple(matched), True)
            cands: list[_Cand] = []
            for m, score in pairs:
                ts, eid = parse_member(m)
                g = int(float(score))
                if ts >= plan.lo and (plan.hi is None or ts < plan.hi):
                    cands.append(_Cand(ts, eid, (g, eid)))
            last_g = int(float(pairs[-1][1]))
            scanned += len(pairs)
            events = await self.bodies(tk, cands)
            for c, e in zip(cands, events, strict=True):
                if e is not None and flt.matches(e):
                    matched.append(e)
                    if len(matched) >= want:
                        return SourceResult(tuple(matched), False, c.pos)
            pos = (last_g, parse_member(pairs[-1][0])[1])
            if len(pairs) < batch:
                return SourceResult(tuple(matched), True)
            if order == "asc":
                lo_g = f"({last_g}"
            else:
                hi_g = f"({last_g}"
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
        """Exact count without bodies (only valid when ``plan.post_filter`` is False): one
        ``ZCOUNT`` per index key, and then a ``GET`` of the archive watermark, in one pipeline
        (its commands run in order). Returns ``(count, watermark read after the counts)``."""
        tk = self._layout.tenant(tenant)
        pipe = self._redis.pipeline(transaction=False)
        hi = "+inf" if plan.hi is None else f"({plan.hi}"
        for key in plan.keys(tk):
            pipe.zcount(key, plan.lo, hi)
        pipe.get(tk.watermark)
        *counts, raw_w = await pipe.execute()
        return sum(int(x) for x in counts), parse_watermark(raw_w)

    async def member_times(self, tenant: str, plan: HotPlan) -> list[int]:
        """Event times of every indexed member in the plan's range (no bodies)."""
        tk = self._layout.tenant(tenant)
        pipe = self._redis.pipeline(transaction=False)
        hi = "+inf" if plan.hi is None else f"({plan.hi}"
        for key in plan.keys(tk):
            pipe.zrangebyscore(key, plan.lo, hi)
        out: list[int] = []
        for members in await pipe.execute():
            out.extend(parse_member(m)[0] for m in members)
        return out


def _match_round(positions: Sequence[TimePos], stored: Sequence[Stored], flt: EventFilter, *,
                 filtering: bool, want: int, rest: bool, matched: StoredEvents,
                 codec: BodyCodec) -> SourceResult | None:
    """One round of a time scan, pure (apart from decoding): appends the round's matching events
    (``stored[i]`` read for ``positions[i]``; a body None = gone) to ``matched``, decoding them
    only when ``filtering``. Returns the result when the page is full (exhausted only if that
    was the index's last member) or when nothing follows the round in the index (``rest``);
    None when the scan must read on after the round's last position."""
    for i, (pos, (body, ref)) in enumerate(zip(positions, stored, strict=True)):
        if body is None:
            continue
        if filtering:
            e = codec.stored_event(body, ref)
            if not flt.matches(e):
                continue
            matched.add(pos, body, ref, e)
        else:
            matched.add(pos, body, ref)
        if len(matched) >= want:
            if rest and i == len(positions) - 1:
                return SourceResult(matched, True)
            return SourceResult(matched, False, pos)
    if rest:
        return SourceResult(matched, True)
    return None


def _pairs(raw: Any) -> list[tuple[bytes, Any]]:
    """ZRANGE … WITHSCORES replies: RESP2 flat list or RESP3 pairs → [(member, score)]."""
    if not raw:
        return []
    if isinstance(raw[0], list | tuple):
        return [(p[0], p[1]) for p in raw]
    return [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]


__all__ = ["HotReader", "member"]
