"""Hot-tier executor: reads the Redis sorted sets chosen by the planner.

Reads per window in the requested order with ``ZRANGE … BYSCORE [REV] LIMIT 0 n`` starting
strictly after a ``(ts, id)`` position. Members are ``member(ts, id)`` so no ``WITHSCORES`` is
needed for the time sort; ties at the position's score are handled by reading that exact score
in full and comparing ids, then continuing from the exclusive bound ``(ts``. Several windows
(and every key of a window) are fetched in one pipeline; bodies come with one ``HMGET`` per
window in one pipeline; ``EventFilter.matches`` post-filters.

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
from dataclasses import dataclass
from typing import Any

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.keys import KeyLayout, TenantKeys, member, parse_member
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter, Order
from eventstrata.query.merge import SortPos, SourceResult, after_cursor, sort_position
from eventstrata.query.planner import HotPlan
from eventstrata.redisconn import RedisClient, reply
from eventstrata.timeutil import window_start

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
                 scan_cap: int = DEFAULT_SCAN_CAP) -> None:
        self._redis = redis
        self._layout = layout
        self._window_ms = window_ms
        self.scan_cap = scan_cap

    # -- windows -------------------------------------------------------------------------
    async def windows(self, tk: TenantKeys, lo: int, hi: int | None) -> list[int]:
        """Window starts present in Redis that overlap ``[lo, hi)``, ascending."""
        top = "+inf" if hi is None else f"({hi}"
        raw: list[bytes | str] = await reply(
            self._redis.execute_command("ZRANGE", tk.windows, window_start(lo, self._window_ms), top,
                                        "BYSCORE"))
        return sorted(int(x) for x in raw)

    # -- bodies --------------------------------------------------------------------------
    async def bodies(self, tk: TenantKeys, cands: Sequence[_Cand]) -> list[Event | None]:
        """Bodies of ``cands`` (None for ones removed meanwhile), one pipeline."""
        by_window: dict[int, list[int]] = {}
        for i, c in enumerate(cands):
            by_window.setdefault(window_start(c.ts, self._window_ms), []).append(i)
        out: list[Event | None] = [None] * len(cands)
        if not cands:
            return out
        pipe = self._redis.pipeline(transaction=False)
        order = list(by_window.items())
        for w, idx in order:
            pipe.hmget(tk.bodies(w), [cands[i].id for i in idx])
        results = await pipe.execute()
        for (_, idx), values in zip(order, results, strict=True):
            for i, raw in zip(idx, values, strict=True):
                if raw is not None:
                    out[i] = Event.from_json(raw)
        return out

    async def bodies_of(self, tk: TenantKeys, refs: Sequence[tuple[int, str]]) -> list[Event | None]:
        """Bodies of ``(ts, id)`` pairs (None where absent)."""
        return await self.bodies(tk, [_Cand(ts, eid, (ts, eid)) for ts, eid in refs])

    # -- sort = time ---------------------------------------------------------------------
    async def scan_time(self, tenant: str, plan: HotPlan, flt: EventFilter, *, order: Order,
                        after: SortPos | None, want: int, post_filter: bool = True) -> SourceResult:
        """Up to ``want`` matching events strictly after ``after`` (a ``(ts, id)``)."""
        tk = self._layout.tenant(tenant)
        lo, hi = plan.lo, plan.hi
        if after is not None:
            a_ts = int(after[0])
            if order == "desc":
                hi = a_ts + 1 if hi is None else min(hi, a_ts + 1)
            else:
                lo = max(lo, a_ts)
        if hi is not None and lo >= hi:
            return SourceResult((), True)
        wins = await self.windows(tk, lo, hi)
        if order == "desc":
            wins.reverse()
        matched: list[Event] = []
        # Without a post-filter every candidate is a result: collect them across window groups
        # and fetch all bodies in one round trip at the end.
        filtering = post_filter and plan.post_filter
        pending: list[_Cand] = []
        scanned = 0
        pos: SortPos | None = after
        # Windows are read in groups that double (up to 64) while they come back short. Measured
        # (make bench, user newest 50): starting at 8 beats 2 (more round trips for sparse users)
        # and equals 32 (a dense user's first windows return members that are never used).
        group = 8
        batch_factor = 4 if filtering else 1
        wi = 0

        async def result(exhausted: bool) -> SourceResult:
            if pending:
                matched.extend(e for e in await self.bodies(tk, pending) if e is not None)
            if exhausted:
                return SourceResult(tuple(matched), True)
            assert pos is not None
            return SourceResult(tuple(matched), False, pos)

        while wi < len(wins) and len(matched) + len(pending) < want:
            if scanned >= self.scan_cap:
                return await result(False)
            need = want - len(matched) - len(pending)
            batch = min(MAX_BATCH, max(16, need * batch_factor))
            chunk = wins[wi : wi + group]
            per_window = await self._fetch_windows(tk, plan, chunk, lo=lo, hi=hi, after=pos, order=order,
                                                    batch=batch)
            cands: list[_Cand] = []
            advanced_to = wi
            for members, complete in per_window:
                take = members[: need - len(cands)]
                cands.extend(take)
                if len(take) < len(members) or not complete:
                    break
                advanced_to += 1
                if len(cands) >= need:
                    break
            if not cands:
                # The window group had nothing after pos: skip it entirely.
                wi = advanced_to if advanced_to > wi else wi + 1
                group = min(group * 2, 64)
                continue
            if advanced_to == wi + len(chunk):
                group = min(group * 2, 64)
            scanned += len(cands)
            if filtering:
                for e in await self.bodies(tk, cands):
                    if e is not None and flt.matches(e):
                        matched.append(e)
                batch_factor = min(batch_factor * 2, 64)
            else:
                pending.extend(cands)
            pos = cands[-1].pos
            wi = advanced_to
        return await result(wi >= len(wins))

    async def _fetch_windows(self, tk: TenantKeys, plan: HotPlan, wins: Sequence[int], *, lo: int,
                             hi: int | None, after: SortPos | None, order: Order,
                             batch: int) -> list[tuple[list[_Cand], bool]]:
        """For each window: its members strictly after ``after`` in order (k-way merged over the
        plan's keys), and whether the list is complete for the window (else it is cut at the
        earliest truncated key's last member)."""
        pipe = self._redis.pipeline(transaction=False)
        layout: list[list[tuple[bool, int]]] = []  # per window, per key: (has_tie_cmd, n_cmds)
        for w in wins:
            w_lo = max(lo, w)
            w_hi = w + self._window_ms if hi is None else min(hi, w + self._window_ms)
            keys = plan.keys(tk, w)
            per_key: list[tuple[bool, int]] = []
            for key in keys:
                if after is not None and w <= int(after[0]) < w + self._window_ms:
                    a_ts = int(after[0])
                    pipe.execute_command("ZRANGE", key, a_ts, a_ts, "BYSCORE")
                    if order == "desc":
                        pipe.execute_command("ZRANGE", key, f"({a_ts}", w_lo, "BYSCORE", "REV",
                                             "LIMIT", 0, batch)
                    else:
                        pipe.execute_command("ZRANGE", key, f"({a_ts}", f"({w_hi}", "BYSCORE",
                                             "LIMIT", 0, batch)
                    per_key.append((True, 2))
                else:
                    if order == "desc":
                        pipe.execute_command("ZRANGE", key, f"({w_hi}", w_lo, "BYSCORE", "REV",
                                             "LIMIT", 0, batch)
                    else:
                        pipe.execute_command("ZRANGE", key, w_lo, f"({w_hi}", "BYSCORE",
                                             "LIMIT", 0, batch)
                    per_key.append((False, 1))
            layout.append(per_key)
        results: list[Any] = await pipe.execute()
        out: list[tuple[list[_Cand], bool]] = []
        ri = 0
        desc = order == "desc"
        for per_key in layout:
            merged: list[_Cand] = []
            cut: SortPos | None = None
            for has_tie, _n in per_key:
                ties: list[_Cand] = []
                if has_tie:
                    for m in results[ri]:
                        ts, eid = parse_member(m)
                        p = (ts, eid)
                        if after_cursor(p, after, order):
                            ties.append(_Cand(ts, eid, p))
                    ties.sort(key=lambda c: c.pos, reverse=desc)
                    ri += 1
                rest_raw = results[ri]
                ri += 1
                rest = []
                for m in rest_raw:
                    ts, eid = parse_member(m)
                    rest.append(_Cand(ts, eid, (ts, eid)))
                merged.extend(ties)
                merged.extend(rest)
                if len(rest_raw) >= batch:
                    last = rest[-1].pos
                    if cut is None or (last < cut if desc is False else last > cut):
                        cut = last
            merged.sort(key=lambda c: c.pos, reverse=desc)
            if cut is not None:
                c0 = cut
                merged = [c for c in merged if not after_cursor(c.pos, c0, order)]
            out.append((merged, cut is None))
            if cut is not None:
                # Later windows in this group are not valid until this one is finished.
                for _ in range(len(layout) - len(out)):
                    out.append(([], False))
                break
        return out

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
    async def count_fast(self, tenant: str, plan: HotPlan) -> int:
        """Exact count without bodies (only valid when ``plan.post_filter`` is False)."""
        tk = self._layout.tenant(tenant)
        wins = await self.windows(tk, plan.lo, plan.hi)
        if not wins:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        hi = "+inf" if plan.hi is None else f"({plan.hi}"
        for w in wins:
            for key in plan.keys(tk, w):
                pipe.zcount(key, plan.lo, hi)
        return sum(int(x) for x in await pipe.execute())

    async def member_times(self, tenant: str, plan: HotPlan) -> list[int]:
        """Event times of every indexed member in the plan's range (no bodies)."""
        tk = self._layout.tenant(tenant)
        wins = await self.windows(tk, plan.lo, plan.hi)
        if not wins:
            return []
        pipe = self._redis.pipeline(transaction=False)
        hi = "+inf" if plan.hi is None else f"({plan.hi}"
        for w in wins:
            for key in plan.keys(tk, w):
                pipe.zrangebyscore(key, plan.lo, hi)
        out: list[int] = []
        for members in await pipe.execute():
            out.extend(parse_member(m)[0] for m in members)
        return out


def _pairs(raw: Any) -> list[tuple[bytes, Any]]:
    """ZRANGE … WITHSCORES replies: RESP2 flat list or RESP3 pairs → [(member, score)]."""
    if not raw:
        return []
    if isinstance(raw[0], list | tuple):
        return [(p[0], p[1]) for p in raw]
    return [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]


__all__ = ["HotReader", "member"]
