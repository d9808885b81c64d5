"""The hot tier as the rest of the product sees it: the ``HotStore`` and ``HotHandoff``
interfaces and ``RedisHotStore``, which implements both.

The query engine (``query.hot_reader``), the live tail (``tail.hub``, ``tail.catchup``) and the
API's position routes read the hot tier only through ``HotStore``; the archiver
(``archive.archiver``) moves windows out of it only through ``HotHandoff``; the ingest worker
writes through ``writer.HotWriter``. All three speak by tenant name, in the terms of the hot
tier's contract (``hotstore.read``: ``Sources``, ``Row``, ``ScanResult``, ``SeqRow``;
``hotstore.tailentry.Announcement``; ``hotstore.handoff.HotRef``), never by key or command. Two
implementations:

- ``RedisHotStore`` (with ``writer.RedisHotWriter``): the product's, on a Redis or Redis Cluster
  client (single slot or sharded tenants, as ``keys.KeyLayout`` says); each method is one or a
  few script calls.
- ``hotstore.memory.MemoryHotStore``: in process memory, for unit tests of the engine, the tail,
  the archiver and the ingest pipeline. It implements all three interfaces.
  ``tests/integration/test_hotstore_contract.py`` writes the same events to both and checks that
  every read answers alike, so the unit tests' store cannot drift from Redis.

The contract each implementation keeps (the docstrings of ``hotstore.read`` have the details):

- a tenant's events are ordered by ``(time, id)`` (ids compared as their escaped UTF-8 bytes,
  ``keys.escape_id``); ``scan`` returns up to ``limit`` of them strictly after a position; a
  result that is not ``complete`` gives a ``boundary`` up to which every event was returned (a
  full page may end the range and still not say ``complete``: the next call returns nothing);
- ``first`` reads the archive watermark W before the scan and clamps ``lo`` at it, ``then_w``
  reads W after it (both in the same atomic step for a tenant in one slot);
- every stored event has a global position (``by_position`` reads them in position order) and
  the tail announces each write's new events once (``announced_after``), positions a jump left
  empty included (``Announcement.empty``).

Every method may block on its store; ``RedisHotStore``'s raise the client's ``RedisError``s and
``ValueError`` for data that does not parse. Neither decodes bodies: callers use
``codec.BodyCodec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eventstrata.hotstore import handoff, read, tailentry
from eventstrata.hotstore.handoff import HotRef
from eventstrata.hotstore.read import Row, ScanResult, SeqRow, Sources
from eventstrata.hotstore.tailentry import Announcement
from eventstrata.keys import KeyLayout
from eventstrata.redisconn import RedisClient


class HotStore(Protocol):
    """Reads of one deployment's hot tier, per tenant (see the module docstring)."""

    async def scan(self, tenant: str, src: Sources, *, lo: int, hi: int | None, order: str,
                   after: tuple[int, str] | None, limit: int, examine: int = 1000,
                   first: bool = False, then_w: bool = False) -> ScanResult:
        """At most ``limit`` events of ``src`` with time in ``[lo, hi)`` strictly after
        ``after`` in ``order`` (``read.scan``)."""
        ...

    async def count(self, tenant: str, src: Sources, *, lo: int, hi: int | None,
                    bucket_ms: int | None = None, clamp: bool = False) -> tuple[int, int, dict[int, int]]:
        """``(W, total, bucket start → count)`` of ``src`` over ``[lo, hi)``, or with ``clamp``
        over ``[max(lo, W), hi)`` read atomically with W (``read.count``). ``clamp`` raises
        ``ValueError`` for a tenant ``counts_at_watermark`` refuses."""
        ...

    def counts_at_watermark(self, tenant: str) -> bool:
        """Whether ``count(clamp=True)`` serves ``tenant`` (its W and counts are read in one
        atomic step). No I/O."""
        ...

    async def rows(self, tenant: str, ids: Sequence[str]) -> list[Row | None]:
        """The stored rows of ``ids`` in order (None where absent)."""
        ...

    async def by_position(self, tenant: str, *, after: int | None, order: str, limit: int,
                          least: int | None = None, greatest: int | None = None) -> list[SeqRow]:
        """Up to ``limit`` global positions in ``[least, greatest]`` strictly after ``after`` in
        ``order``, each with its row; fewer than ``limit``: there are no more
        (``read.read_seq``)."""
        ...

    async def last_position(self, tenant: str) -> int:
        """The tenant's last given global position (0 before its first event)."""
        ...

    async def watermark(self, tenant: str) -> int:
        """The archive watermark W as queries use it (0: nothing archived)."""
        ...

    async def last_announced(self, tenant: str) -> int | None:
        """The last position the tenant's tail announces; None when it holds no announcement."""
        ...

    async def first_announced(self, tenant: str) -> int | None:
        """The first position the tenant's tail still announces; None when it holds none."""
        ...

    async def announced_after(self, tenant: str, after: int, *, count: int, block_ms: int | None = None
                              ) -> tuple[list[Announcement], list[str]]:
        """At most ``count`` announcements whose last position is above ``after``, oldest
        first; with ``block_ms``, waits up to that long for one when there is none yet. Also
        returns the ids of stored announcements that do not parse (skipped)."""
        ...


class HotHandoff(Protocol):
    """The archiver's side of the hot tier (``hotstore.handoff`` has the Redis details): list and
    read the hot windows, raise the watermark mirror, hold the tenant's archiver lease, remove
    archived events."""

    async def tenants(self) -> list[str]:
        """Every tenant the hot tier has stored events of, sorted."""
        ...

    async def windows(self, tenant: str) -> list[int]:
        """The starts of the windows (of the writer's ``window_ms``) holding events, ascending."""
        ...

    async def read_window(self, tenant: str, window: int, window_ms: int) -> dict[str, Row]:
        """Every stored event of window ``window``: id → its row."""
        ...

    async def remove_events(self, tenant: str, window: int, window_ms: int, refs: Sequence[HotRef]) -> int:
        """Remove archived events of ``window`` from every hot structure (their bodies, indexes,
        positions and ids); the window stops being listed once none of its events is left.
        Idempotent. Returns how many were removed."""
        ...

    async def watermark(self, tenant: str) -> int:
        """The watermark mirror W (0: nothing archived)."""
        ...

    async def mirror_watermark(self, tenant: str, watermark_ms: int) -> int:
        """Raise the mirror of W to ``watermark_ms`` (never lowers it); returns its value now."""
        ...

    async def acquire_lease(self, tenant: str, holder: str, ttl_ms: int) -> bool:
        """Take the tenant's archiver lease for ``ttl_ms`` (or renew it when ``holder`` holds it);
        False when another holder has it."""
        ...

    async def renew_lease(self, tenant: str, holder: str, ttl_ms: int) -> bool:
        """Extend the lease if ``holder`` still holds it; False when it was lost."""
        ...

    async def release_lease(self, tenant: str, holder: str) -> None:
        """Give the lease up if ``holder`` holds it."""
        ...


class RedisHotStore:
    """``HotStore`` and ``HotHandoff`` on a Redis or Redis Cluster client (``redisconn``), with
    ``layout``'s keys. Stateless apart from the client; safe to share between tasks."""

    def __init__(self, redis: RedisClient, layout: KeyLayout) -> None:
        self.redis = redis
        self.layout = layout

    async def scan(self, tenant: str, src: Sources, *, lo: int, hi: int | None, order: str,
                   after: tuple[int, str] | None, limit: int, examine: int = 1000,
                   first: bool = False, then_w: bool = False) -> ScanResult:
        return await read.scan(self.redis, self.layout.tenant(tenant), src, lo=lo, hi=hi, order=order,
                               after=after, limit=limit, examine=examine, first=first, then_w=then_w)

    async def count(self, tenant: str, src: Sources, *, lo: int, hi: int | None,
                    bucket_ms: int | None = None, clamp: bool = False) -> tuple[int, int, dict[int, int]]:
        return await read.count(self.redis, self.layout.tenant(tenant), src, lo=lo, hi=hi,
                                bucket_ms=bucket_ms, clamp=clamp)

    def counts_at_watermark(self, tenant: str) -> bool:
        return not self.layout.tenant(tenant).sharded

    async def rows(self, tenant: str, ids: Sequence[str]) -> list[Row | None]:
        rows, _ = await read.read_ids(self.redis, self.layout.tenant(tenant), ids)
        return rows

    async def by_position(self, tenant: str, *, after: int | None, order: str, limit: int,
                          least: int | None = None, greatest: int | None = None) -> list[SeqRow]:
        return await read.read_seq(self.redis, self.layout.tenant(tenant), after=after, order=order,
                                   limit=limit, least=least, greatest=greatest)

    async def last_position(self, tenant: str) -> int:
        return await read.last_position(self.redis, self.layout.tenant(tenant))

    async def watermark(self, tenant: str) -> int:
        return await handoff.read_watermark(self.redis, self.layout.tenant(tenant))

    async def last_announced(self, tenant: str) -> int | None:
        return await tailentry.last_announced(self.redis, self.layout.tenant(tenant))

    async def first_announced(self, tenant: str) -> int | None:
        return await tailentry.first_announced(self.redis, self.layout.tenant(tenant))

    async def announced_after(self, tenant: str, after: int, *, count: int, block_ms: int | None = None
                              ) -> tuple[list[Announcement], list[str]]:
        return await tailentry.announced_after(self.redis, self.layout.tenant(tenant), after,
                                               count=count, block_ms=block_ms)


    # -- HotHandoff --------------------------------------------------------------------
    async def tenants(self) -> list[str]:
        return await handoff.tenants(self.redis, self.layout.tenants)

    async def windows(self, tenant: str) -> list[int]:
        return await handoff.hot_windows(self.redis, self.layout.tenant(tenant))

    async def read_window(self, tenant: str, window: int, window_ms: int) -> dict[str, Row]:
        return await handoff.read_window(self.redis, self.layout.tenant(tenant), window, window_ms)

    async def remove_events(self, tenant: str, window: int, window_ms: int, refs: Sequence[HotRef]) -> int:
        return await handoff.remove_events(self.redis, self.layout.tenant(tenant), window, window_ms, refs)

    async def mirror_watermark(self, tenant: str, watermark_ms: int) -> int:
        return await handoff.mirror_watermark(self.redis, self.layout.tenant(tenant), watermark_ms)

    async def acquire_lease(self, tenant: str, holder: str, ttl_ms: int) -> bool:
        return await handoff.acquire_lease(self.redis, self.layout.tenant(tenant), holder, ttl_ms)

    async def renew_lease(self, tenant: str, holder: str, ttl_ms: int) -> bool:
        return await handoff.renew_lease(self.redis, self.layout.tenant(tenant), holder, ttl_ms)

    async def release_lease(self, tenant: str, holder: str) -> None:
        await handoff.release_lease(self.redis, self.layout.tenant(tenant), holder)


__all__ = ["HotHandoff", "HotStore", "RedisHotStore"]
