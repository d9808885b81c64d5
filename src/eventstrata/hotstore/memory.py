"""``MemoryHotStore``: the hot tier's contract kept in process memory, for unit tests.

It implements ``interface.HotStore`` (what the query engine and the live tail read),
``interface.HotHandoff`` (what the archiver uses) and ``writer.HotWriter`` (what the ingest
pipeline writes), with the semantics the Redis scripts have for a tenant in one slot
(``write.lua``, ``read.lua``, ``remove.lua``):

- a write is idempotent per (tenant, id): the first write of an id gives it the tenant's next
  global position and, with a stream id, the next stream position of its (store, stream); a later write of
  the id (same or other payload) stores nothing, announces nothing and returns the first
  write's positions;
- each chunk of at most ``CHUNK_MAX`` events of a tenant (as ``RedisHotWriter`` sends them) is
  one step, and its new events share one tail announcement;
- bodies are stored as the worker encodes them (``BodyCodec``, the same bytes as on Redis), so
  every reader decodes them the same way;
- the offsets and lineage records follow ``write.lua``'s rule (max-set, but never raised where
  the record is below the value the writer expects);
- ``mirror_watermark`` raises W (never lowers it), ``remove_events`` removes archived events
  (their id is forgotten, as ``remove.lua``'s is), and a window is listed while it holds events;
  the archiver's lease expires on ``clock`` (seconds, monotonic).

What it leaves out, because nothing in memory can happen that needs it: sharding (one store is
one slot; ``counts_at_watermark`` is always true), lost writes (``positions_lost`` changes
nothing: memory never loses positions, so they never jump), the per-call ``examine`` bound (a
``scan`` examines everything, which the contract allows), and erased users' tombstones.

Scans sort the matching events on each call: fine for the thousands of events of a unit test,
not meant for more. Not thread-safe; use it from one event loop. No method blocks but
``announced_after`` with ``block_ms``, which waits for a write or the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.handoff import HotRef
from eventstrata.hotstore.read import Row, ScanResult, SeqRow, Sources
from eventstrata.hotstore.tailentry import Announcement
from eventstrata.hotstore.writer import CHUNK_MAX, Covers, EncodedEvent, Expected, WriteResult, encode_event
from eventstrata.keys import encode_part, escape_id, ids_value, stream_key, user_part
from eventstrata.model import Event


@dataclass(frozen=True, slots=True)
class _Held:
    """One stored event: its sort key, parts, positions and stored body."""

    key: tuple[int, bytes]  # (time, escaped id): the order of the members
    id: str
    user: str  # keys.user_part
    type: str  # keys.encode_part of the type
    gpos: int
    spos: int | None
    body: bytes

    def row(self) -> Row:
        return Row(self.key[0], self.id, ids_value(self.gpos, self.spos), self.body)


@dataclass(slots=True)
class _Tenant:
    events: dict[str, _Held] = field(default_factory=dict)
    gpos: int = 0
    spos: dict[bytes, int] = field(default_factory=dict)  # keys.stream_key -> last position
    watermark: int = 0
    tail: list[Announcement] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)


def _matches(src: Sources, h: _Held) -> bool:
    if src.family == "a":
        return True
    if src.family == "u":
        return (h.user,) in src.parts
    if src.family == "t":
        return (h.type,) in src.parts
    return (h.user, h.type) in src.parts


def max_set(record: dict[str, int], owner: str, covers: Covers, expected: Expected | None
            ) -> dict[str, int | None]:
    """``write.lua``'s rule for the offsets record ``record`` of ``owner`` (a tenant): each field
    is raised to its cover unless the record is below what the writer expects (absent counts as
    below). Returns the previous values. Pure apart from updating ``record``."""
    prev: dict[str, int | None] = {}
    for f, v in covers:
        p = record.get(f)
        prev[f] = p
        want = None if expected is None else expected.get((owner, f))
        lost = want is not None and (p is None or p < want)
        if not lost and (p is None or v > p):
            record[f] = v
    return prev


class MemoryHotStore:
    """``HotStore``, ``HotHandoff`` and ``HotWriter`` in memory (see the module docstring).
    ``window_ms`` is the archive window ``encode`` uses (as ``RedisHotWriter``'s);
    ``tail_maxlen`` how many of the newest positions the tail keeps announced at least."""

    def __init__(self, *, window_ms: int = 3_600_000, tail_maxlen: int = 100_000,
                 chunk_max: int = CHUNK_MAX, codec: BodyCodec | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_ms = window_ms
        self._clock = clock
        self._leases: dict[str, tuple[str, float]] = {}  # tenant -> (holder, expiry on clock)
        self._tail_maxlen = tail_maxlen
        self._chunk_max = chunk_max
        self._codec = codec if codec is not None else BodyCodec()
        self._tenants: dict[str, _Tenant] = {}
        self._written: set[str] = set()  # tenants a write stored events of (Redis: es:tenants)
        self._lineage: dict[str, int] = {}
        self._announced = asyncio.Condition()

    def _t(self, tenant: str) -> _Tenant:
        t = self._tenants.get(tenant)
        if t is None:
            t = self._tenants[tenant] = _Tenant()
        return t

    # -- HotWriter -----------------------------------------------------------------------
    def encode(self, events: Sequence[Event]) -> list[EncodedEvent]:
        """The events as ``RedisHotWriter.encode`` makes them (the body is what is stored)."""
        return [encode_event(e, self._window_ms, self._codec) for e in events]

    async def write(self, events: Sequence[Event], encoded: Sequence[EncodedEvent] | None = None,
                    *, covers: Covers = (), expected: Expected | None = None) -> WriteResult:
        """See ``HotWriter.write``. Raises ``ValueError`` for an event that carries positions."""
        if not events:
            return WriteResult(0, 0, ())
        enc = list(encoded) if encoded is not None else self.encode(events)
        order: dict[str, list[int]] = {}
        for i, e in enumerate(events):
            order.setdefault(e.tenant, []).append(i)
        positions: list[tuple[int, int | None]] = [(0, None)] * len(events)
        stored = 0
        recorded: dict[tuple[str, str], int | None] = {}
        self._written.update(order)
        for tenant, idx in order.items():
            t = self._t(tenant)
            for start in range(0, len(idx), self._chunk_max):
                first = t.gpos + 1
                for i in idx[start:start + self._chunk_max]:
                    positions[i], new = self._store(t, events[i], enc[i][1])
                    stored += new
                if t.gpos >= first:
                    t.tail.append(Announcement(first, t.gpos))
            for f, p in max_set(t.offsets, tenant, covers, expected).items():
                recorded[(tenant, f)] = p
            t.tail = [a for a in t.tail if a.last > t.gpos - self._tail_maxlen]
        async with self._announced:
            self._announced.notify_all()
        return WriteResult(stored, len(events) - stored, tuple(positions), recorded)

    @staticmethod
    def _store(t: _Tenant, e: Event, body: bytes) -> tuple[tuple[int, int | None], bool]:
        if e.global_position is not None or e.stream_position is not None:
            raise ValueError(f"event {e.id!r} already carries positions")
        held = t.events.get(e.id)
        if held is not None:
            return (held.gpos, held.spos), False
        t.gpos += 1
        spos = None
        if e.stream_id is not None:
            sk = stream_key(e.store, e.stream_id)
            spos = t.spos[sk] = t.spos.get(sk, 0) + 1
        held = _Held((e.timestamp, escape_id(e.id)), e.id, user_part(e.user_id), encode_part(e.type),
                     t.gpos, spos, body)
        t.events[e.id] = held
        return (t.gpos, spos), True

    async def record_offsets(self, tenants: Sequence[str], covers: Covers, expected: Expected | None = None
                             ) -> dict[tuple[str, str], int | None]:
        """See ``HotWriter.record_offsets``."""
        out: dict[tuple[str, str], int | None] = {}
        for tenant in tenants:
            for f, p in max_set(self._t(tenant).offsets, tenant, covers, expected).items():
                out[(tenant, f)] = p
        return out

    async def read_offsets(self, fields: Sequence[str]) -> dict[tuple[str, str], int | None]:
        """See ``HotWriter.read_offsets``."""
        return {(name, f): self._t(name).offsets.get(f) for name in sorted(self._written) for f in fields}

    async def mark_lineage(self, covers: Covers) -> dict[str, int | None]:
        """See ``HotWriter.mark_lineage``."""
        return max_set(self._lineage, "", covers, None)

    async def read_lineage(self, fields: Sequence[str]) -> dict[str, int | None]:
        """See ``HotWriter.read_lineage``."""
        return {f: self._lineage.get(f) for f in fields}

    def positions_lost(self) -> None:
        """See ``HotWriter.positions_lost``: memory loses nothing, so nothing changes."""

    # -- HotHandoff ----------------------------------------------------------------------
    async def tenants(self) -> list[str]:
        return sorted(self._written)

    async def windows(self, tenant: str) -> list[int]:
        w = self._window_ms
        return sorted({h.key[0] - h.key[0] % w for h in self._t(tenant).events.values()})

    async def read_window(self, tenant: str, window: int, window_ms: int) -> dict[str, Row]:
        held = sorted((h for h in self._t(tenant).events.values() if window <= h.key[0] < window + window_ms),
                      key=lambda h: h.key)
        return {h.id: h.row() for h in held}

    async def remove_events(self, tenant: str, window: int, window_ms: int, refs: Sequence[HotRef]) -> int:
        t = self._t(tenant)
        removed = 0
        for r in refs:
            held = t.events.get(r.id)
            if held is not None and held.key[0] == r.ts and window <= r.ts < window + window_ms:
                del t.events[r.id]
                removed += 1
        return removed

    async def mirror_watermark(self, tenant: str, watermark_ms: int) -> int:
        t = self._t(tenant)
        t.watermark = max(t.watermark, watermark_ms)
        return t.watermark

    async def acquire_lease(self, tenant: str, holder: str, ttl_ms: int) -> bool:
        now = self._clock()
        current = self._leases.get(tenant)
        if current is not None and current[1] > now and current[0] != holder:
            return False
        self._leases[tenant] = (holder, now + ttl_ms / 1000)
        return True

    async def renew_lease(self, tenant: str, holder: str, ttl_ms: int) -> bool:
        now = self._clock()
        current = self._leases.get(tenant)
        if current is None or current[0] != holder or current[1] <= now:
            return False
        self._leases[tenant] = (holder, now + ttl_ms / 1000)
        return True

    async def release_lease(self, tenant: str, holder: str) -> None:
        current = self._leases.get(tenant)
        if current is not None and current[0] == holder:
            del self._leases[tenant]

    # -- HotStore ------------------------------------------------------------------------
    async def scan(self, tenant: str, src: Sources, *, lo: int, hi: int | None, order: str,
                   after: tuple[int, str] | None, limit: int, examine: int = 1000,
                   first: bool = False, then_w: bool = False) -> ScanResult:
        t = self._t(tenant)
        w = t.watermark if first else None
        if w is not None:
            lo = max(lo, w)
        desc = order == "desc"
        cut = None if after is None else (after[0], escape_id(after[1]))
        hits = sorted((h for h in t.events.values()
                       if lo <= h.key[0] and (hi is None or h.key[0] < hi) and _matches(src, h)
                       and (cut is None or (h.key < cut if desc else h.key > cut))),
                      key=lambda h: h.key, reverse=desc)
        rows = [h.row() for h in hits[:limit]]
        w_after = t.watermark if then_w else None
        if len(hits) < limit:  # a full page is not complete, even the range's last (allowed)
            return ScanResult(rows, True, None, w, w_after)
        return ScanResult(rows, False, (rows[-1].ts, rows[-1].id), w, w_after)

    async def count(self, tenant: str, src: Sources, *, lo: int, hi: int | None,
                    bucket_ms: int | None = None, clamp: bool = False) -> tuple[int, int, dict[int, int]]:
        t = self._t(tenant)
        if clamp:
            lo = max(lo, t.watermark)
        total = 0
        buckets: dict[int, int] = {}
        for h in t.events.values():
            ts = h.key[0]
            if lo <= ts and (hi is None or ts < hi) and _matches(src, h):
                total += 1
                if bucket_ms is not None:
                    b = ts - ts % bucket_ms
                    buckets[b] = buckets.get(b, 0) + 1
        return t.watermark, total, dict(sorted(buckets.items()))

    def counts_at_watermark(self, tenant: str) -> bool:
        return True

    async def rows(self, tenant: str, ids: Sequence[str]) -> list[Row | None]:
        events = self._t(tenant).events
        return [None if (h := events.get(i)) is None else h.row() for i in ids]

    async def by_position(self, tenant: str, *, after: int | None, order: str, limit: int,
                          least: int | None = None, greatest: int | None = None) -> list[SeqRow]:
        t = self._t(tenant)
        desc = order == "desc"
        lo = least if least is not None else 1
        hi = greatest if greatest is not None else t.gpos
        if after is not None:
            lo, hi = (lo, min(hi, after - 1)) if desc else (max(lo, after + 1), hi)
        found = sorted((h for h in t.events.values() if lo <= h.gpos <= hi), key=lambda h: h.gpos,
                       reverse=desc)[:limit]
        return [SeqRow(h.gpos, h.id, h.row()) for h in found]

    async def last_position(self, tenant: str) -> int:
        return self._t(tenant).gpos

    async def watermark(self, tenant: str) -> int:
        return self._t(tenant).watermark

    async def last_announced(self, tenant: str) -> int | None:
        tail = self._t(tenant).tail
        return tail[-1].last if tail else None

    async def first_announced(self, tenant: str) -> int | None:
        tail = self._t(tenant).tail
        return tail[0].first if tail else None

    async def announced_after(self, tenant: str, after: int, *, count: int, block_ms: int | None = None
                              ) -> tuple[list[Announcement], list[str]]:
        t = self._t(tenant)
        found = [a for a in t.tail if a.last > after][:count]
        if found or block_ms is None:
            return found, []
        async with self._announced:
            try:
                await asyncio.wait_for(self._announced.wait_for(
                    lambda: bool(t.tail) and t.tail[-1].last > after), block_ms / 1000)
            except TimeoutError:
                return [], []
        return [a for a in t.tail if a.last > after][:count], []


__all__ = ["MemoryHotStore"]
