"""Reading stored events back from the hot tier: one call of ``read.lua`` per read.

The script (package data, read-only) has four operations, each one Redis command whatever the
number of days or keys it touches:

- ``scan``: a family of index keys (a user's sets, user and type, a type's sets, every event)
  over a time range in time order strictly after a ``(ts, id)`` cursor, with each event's
  body and positions. A user's bodies are members of its own sets (one range read gives the
  page); a type's short members name the user set that holds the body, and every event of the
  tenant is the merge of the type sets of each hour (its types registry lists them). With
  ``first`` it reads the archive watermark W before anything else and clamps the range at it,
  with ``then_w`` it reads W again after everything: the script runs atomically, so the
  archiver can neither move W nor remove events between those reads.
- ``ids``: events by id (the id's bucket gives the position, its seq block the time and user,
  then the body), optionally ``GET``-ing one string key after the reads.
- ``seq``: events by global position.
- ``count``: exact counts (and per-bucket counts) of a family over a time range (optionally
  clamped at W), and W.

Bodies come back undecoded (the query engine decodes only what it must, see
``hotstore.stored``); ``read_events`` decodes. Each function blocks on its one call and raises
the client's ``RedisError``s; decoding raises ``codec.BodyError`` (or ``KeyError``/``TypeError``/
``ValueError``) for a corrupt body.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.scripts import READ, call
from eventstrata.keys import ID_END, TenantKeys, escape_id, split_member
from eventstrata.model import Event
from eventstrata.redisconn import RedisClient, reply

Family = Literal["u", "ut", "t", "a"]
"""Index families: a user's sets, (user, type) pairs read from the user's sets filtered by
type, a type's sets, every event of the tenant (the type sets of each hour that the hour's
types registry lists, merged inside the script)."""

"""A stored body and its ref ``gpos|spos`` (both None when absent)."""


@dataclass(frozen=True, slots=True)
class Sources:
    """What a scan or count reads: a family and its sources' encoded key parts (one user or
    type part each, a user and a type part for ``ut``, none for ``a``), each source once (the
    planner's are: the query parameters are de-duplicated)."""

    family: Family
    parts: tuple[tuple[str, ...], ...] = ()

    def args(self) -> list[str]:
        out = [self.family, str(len(self.parts))]
        for p in self.parts:
            out.extend(p)
        return out


class Row(NamedTuple):
    """One stored event as read: time, id, ref ``gpos|spos`` (``codec.parse_ref``) and the
    stored body. A named tuple, not a dataclass: a page builds one per event and a frozen
    dataclass costs ~4x as much to create."""

    ts: int
    id: str
    ref: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class SeqRow:
    """A global position, the id holding it, and its row (id ``""`` and row None when the body
    is gone)."""

    gpos: int
    id: str
    row: Row | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """``rows`` in scan order; ``complete``: nothing in the range follows the last row;
    otherwise ``boundary``: every event up to it is in ``rows``, continue strictly after it.
    ``w``: W as read first (``first``), ``w_after``: W as read last (``then_w``)."""

    rows: list[Row]
    complete: bool
    boundary: tuple[int, str] | None
    w: int | None
    w_after: int | None


def _w(raw: Any) -> int | None:
    return None if raw in (b"", "", None) else int(raw)


def scan_args(tk: TenantKeys, src: Sources, *, lo: int, hi: int | None, order: str,
              after: tuple[int, str] | None, limit: int, examine: int, first: bool,
              then_w: bool) -> list[Any]:
    """The ``ARGV`` of a ``scan``. Pure."""
    return [tk.base, "scan", "1" if first else "", lo, "" if hi is None else hi, order,
            "" if after is None else after[0],
            b"" if after is None else escape_id(after[1]) + b"\0\0",
            limit, examine, "1" if then_w else "", *src.args()]


def parse_member(ts: int, member: bytes) -> Row:
    """The row of a body member read at ``ts``. Pure; raises ``ValueError`` for a malformed one."""
    end = member.index(b"\0\0")
    raw = member[:end]
    if b"\0" in raw:
        raw = raw.replace(b"\0\1", b"\0")
    p1 = member.index(b"|", end + 2)
    p3 = member.index(b"|", member.index(b"|", p1 + 1) + 1)
    return Row(ts, raw.decode("utf-8", "surrogatepass"), member[p1 + 1:p3], member[p3 + 1:])


def _rows(res: Any, start: int, n: int) -> list[Row]:
    """``n`` (time, body member) pairs of a script reply from ``start``; absent bodies skipped."""
    end = start + 2 * n
    return [parse_member(int(ts), m) for ts, m in zip(res[start:end:2], res[start + 1:end:2], strict=True)
            if m is not None]


def shard_sources(tk: TenantKeys, src: Sources) -> list[tuple[TenantKeys, Sources]]:
    """Which shards a read of ``src`` reads, each with its part of the sources: a user's sets
    are in the user's shard; a type's or the tenant's sets are in every shard. Pure."""
    if not tk.sharded:
        return [(tk, src)]
    shards = tk.shards()
    if src.family not in ("u", "ut"):
        return [(s, src) for s in shards]
    by: dict[int, list[tuple[str, ...]]] = {}
    for part in src.parts:
        by.setdefault(tk.shard_index(part[0]), []).append(part)
    return [(shards[i], Sources(src.family, tuple(parts))) for i, parts in sorted(by.items())]


def _order_key(ts: int, eid: str) -> tuple[int, bytes]:
    return ts, eid.encode("utf-8", "surrogatepass")


def merge_scans(parts: Sequence[ScanResult], *, order: str, limit: int) -> ScanResult:
    """The scan of several shards as one: rows merged in ``(time, id)`` order (ids compared as
    their UTF-8 bytes, the order of the members), cut at the earliest boundary of a shard that
    was not read to the end and at ``limit`` rows; W as read first is the lowest any shard read
    (the engine reads ``[.., W)`` from the archive), W as read last the highest (a shard whose
    events moved to the archive during the read raises it). Pure."""
    if len(parts) == 1:
        return parts[0]
    desc = order == "desc"

    def past(a: tuple[int, bytes], b: tuple[int, bytes]) -> bool:  # a comes after b
        return a < b if desc else a > b

    cut: tuple[int, bytes] | None = None
    cut_at: tuple[int, str] | None = None
    for p in parts:
        if not p.complete:
            assert p.boundary is not None
            b = _order_key(*p.boundary)
            if cut is None or past(cut, b):
                cut, cut_at = b, p.boundary
    merged = heapq.merge(*(p.rows for p in parts), key=lambda r: _order_key(r.ts, r.id), reverse=desc)
    rows: list[Row] = []
    more = False
    for r in merged:
        if cut is not None and past(_order_key(r.ts, r.id), cut):
            break
        if len(rows) == limit:
            more = True
            break
        rows.append(r)
    ws = [p.w for p in parts if p.w is not None]
    w_after = [p.w_after for p in parts if p.w_after is not None]
    w = min(ws) if ws else None
    wa = max(w_after) if w_after else None
    if rows and (more or (len(rows) == limit and cut is not None)):
        return ScanResult(rows, False, (rows[-1].ts, rows[-1].id), w, wa)
    if cut is not None:
        return ScanResult(rows, False, cut_at, w, wa)
    return ScanResult(rows, True, None, w, wa)


async def scan(redis: RedisClient, tk: TenantKeys, src: Sources, *, lo: int, hi: int | None,
               order: str, after: tuple[int, str] | None, limit: int, examine: int = 1000,
               first: bool = False, then_w: bool = False) -> ScanResult:
    """At most ``limit`` events of ``src`` with time in ``[lo, hi)`` (``lo`` clamped at W with
    ``first``) strictly after ``after`` in ``order``; a ``ut`` source examines at most
    ``examine`` members per call. One Redis call per shard read (``shard_sources``; shards
    concurrently, merged by ``merge_scans``). Rows whose body is gone are left out (the
    boundary still covers them)."""
    groups = shard_sources(tk, src)
    if len(groups) != 1:
        return merge_scans(await asyncio.gather(*(
            _scan(redis, stk, s, lo=lo, hi=hi, order=order, after=after, limit=limit, examine=examine,
                  first=first, then_w=then_w) for stk, s in groups)), order=order, limit=limit)
    stk, s = groups[0]
    return await _scan(redis, stk, s, lo=lo, hi=hi, order=order, after=after, limit=limit,
                       examine=examine, first=first, then_w=then_w)


async def _scan(redis: RedisClient, tk: TenantKeys, src: Sources, *, lo: int, hi: int | None,
                order: str, after: tuple[int, str] | None, limit: int, examine: int,
                first: bool, then_w: bool) -> ScanResult:
    args = scan_args(tk, src, lo=lo, hi=hi, order=order, after=after, limit=limit,
                     examine=examine, first=first, then_w=then_w)
    res = await call(redis, READ, tk.id_buckets, args)
    n = int(res[1])
    complete = int(res[2]) == 1
    boundary = None if complete else (int(res[3]), res[4].decode("utf-8", "surrogatepass"))
    return ScanResult(_rows(res, 5, n), complete, boundary, _w(res[0]), _w(res[5 + 2 * n]))


async def _bodies(redis: RedisClient, tk: TenantKeys, wanted: Sequence[tuple[str, int, bytes]]
                  ) -> list[bytes | None]:
    """A sharded tenant's body members by ``(user part, time, 'e' + escaped id + terminator |
    'g' + position)``, in order (None: absent): one call per shard holding any, concurrently."""
    by: dict[int, list[int]] = {}
    for j, (u, _, _) in enumerate(wanted):
        by.setdefault(tk.shard_index(u), []).append(j)
    shards = tk.shards()

    async def one(s: int, idx: list[int]) -> tuple[list[int], Any]:
        args: list[Any] = [shards[s].base, "bodies"]
        for j in idx:
            args.extend(wanted[j])
        return idx, await call(redis, READ, shards[s].id_buckets, args)

    out: list[bytes | None] = [None] * len(wanted)
    for idx, res in await asyncio.gather(*(one(s, idx) for s, idx in by.items())):
        for j, m in zip(idx, res, strict=True):
            out[j] = m
    return out


def _placement(raw: bytes) -> tuple[str, int]:
    u, _, ts = raw.rpartition(b"|")
    return u.decode("ascii"), int(ts)


async def read_ids(redis: RedisClient, tk: TenantKeys, ids: Sequence[str], *,
                   then_get: str = "") -> tuple[list[Row | None], bytes | None]:
    """The rows of ``ids`` (undecoded; None when absent), and the value of ``then_get``
    (``""``: none) read after them -- atomically for a tenant in one slot; a sharded one's ids
    are located in its slot, then read from its shards."""
    if tk.sharded:
        where = await call(redis, READ, tk.id_buckets, [tk.base, "locate", *ids]) if ids else []
        found = [(i, _placement(raw)) for i, raw in enumerate(where) if raw is not None]
        members = await _bodies(redis, tk, [(u, ts, b"e" + escape_id(ids[i]) + ID_END)
                                            for i, (u, ts) in found])
        stored: list[Row | None] = [None] * len(ids)
        for (i, (_, ts)), m in zip(found, members, strict=True):
            if m is not None:
                stored[i] = parse_member(ts, m)
        got_s: Any = await redis.get(then_get) if then_get else None
        return stored, got_s
    res = await call(redis, READ, tk.id_buckets, [tk.base, "ids", then_get, *ids])
    n = 2 * len(ids)
    got: bytes | None = res[n] if len(res) > n else None
    rows = [None if m is None else parse_member(int(ts), m)
            for ts, m in zip(res[:n:2], res[1:n:2], strict=True)]
    return rows, got


async def read_events(redis: RedisClient, tk: TenantKeys, ids: Sequence[str], *,
                      codec: BodyCodec) -> list[Event | None]:
    """The events of ``ids`` in order, None where absent (never stored, or removed by the
    archiver)."""
    if not ids:
        return []
    rows, _ = await read_ids(redis, tk, ids)
    return [None if r is None else codec.stored_event(r.body, r.ref, r.id, r.ts) for r in rows]


async def read_seq(redis: RedisClient, tk: TenantKeys, *, after: int | None, order: str, limit: int,
                   least: int | None = None, greatest: int | None = None) -> list[SeqRow]:
    """Up to ``limit`` global positions in ``[least, greatest]`` strictly after ``after`` in
    ``order``; fewer than ``limit``: there are no more."""
    args = [tk.base, "seq", "" if after is None else after, order, limit, "" if least is None else least,
            "" if greatest is None else greatest]
    if tk.sharded:
        res = await call(redis, READ, tk.id_buckets, [*args, "1"])
        places = [(int(res[i]), _placement(res[i + 1])) for i in range(1, 1 + 2 * int(res[0]), 2)]
        members = await _bodies(redis, tk, [(u, ts, b"g%d" % g) for g, (u, ts) in places])
        return [SeqRow(g, "", None) if m is None else SeqRow(g, (row := parse_member(ts, m)).id, row)
                for (g, (_, ts)), m in zip(places, members, strict=True)]
    res = await call(redis, READ, tk.id_buckets, args)
    out: list[SeqRow] = []
    for i in range(1, 1 + 4 * int(res[0]), 4):
        m = res[i + 3]
        eid = split_member(res[i + 1])[0] if res[i + 1] else ""
        out.append(SeqRow(int(res[i]), eid, None if m is None else parse_member(int(res[i + 2]), m)))
    return out


async def count(redis: RedisClient, tk: TenantKeys, src: Sources, *, lo: int, hi: int | None,
                bucket_ms: int | None = None, clamp: bool = False) -> tuple[int, int, dict[int, int]]:
    """``(W as the counts saw it, total, bucket start → count)`` of ``src`` over ``[lo, hi)``
    (buckets only with ``bucket_ms``); with ``clamp`` over ``[max(lo, W), hi)``, W and the
    counts read atomically in one call. A sharded tenant's shards each hold a mirror of W
    (the highest is returned), so ``clamp`` is refused for one (``ValueError``): its shards
    could clamp at different values."""
    if clamp and tk.sharded:
        raise ValueError("clamp needs a tenant in one slot")

    async def one(stk: TenantKeys, s: Sources) -> Any:
        return await call(redis, READ, stk.id_buckets, [stk.base, "count", "1" if clamp else "", lo,
                                                 "" if hi is None else hi,
                                                 "" if bucket_ms is None else bucket_ms, *s.args()])

    w: int | None = None
    total = 0
    buckets: dict[int, int] = {}
    groups = shard_sources(tk, src)
    replies = ([await one(*groups[0])] if len(groups) == 1
               else await asyncio.gather(*(one(stk, s) for stk, s in groups)))
    for res in replies:
        w = int(res[0]) if w is None else max(w, int(res[0]))
        total += int(res[1])
        for i in range(2, len(res), 2):
            buckets[int(res[i])] = buckets.get(int(res[i]), 0) + int(res[i + 1])
    return (0 if w is None else w), total, dict(sorted(buckets.items()))


async def last_position(redis: RedisClient, tk: TenantKeys) -> int:
    """The tenant's last assigned global position (0 before its first event): how many events
    it has stored, duplicates never counted. One ``GET``."""
    raw: Any = await reply(redis.get(tk.gpos))
    return int(raw) if raw else 0
