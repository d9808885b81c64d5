"""Writing normalized events into the Redis hot tier (the hot-tier write contract).

One Lua script (``write.lua``, shipped as package data) per (tenant, chunk of at most
``CHUNK_MAX`` events) dedupes by id, assigns positions once per id (recorded in the id
buckets), stores the body as a member of the user's set of the day, indexes it by type and
day and in ``seq`` and ``win``, and appends new events to the tenant's tail stream with entry
id ``<gpos>-0`` (the layout is ``keys``'). ``KEYS[1]`` is the tenant's ``ib`` key so the call
routes to the tenant's Cluster slot; every other key name is built in
Lua from the ``es:{T}`` base passed in ``ARGV`` and from the ``keys.encode_part`` forms of the
user id and type computed here, so the names are exactly those of ``eventstrata.keys``.

Positions are never given twice: each call passes the highest position of the tenant this
writer has seen acknowledged, and the script moves the tenant's positions past it (and past what
the node holds, by ``keys.POS_GAP``) when the positions were last given on another Redis node
or the node holds less (it restarted, failed over or was restored from a copy, and may have lost
positions that readers saw: ``write.lua``'s header).

Each write also records the Kafka offsets it covers (``covers``) in the tenant's ``offsets``
hash, inside the same script call as the data of the tenant's last chunk, and returns the
values it replaced (``ingest.recovery`` explains how the worker heals a Redis that lost
acknowledged writes with them). ``record_offsets`` records offsets for tenants without events
in a batch; ``read_offsets`` reads every tenant's record.

Bodies are encoded here, by the worker, with ``codec.BodyCodec`` (zstd with the packaged
dictionary, without positions): the script stores them as opaque bytes, and readers take the
positions from the member / id bucket / the tail entry (see ``codec``).

``prepare_chunks`` is pure (it builds the script arguments); ``RedisHotWriter`` does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from redis.exceptions import NoScriptError

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.scripts import MAX_FIELDS, WRITE, call
from eventstrata.keys import (
    ID_END,
    NO_USER,
    KeyLayout,
    TenantKeys,
    body_member,
    day_of,
    encode_part,
    escape_id,
    hash_tag,
    id_hash,
    stream_key,
)
from eventstrata.model import Event
from eventstrata.redisconn import RedisClient, reply

log = logging.getLogger(__name__)

CHUNK_MAX = 500
"""Most events per Lua call (bounds the time one call holds Redis and the script's stack)."""

WRITE_SCRIPT: bytes = WRITE.source
WRITE_SCRIPT_SHA: str = WRITE.sha


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of ``HotWriter.write``.

    ``positions[i]`` = ``(global_position, stream_position or None)`` of ``events[i]`` as stored
    (for a duplicate: the positions assigned when the id was first stored). ``recorded`` =
    ``(tenant, offset field)`` → the value the tenant's offsets record held for that field
    before this write (None: no record), for every tenant written and every ``covers`` field.
    """

    stored: int
    duplicates: int
    positions: tuple[tuple[int, int | None], ...]
    recorded: Mapping[tuple[str, str], int | None] = field(default_factory=dict)


Covers = Sequence[tuple[str, int]]
"""``(offset field, next offset)`` pairs a write records (see ``ingest.recovery``)."""

Expected = Mapping[tuple[str, str], int]
"""``(tenant, offset field)`` → the value the writer expects that tenant's record to hold at
least. A record found below it (Redis lost writes) is left as it is by the write or refresh,
so it keeps pointing before the lost records until the replay stored them again."""


EncodedEvent = tuple[bytes, bytes]
"""What the write sends for one event: ``(meta, stored body)`` (see ``encode_event``)."""


class HotWriter(Protocol):
    """Writes events to the hot tier; returns once Redis acknowledged every write."""

    def encode(self, events: Sequence[Event]) -> list[EncodedEvent]:
        """The encoded form of ``events`` (serialized, compressed): CPU only, no I/O, never
        blocks on anything else. The ingest pipeline calls it while the previous batch is being
        written, so that Redis does not wait for this work."""
        ...

    async def write(self, events: Sequence[Event], encoded: Sequence[EncodedEvent] | None = None,
                    *, covers: Covers = (), expected: Expected | None = None) -> WriteResult:
        """Store ``events`` (any tenants, any order); ``encoded`` = ``encode(events)`` when the
        caller has it already (else it is computed here). Idempotent per (tenant, id). Each
        tenant's offsets record gets ``covers`` (max-set; not where it is below ``expected``),
        atomically with that tenant's last stored chunk.

        Blocks only on Redis acknowledgements. Raises the Redis client's errors
        (``redis.exceptions.RedisError`` and subclasses) to the caller; retrying is safe.
        """
        ...

    async def record_offsets(self, tenants: Sequence[str], covers: Covers, expected: Expected | None = None
                             ) -> dict[tuple[str, str], int | None]:
        """Max-set ``covers`` into each tenant's offsets record (not where it is below
        ``expected``; one round trip); returns the previous values per ``(tenant, field)``.
        Raises the client's ``RedisError``s."""
        ...

    async def read_offsets(self, fields: Sequence[str]) -> dict[tuple[str, str], int | None]:
        """Every tenant's (``es:tenants``) recorded value of each of ``fields``, None where the
        tenant has none (two round trips). Raises the client's ``RedisError``s."""
        ...

    async def mark_lineage(self, covers: Covers) -> dict[str, int | None]:
        """Max-set ``covers`` into the deployment's lineage record (``KeyLayout.lineage``; one
        round trip); returns each field's previous value (None: absent). Raises the client's
        ``RedisError``s."""
        ...

    async def read_lineage(self, fields: Sequence[str]) -> dict[str, int | None]:
        """The lineage record's value of each of ``fields`` (None: absent). Raises the client's
        ``RedisError``s."""
        ...

    def positions_lost(self) -> None:
        """Note that Redis lost data (the lineage mark is gone): from now on a tenant that the
        hot tier holds no position of is not taken for a new one -- its positions continue above
        every position given before (``write.lua``), not from 1. No I/O."""
        ...


@lru_cache(maxsize=65_536)
def _encoded(part: str) -> str:
    return encode_part(part)


@dataclass(frozen=True, slots=True)
class Chunk:
    """The arguments of one Lua call: ``key`` routes the call (the tenant's ``ib`` key; for a
    ``store``, the shard's ``days``)."""

    tenant: str
    indexes: tuple[int, ...]  # positions of the chunk's events in the caller's sequence
    key: str
    args: tuple[bytes | str, ...] = field(repr=False)
    covers: tuple[str, ...] = ()  # offset fields recorded by this call (a tenant's last chunk)


def encode_event(event: Event, window_ms: int, codec: BodyCodec) -> EncodedEvent:
    """The two script arguments of one event: ``(meta, stored body)`` (see write.lua; the meta
    carries the id's hash for the id buckets). Pure apart from the codec's compression
    context.

    Raises ``ValueError`` for an event that already carries positions (they are assigned by
    the script, never taken from the input).
    """
    if event.global_position is not None or event.stream_position is not None:
        raise ValueError(f"event {event.id!r} already carries positions")
    ts = event.timestamp
    window = ts - ts % window_ms
    user = _encoded(event.user_id) if event.user_id is not None else NO_USER
    sid = stream_key(event.store, event.stream_id) if event.stream_id is not None else b""
    head = f"{ts}|{window}|{day_of(ts)}|{user}|{_encoded(event.type)}|{len(sid)}|{id_hash(event.id)}"
    meta = head.encode("ascii") + sid + event.id.encode("utf-8", "surrogatepass")
    return meta, codec.encode_event(event)


def call_head(op: str, base: str, layout: KeyLayout, tail_maxlen: int, seen: int = 0) -> tuple[str, ...]:
    """The first arguments of a ``write.lua`` call: the operation, the base, the user sets'
    maximum and, but for ``store``, the tail's length and ``seen``, the highest position of the
    tenant the writer has seen acknowledged (0: none). Pure."""
    head = (op, base, str(layout.user_set_max))
    return head if op == "store" else (*head, str(tail_maxlen), str(seen))


def offset_args(tenant: str, covers: Covers, expected: Expected | None) -> list[str]:
    """The offsets arguments of a ``write.lua`` call for ``tenant``: their count, then per field
    ``field, next offset, expected value ('' = none)``. Pure."""
    args = [str(len(covers))]
    for f, off in covers:
        want = expected.get((tenant, f)) if expected else None
        args += [f, str(off), "" if want is None else str(want)]
    return args


def prepare_chunks(
    events: Sequence[Event],
    layout: KeyLayout,
    *,
    window_ms: int,
    tail_maxlen: int,
    codec: BodyCodec,
    chunk_max: int = CHUNK_MAX,
    encoded: Sequence[EncodedEvent] | None = None,
    covers: Covers = (),
    expected: Expected | None = None,
    seen: Callable[[str], int] | None = None,
) -> dict[str, list[Chunk]]:
    """Group ``events`` by tenant (keeping their order) and cut each tenant's events into
    chunks of at most ``chunk_max``; ``encoded[i]`` (when given) is ``encode_event`` of
    ``events[i]``; each tenant's last chunk records ``covers`` (with the tenant's ``expected``
    values); every call carries ``seen(tenant)``, the position of ``call_head``. Pure.
    Returns tenant → chunks in order."""
    if encoded is not None and len(encoded) != len(events):
        raise ValueError("encoded must have one entry per event")
    by_tenant: dict[str, list[int]] = {}
    for i, ev in enumerate(events):
        by_tenant.setdefault(ev.tenant, []).append(i)
    out: dict[str, list[Chunk]] = {}
    for tenant, idx in by_tenant.items():
        tk: TenantKeys = layout.tenant(tenant)
        chunks: list[Chunk] = []
        for start in range(0, len(idx), chunk_max):
            part = idx[start : start + chunk_max]
            last = start + chunk_max >= len(idx)
            args: list[bytes | str] = [*call_head("all", tk.base, layout, tail_maxlen,
                                                  seen(tenant) if seen else 0),
                                       *offset_args(tenant, covers if last else (), expected)]
            for i in part:
                meta, body = (encoded[i] if encoded is not None
                              else encode_event(events[i], window_ms, codec))
                args.append(meta)
                args.append(body)
            chunks.append(Chunk(tenant, tuple(part), tk.id_buckets, tuple(args),
                                tuple(f for f, _ in covers) if last else ()))
        out[tenant] = chunks
    return out


class RedisHotWriter:
    """``HotWriter`` on a Redis or Redis Cluster client (``eventstrata.redisconn``).

    Each tenant's chunks go out in one pipeline (in order, one round trip); chunks of different
    tenants run concurrently, at most ``concurrency`` pipelines at a time. Calls use EVALSHA
    and fall back to EVAL when the server answers NOSCRIPT (restart, failover, new node).
    """

    def __init__(
        self,
        redis: RedisClient,
        layout: KeyLayout,
        *,
        window_ms: int,
        tail_maxlen: int,
        concurrency: int = 4,
        chunk_max: int = CHUNK_MAX,
        codec: BodyCodec | None = None,
    ) -> None:
        if not 1 <= chunk_max <= CHUNK_MAX:
            raise ValueError(f"chunk_max must be 1..{CHUNK_MAX}")
        self._redis = redis
        self._layout = layout
        self._window_ms = window_ms
        self._tail_maxlen = tail_maxlen
        self._chunk_max = chunk_max
        self._codec = codec if codec is not None else BodyCodec()
        self._sem = asyncio.Semaphore(concurrency)
        self._known_tenants: set[str] = set()
        self._seen: dict[str, int] = {}
        """Tenant → the highest global position this writer has seen acknowledged (``call_head``)."""
        self._lost = False
        """``positions_lost`` was called: every tenant counts as having had a position."""
        self.round_trips = 0
        """Redis round trips made (pipelines + fallbacks + SADDs), for metrics."""

    def encode(self, events: Sequence[Event]) -> list[EncodedEvent]:
        """See ``HotWriter.encode``."""
        return [encode_event(e, self._window_ms, self._codec) for e in events]

    async def write(self, events: Sequence[Event], encoded: Sequence[EncodedEvent] | None = None,
                    *, covers: Covers = (), expected: Expected | None = None) -> WriteResult:
        """See ``HotWriter.write``."""
        if not events:
            return WriteResult(0, 0, ())
        plan = prepare_chunks(
            events, self._layout, window_ms=self._window_ms, tail_maxlen=self._tail_maxlen,
            codec=self._codec, chunk_max=self._chunk_max, encoded=encoded, covers=covers,
            expected=expected, seen=self._hint,
        )
        new_tenants = [t for t in plan if t not in self._known_tenants]
        if new_tenants:
            self.round_trips += 1
            await self._redis.sadd(self._layout.tenants, *new_tenants)
            self._known_tenants.update(new_tenants)
        positions: list[tuple[int, int | None]] = [(0, None)] * len(events)
        if self._layout.shards > 1:
            return await self._write_sharded(events, encoded, plan, positions, covers, expected)
        results = await asyncio.gather(*(self._run(chunks) for chunks in plan.values()))
        stored = 0
        recorded: dict[tuple[str, str], int | None] = {}
        for per_tenant in results:
            for chunk, flat in per_tenant:
                top = 0
                for j, i in enumerate(chunk.indexes):
                    is_new, gpos, spos = flat[3 * j], flat[3 * j + 1], flat[3 * j + 2]
                    stored += int(is_new)
                    positions[i] = (int(gpos), int(spos) if spos else None)
                    top = max(top, gpos)
                self._note_seen(chunk.tenant, top)
                prev = flat[3 * len(chunk.indexes):]
                for f, raw in zip(chunk.covers, prev, strict=True):
                    recorded[(chunk.tenant, f)] = _offset(raw)
        return WriteResult(stored, len(events) - stored, tuple(positions), recorded)

    def positions_lost(self) -> None:
        """See ``HotWriter.positions_lost``."""
        self._lost = True

    def _hint(self, tenant: str) -> int:
        """The position a call passes for ``tenant`` (``call_head``'s ``seen``): the highest one
        acknowledged to this writer, and at least 1 after ``positions_lost`` (a tenant whose data
        Redis lost looks new, but had positions)."""
        return max(self._seen.get(tenant, 0), int(self._lost))

    def _note_seen(self, tenant: str, gpos: int) -> None:
        """Raise ``tenant``'s ``_seen`` to ``gpos``, a position a write got acknowledged."""
        if gpos > self._seen.get(tenant, 0):
            self._seen[tenant] = gpos

    async def record_offsets(self, tenants: Sequence[str], covers: Covers, expected: Expected | None = None
                             ) -> dict[tuple[str, str], int | None]:
        """See ``HotWriter.record_offsets``. ``write.lua`` calls without events, so the rule for
        the offsets record has one home."""
        if not tenants or not covers:
            return {}
        fields = tuple(f for f, _ in covers)
        chunks = []
        for t in tenants:
            base = self._layout.base_of(t)
            args = (*self._head("all", base, t), *offset_args(t, covers, expected))
            chunks.append(Chunk(t, (), f"{base}:ib", args, fields))
        return {(c.tenant, f): _offset(raw) for c, flat in await self._run(chunks)
                for f, raw in zip(c.covers, flat, strict=True)}

    async def read_offsets(self, fields: Sequence[str]) -> dict[tuple[str, str], int | None]:
        """See ``HotWriter.read_offsets``."""
        raw_tenants: Any = await reply(self._redis.smembers(self._layout.tenants))
        tenants = sorted(t.decode() if isinstance(t, bytes) else str(t) for t in raw_tenants)
        if not tenants or not fields:
            return {}
        owners = [hash_tag(b) for t in tenants for b in self._layout.tenant(t).bases]
        pipe = self._redis.pipeline(transaction=False)
        for t in owners:
            pipe.hmget(f"{self._layout.base_of(t)}:offsets", list(fields))
        self.round_trips += 2
        replies: list[Any] = await pipe.execute()
        return {(t, f): _offset(raw) for t, vals in zip(owners, replies, strict=True)
                for f, raw in zip(fields, vals, strict=True)}

    async def mark_lineage(self, covers: Covers) -> dict[str, int | None]:
        """See ``HotWriter.mark_lineage``."""
        if not covers:
            return {}
        self.round_trips += 1
        flat = [str(x) for pair in covers for x in pair]
        prev: Any = await call(self._redis, MAX_FIELDS, self._layout.lineage, flat)
        return {f: _offset(raw) for (f, _), raw in zip(covers, prev, strict=True)}

    async def read_lineage(self, fields: Sequence[str]) -> dict[str, int | None]:
        """See ``HotWriter.read_lineage``."""
        if not fields:
            return {}
        self.round_trips += 1
        raw: Any = await reply(self._redis.hmget(self._layout.lineage, list(fields)))
        return {f: _offset(v) for f, v in zip(fields, raw, strict=True)}

    async def _write_sharded(self, events: Sequence[Event], encoded: Sequence[EncodedEvent] | None,
                             plan: dict[str, list[Chunk]], positions: list[tuple[int, int | None]],
                             covers: Covers, expected: Expected | None) -> WriteResult:
        """The write of a sharded layout, per tenant (tenants concurrently), in this order:

        1. ``reserve`` (write.lua) in the tenant's slot, all chunks in one pipeline: dedupe and
           positions; nothing is stored or announced yet;
        2. ``store`` (write.lua) in the shards (shards concurrently), for the new events and the
           duplicates (each shard adds a body only where it is missing: a first write that
           stopped before its confirm, or a shard that lost writes); each shard records the
           offsets too, under its hash tag (``ingest.recovery``: a shard that loses writes is
           healed by replay like the tenant's slot);
        3. ``confirm`` (write.lua): the stored positions, then the tail entry once they continue
           the confirmed ones, and the offsets record — after the data, so neither the tail nor
           the record ever runs ahead of what the shards hold.

        A failure anywhere raises; the caller's retry repeats all three steps, which store and
        announce each event once."""
        if encoded is None:
            encoded = self.encode(events)
        results = await asyncio.gather(*(self._write_sharded_tenant(tenant, chunks, events, encoded, covers,
                                                                    expected)
                                         for tenant, chunks in plan.items()))
        stored = 0
        recorded: dict[tuple[str, str], int | None] = {}
        for got, n_new, rec in results:
            for i, pos in got.items():
                positions[i] = pos
            stored += n_new
            recorded.update(rec)
        return WriteResult(stored, len(events) - stored, tuple(positions), recorded)

    async def _write_sharded_tenant(
        self, tenant: str, chunks: list[Chunk], events: Sequence[Event], encoded: Sequence[EncodedEvent],
        covers: Covers, expected: Expected | None,
    ) -> tuple[dict[int, tuple[int, int | None]], int, dict[tuple[str, str], int | None]]:
        tk = self._layout.tenant(tenant)
        reserve = [Chunk(tenant, c.indexes, tk.id_buckets, (*self._head("reserve", tk.base, tenant), "0",
                                                     *(encoded[i][0] for i in c.indexes)))
                   for c in chunks]
        got: dict[int, tuple[int, int | None]] = {}
        per_shard: dict[int, list[bytes]] = {}
        confirmed: list[int] = []
        n_new = 0
        for chunk, flat in await self._run(reserve):
            for j, i in enumerate(chunk.indexes):
                status, gpos, spos, old_u, old_ts = flat[5 * j: 5 * j + 5]
                g, s = int(gpos), (int(spos) if spos else None)
                got[i] = (g, s)
                if status == 0:
                    continue
                ev = events[i]
                u = _encoded(ev.user_id) if ev.user_id is not None else NO_USER
                t = _encoded(ev.type)
                if old_u:
                    ou, ots = old_u.decode(), int(old_ts)
                    per_shard.setdefault(tk.shard_index(ou), []).extend(
                        (f"x|{ots}|{day_of(ots)}|{ou}||".encode(), escape_id(ev.id) + ID_END))
                per_shard.setdefault(tk.shard_index(u), []).extend(
                    (f"{'n' if status == 1 else 'r'}|{ev.timestamp}|{day_of(ev.timestamp)}|{u}|{t}|".encode(),
                     body_member(ev.id, t, g, s, encoded[i][1])))
                confirmed.append(g)
                if status == 1:
                    n_new += 1
        shards = tk.shards()
        step = 2 * self._chunk_max
        fields = tuple(f for f, _ in covers)
        stores: list[list[Chunk]] = []
        for s, args in per_shard.items():
            tag = hash_tag(shards[s].base)
            stores.append([
                Chunk(tag, (), shards[s].days,
                      (*self._head("store", shards[s].base, tenant),
                       *(offset_args(tag, covers, expected) if k + step >= len(args) else ("0",)),
                       *args[k: k + step]),
                      fields if k + step >= len(args) else ())
                for k in range(0, len(args), step)])
        recorded: dict[tuple[str, str], int | None] = {}
        for per in await asyncio.gather(*(self._run(c) for c in stores)):
            for c, res in per:
                recorded.update({(c.tenant, f): _offset(raw)
                                 for f, raw in zip(c.covers, res[1:], strict=True)})
        confirm = Chunk(tenant, (), tk.id_buckets, (*self._head("confirm", tk.base, tenant),
                                             *offset_args(tenant, covers, expected), *_ranges(confirmed)),
                        fields)
        [(_, prev)] = await self._run([confirm])
        recorded.update({(tenant, f): _offset(raw) for f, raw in zip(fields, prev, strict=True)})
        self._note_seen(tenant, max((g for g, _ in got.values()), default=0))
        return got, n_new, recorded

    def _head(self, op: str, base: str, tenant: str) -> tuple[str, ...]:
        return call_head(op, base, self._layout, self._tail_maxlen, self._hint(tenant))

    async def _run(self, chunks: list[Chunk]) -> list[tuple[Chunk, Any]]:
        """One pipeline of ``write.lua`` EVALSHA calls, in order (a tenant's chunks, one step of
        a sharded write, or the refresh's calls of several tenants). A chunk answered NOSCRIPT
        (the node has not cached the script: restart, failover, new node) is re-run with EVAL —
        only that chunk: the others of the pipeline already ran, and running them again would
        count their events as duplicates. Any other error reply is raised."""
        async with self._sem:
            pipe = self._redis.pipeline(transaction=False)
            for c in chunks:
                pipe.execute_command("EVALSHA", WRITE_SCRIPT_SHA, 1, c.key, *c.args)
            self.round_trips += 1
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing:
                log.info("hot write: NOSCRIPT, falling back to EVAL for %d chunk(s)", len(missing))
            for i in missing:
                self.round_trips += 1
                replies[i] = await self._redis.execute_command("EVAL", WRITE_SCRIPT, 1, chunks[i].key,
                                                               *chunks[i].args)
        out: list[tuple[Chunk, Any]] = []
        for c, r in zip(chunks, replies, strict=True):
            if isinstance(r, Exception):
                raise r
            out.append((c, r))
        return out


def _ranges(positions: Sequence[int]) -> list[str]:
    """Positions as ``lo, hi`` pairs of consecutive runs (ascending). Pure."""
    out: list[str] = []
    lo = hi = None
    for g in sorted(set(positions)):
        if hi is not None and g == hi + 1:
            hi = g
            continue
        if lo is not None:
            out += [str(lo), str(hi)]
        lo = hi = g
    if lo is not None:
        out += [str(lo), str(hi)]
    return out


def _offset(raw: Any) -> int | None:
    """A recorded offset as Redis returns it (``b"12"``; ``b""``/None = no record)."""
    return int(raw) if raw not in (None, b"", "") else None
