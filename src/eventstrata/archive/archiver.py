"""The archiver: moves due hot windows of every tenant from the hot tier to Parquet and hands
them over at the watermark. The I/O shell around the pure planning in ``archive.plan``; it
reaches the hot tier only through ``hotstore.interface.HotHandoff`` (``RedisHotStore`` in the
product, ``MemoryHotStore`` in unit tests).

One pass per tenant, holding the tenant's lease (``SET lease holder NX PX``, renewed between
steps; a pass that loses it stops before its next write):

1. repair: raise the hot tier's mirror of W to the manifest's W; delete orphans (files not listed,
   staging leftovers) and retired files whose grace has passed;
2. read the due windows (entirely below the new W, including old windows that got late
   events; ``HotHandoff.read_window``), parse the bodies, drop ids already archived for that date
   (anti-join over the listed files of the date), write one Parquet file per date
   (staging → fsync → rename → fsync dir);
3. publish: replace the manifest listing the new files and the new W (atomic rename);
4. mirror W into the hot tier (max-set), where queries read it once per query: the mirror is
   never above the manifest's W (it is raised only after the manifest is published), so a
   query splitting at the mirror never misses an event;
5. once readers have been able to see the new W for ``grace_ms``, remove exactly the events
   read in step 2 from the hot tier (on Redis: atomic scripts of ≤ 250 events; ``win`` member
   last);
6. compact dates with too many files; prune manifest bookkeeping.

Before step 1 the pass runs the tenant's unfinished erasure jobs (``eventstrata.erasure``,
under the same lease) and drops its tombstones and finished jobs older than their lifetime;
a job that fails is logged and retried by the next pass without holding up the archive.

A crash between any two steps leaves a state queries read correctly (hot ``ts >= W`` from
the hot tier, cold ``ts < W`` from listed files) and that the next pass repairs: unlisted files
are orphans, events still hot below W are read again, found archived and removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter

from eventstrata.archive.destination import Destination
from eventstrata.archive.manifest import FileEntry, Manifest
from eventstrata.archive.parquet_writer import events_table, read_tables, sort_table, write_table
from eventstrata.archive.plan import (
    Advance,
    dates_to_compact,
    due_windows,
    expired_dates,
    new_watermark,
    prune_advances,
    removable_below,
    restamp_pending,
)
from eventstrata.archive.reader import ColdReader
from eventstrata.archive.store import file_rel, load_manifest, save_manifest, tenant_dir
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.handoff import HotRef
from eventstrata.hotstore.interface import HotHandoff
from eventstrata.model import Event
from eventstrata.timeutil import day_of_ms

log = logging.getLogger("eventstrata.archive")

EVENTS_ARCHIVED = Counter("eventstrata_archive_events_written", "Events written to Parquet")
DUPLICATES_SKIPPED = Counter("eventstrata_archive_duplicates_skipped", "Hot events already archived")
EVENTS_REMOVED = Counter("eventstrata_archive_events_removed", "Archived events removed from Redis")
PASS_FAILURES = Counter("eventstrata_archive_pass_failures", "Tenant passes that failed")

# Steps after which the test-only crash hook may kill the process (see eventstrata/processes/archive.py).
CRASH_STEPS = ("staged", "write", "manifest", "mirror", "remove-chunk", "remove", "compact")

MAX_ROWS_PER_FILE = 1_000_000
READ_PARALLEL = 8  # windows read concurrently (each in chunks of the hot tier's scan)
REMOVE_PARALLEL = 4  # windows whose removal scripts run concurrently

T = TypeVar("T")


async def _gather_limited(coros: list[Coroutine[Any, Any, T]], limit: int) -> list[T]:
    """Await ``coros`` with at most ``limit`` running at once; results in order."""
    sem = asyncio.Semaphore(limit)

    async def one(c: Coroutine[Any, Any, T]) -> T:
        async with sem:
            return await c

    return list(await asyncio.gather(*(one(c) for c in coros)))


class LeaseLost(RuntimeError):
    """Another archiver took the tenant's lease; this pass stopped before its next write."""


class ArchiveError(RuntimeError):
    """A hot body could not be archived (malformed); the pass stops before publishing."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class PassReport:
    """What one tenant pass did (mutable while the pass runs, then only read)."""

    tenant: str
    watermark_ms: int = 0
    windows: int = 0
    events_read: int = 0
    rows_written: int = 0
    duplicates: int = 0
    files_written: int = 0
    bytes_written: int = 0
    removed: int = 0
    orphans_deleted: int = 0
    compacted_dates: list[str] = field(default_factory=list)
    expired_dates: list[str] = field(default_factory=list)
    expired_rows: int = 0
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class ArchiverConfig:
    retention_ms: int
    window_ms: int
    grace_ms: int
    lease_ms: int
    compact_files: int = 8
    erasure_tombstone_ms: int = 30 * 86_400_000
    archive_retention_ms: int = 0
    """Archived days that ended this long before the pass's ``now`` are deleted (0 = never)."""


class ErasureJobs(Protocol):
    """The tenants' user-erasure jobs, as the archiver runs them under its lease
    (``erasure.RedisErasureJobs``)."""

    async def unfinished(self, tenant: str) -> list[str]:
        """The ids of the tenant's jobs not yet done, oldest first."""
        ...

    async def execute(self, tenant: str, job_id: str, *, window_ms: int,
                      renew: Callable[[], Awaitable[None]]) -> object:
        """Run one job while the caller holds the tenant's lease (``renew`` renews it)."""
        ...

    async def prune(self, tenant: str, *, now_ms: int, lifetime_ms: int) -> int:
        """Drop the tenant's tombstones and finished jobs older than ``lifetime_ms``."""
        ...


class Archiver:
    """Archives every tenant the hot tier or the archive holds. ``run_once`` may be called
    repeatedly; it is not safe to run two passes of one ``Archiver`` concurrently (use two
    archivers: the lease serialises them per tenant). ``erasures``: the erasure jobs each pass
    runs first (None: there are none)."""

    def __init__(self, hot: HotHandoff, dest: Destination, config: ArchiverConfig,
                 *, erasures: ErasureJobs | None = None, holder: str | None = None,
                 crash_after: str | None = None, clock: Callable[[], int] = wall_ms,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if crash_after is not None and crash_after not in CRASH_STEPS:
            raise ValueError(f"unknown crash step {crash_after!r}; one of {CRASH_STEPS}")
        self.hot = hot
        self.erasures = erasures
        self.dest = dest
        self.cfg = config
        self.holder = holder or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._crash_after = crash_after
        self._clock = clock
        self._sleep = sleep
        self._reader = ColdReader(dest, threads=2)
        self._codec = BodyCodec()  # decodes stored hot bodies (used on the event loop only)
        self._renewed_at = 0

    def close(self) -> None:
        self._reader.close()

    def _step(self, name: str) -> None:
        if self._crash_after == name:
            log.warning("crash hook: exiting after step %s", name)
            os._exit(137)

    async def run_once(self, now_ms: int, *, wait_for_lease: bool = True,
                       on_tenant: Callable[[int, int, str], None] | None = None) -> list[PassReport]:
        """One pass over every tenant at event time ``now_ms``: those the hot tier lists and those
        the archive holds (after Redis lost its data, the pass's repair step restores each tenant's
        watermark mirror from its manifest, so the archive is served again). A tenant whose
        lease another archiver holds is waited for (up to one lease period) or skipped. Failures
        of one tenant are logged, counted and re-raised after the other tenants ran.
        ``on_tenant(i, n, tenant)`` is called before the i-th of the n tenants (for a progress
        bar)."""
        in_archive = await asyncio.to_thread(self.dest.tenants)
        tenants = sorted(set(await self.hot.tenants()) | set(in_archive))
        reports: list[PassReport] = []
        first_error: BaseException | None = None
        for i, tenant in enumerate(tenants):
            if on_tenant is not None:
                on_tenant(i, len(tenants), tenant)
            try:
                reports.append(await self.archive_tenant(tenant, now_ms, wait_for_lease=wait_for_lease))
            except Exception as exc:
                PASS_FAILURES.inc()
                log.exception("archive pass failed for tenant %s", tenant)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return reports

    async def _acquire(self, tenant: str, wait: bool) -> bool:
        deadline = self._clock() + self.cfg.lease_ms + 1000
        while True:
            if await self.hot.acquire_lease(tenant, self.holder, self.cfg.lease_ms):
                return True
            if not wait or self._clock() > deadline:
                return False
            await self._sleep(min(0.5, self.cfg.lease_ms / 4000))

    async def _renew(self, tenant: str, *, force: bool = False) -> None:
        """Renew the lease (at most every lease/4 unless ``force``: before every publish).
        Raises ``LeaseLost`` when another archiver holds it now."""
        now = self._clock()
        if not force and now - self._renewed_at < self.cfg.lease_ms // 4:
            return
        if not await self.hot.renew_lease(tenant, self.holder, self.cfg.lease_ms):
            raise LeaseLost(f"lost the archiver lease of tenant {tenant}")
        self._renewed_at = now

    async def archive_tenant(self, tenant: str, now_ms: int, *, wait_for_lease: bool = True) -> PassReport:
        """One pass for ``tenant`` (steps in the module docstring). Raises ``LeaseLost``,
        ``ArchiveError``, ``ManifestError``, the hot tier's errors (``redis.RedisError``),
        ``OSError``."""
        report = PassReport(tenant)
        if not await self._acquire(tenant, wait_for_lease):
            report.skipped = "lease held by another archiver"
            return report
        self._renewed_at = self._clock()
        try:
            await self._erasures(tenant)
            await self._pass(tenant, now_ms, report)
        finally:
            try:
                await self.hot.release_lease(tenant, self.holder)
            except Exception:
                log.exception("releasing the lease of %s failed (it expires by itself)", tenant)
        return report

    async def _erasures(self, tenant: str) -> None:
        """Run the tenant's unfinished erasure jobs, then prune old tombstones and jobs."""
        jobs = self.erasures
        if jobs is None:
            return
        for job_id in await jobs.unfinished(tenant):
            try:
                await jobs.execute(tenant, job_id, window_ms=self.cfg.window_ms,
                                   renew=lambda: self._renew(tenant, force=True))
            except LeaseLost:
                raise
            except Exception:
                log.exception("erasure %s of tenant %s failed; the next pass retries it", job_id, tenant)
        await jobs.prune(tenant, now_ms=self._clock(), lifetime_ms=self.cfg.erasure_tombstone_ms)

    # -- the pass ----------------------------------------------------------------------------
    async def _pass(self, tenant: str, now_ms: int, report: PassReport) -> None:
        cfg = self.cfg
        manifest = await asyncio.to_thread(load_manifest, self.dest, tenant)
        manifest = await self._repair(tenant, manifest, report)

        windows = await self.hot.windows(tenant)
        target = new_watermark(manifest.watermark_ms, now_ms, cfg.retention_ms, cfg.window_ms)
        due = due_windows(windows, now_ms, cfg.retention_ms, cfg.window_ms, manifest.watermark_ms)
        report.windows = len(due)
        read: dict[int, list[HotRef]] = {}
        added: list[FileEntry] = []
        by_date: dict[str, list[int]] = {}
        for w in due:
            by_date.setdefault(day_of_ms(w), []).append(w)
        for date, wins in sorted(by_date.items()):
            await self._renew(tenant)
            batch: dict[str, Event] = {}
            seen: set[str] = set()
            bodies = await _gather_limited([self.hot.read_window(tenant, w, cfg.window_ms) for w in wins],
                                           READ_PARALLEL)
            for w, window_bodies in zip(wins, bodies, strict=True):
                refs: list[HotRef] = []
                for eid, row in window_bodies.items():
                    try:
                        ev = self._codec.stored_event(row.body, row.ref, row.id, row.ts)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ArchiveError(f"malformed hot body {tenant}/{w}/{eid!r}: {exc}") from exc
                    refs.append(HotRef(eid, ev.timestamp, ev.user_id, ev.type, ev.global_position or 0))
                    if ev.id not in seen:
                        seen.add(ev.id)
                        batch[ev.id] = ev
                read[w] = refs
                report.events_read += len(refs)
                if len(batch) >= MAX_ROWS_PER_FILE:
                    added += await self._write_date(tenant, manifest, date, batch, report)
                    batch = {}
            if batch:
                added += await self._write_date(tenant, manifest, date, batch, report)
        self._step("write")

        advanced = target > manifest.watermark_ms
        if added or advanced:
            await self._renew(tenant, force=True)
            manifest = manifest.publish(tuple(added), target, self._clock())
            manifest = await asyncio.to_thread(save_manifest, self.dest, manifest)
            self._step("manifest")
        report.watermark_ms = await self.hot.mirror_watermark(tenant, manifest.watermark_ms)
        mirrored_at = self._clock()
        if advanced:
            # the new W became visible to readers only now
            manifest = replace(manifest, advances=tuple(
                Advance(a.watermark_ms, mirrored_at) if a.watermark_ms == manifest.watermark_ms else a
                for a in manifest.advances))
        self._step("mirror")

        await self._remove(tenant, manifest, read, report)
        self._step("remove")
        manifest = await self._compact(tenant, manifest, report)
        manifest = await self._expire(tenant, manifest, now_ms, report)
        await self._finish(tenant, manifest)

    async def _repair(self, tenant: str, manifest: Manifest, report: PassReport) -> Manifest:
        mirror = await self.hot.watermark(tenant)
        if mirror < manifest.watermark_ms:
            # a previous run died between publishing and mirroring: readers see W only from now
            now = self._clock()
            stamped = restamp_pending(manifest.advances, now, mirror)
            if stamped != manifest.advances:
                manifest = manifest.with_advances(stamped)
                manifest = await asyncio.to_thread(save_manifest, self.dest, manifest)
            await self.hot.mirror_watermark(tenant, manifest.watermark_ms)
            log.info("repaired watermark mirror of %s: %d -> %d", tenant, mirror, manifest.watermark_ms)
        report.orphans_deleted = await asyncio.to_thread(self._delete_orphans, tenant, manifest)
        return manifest

    def _delete_orphans(self, tenant: str, manifest: Manifest) -> int:
        keep = {file_rel(tenant, f.path) for f in manifest.files}
        keep |= {file_rel(tenant, r.path) for r in manifest.retired}
        keep.add(f"{tenant_dir(tenant)}/_manifest.json")
        n = self.dest.clear_staging(tenant)
        for rel in self.dest.list_files(tenant_dir(tenant)):
            if rel not in keep:
                log.info("deleting orphan archive file %s", rel)
                self.dest.delete(rel)
                n += 1
        return n

    async def _write_date(self, tenant: str, manifest: Manifest, date: str, batch: dict[str, Event],
                          report: PassReport) -> list[FileEntry]:
        present = await asyncio.to_thread(
            self._reader.ids_present, tenant, manifest.files_of_date(date), list(batch))
        fresh = [e for i, e in batch.items() if i not in present]
        report.duplicates += len(present)
        DUPLICATES_SKIPPED.inc(len(present))
        if not fresh:
            return []
        entry = await asyncio.to_thread(self._write_file, tenant, date, fresh)
        report.rows_written += entry.rows
        report.files_written += 1
        report.bytes_written += entry.bytes
        EVENTS_ARCHIVED.inc(entry.rows)
        return [entry]

    def _write_file(self, tenant: str, date: str, events: list[Event]) -> FileEntry:
        name = f"part-{wall_ms()}-{uuid.uuid4().hex[:12]}.parquet"
        staging = self.dest.staging_path(tenant, name)
        info = write_table(events_table(events), staging, bloom_on_id=True)
        self._step("staged")
        path = f"date={date}/{name}"
        size = self.dest.put_file(file_rel(tenant, path), staging)
        return FileEntry(path=path, date=date, min_ts=info.min_ts, max_ts=info.max_ts, rows=info.rows,
                         bytes=size, min_gpos=info.min_gpos, max_gpos=info.max_gpos)

    async def _remove(self, tenant: str, manifest: Manifest, read: dict[int, list[HotRef]],
                      report: PassReport) -> None:
        if not read:
            return
        newest = max(read)
        while True:
            bound = removable_below(manifest.advances, self._clock(), self.cfg.grace_ms)
            if newest + self.cfg.window_ms <= bound:
                break
            pending = [a.at_ms + self.cfg.grace_ms for a in manifest.advances
                       if a.watermark_ms >= newest + self.cfg.window_ms]
            if not pending:  # cannot happen: every read window is below the published W
                raise ArchiveError("read a window above the published watermark")
            wait_ms = max(1, min(pending) - self._clock())
            await self._renew(tenant)
            await self._sleep(min(wait_ms, max(1, self.cfg.lease_ms // 3)) / 1000)
        items = sorted(read.items())
        for start in range(0, len(items), REMOVE_PARALLEL):
            await self._renew(tenant)
            counts = await asyncio.gather(*(self.hot.remove_events(tenant, w, self.cfg.window_ms, refs)
                                            for w, refs in items[start:start + REMOVE_PARALLEL]))
            report.removed += sum(counts)
            EVENTS_REMOVED.inc(sum(counts))
            if start == 0:
                self._step("remove-chunk")

    async def _compact(self, tenant: str, manifest: Manifest, report: PassReport) -> Manifest:
        for date in dates_to_compact(manifest.file_counts(), self.cfg.compact_files):
            await self._renew(tenant)
            olds = manifest.files_of_date(date)
            entry = await asyncio.to_thread(self._merge, tenant, date, olds)
            await self._renew(tenant, force=True)
            manifest = manifest.publish((entry,), manifest.watermark_ms, self._clock(),
                                        removed=tuple(f.path for f in olds))
            manifest = await asyncio.to_thread(save_manifest, self.dest, manifest)
            report.compacted_dates.append(date)
            self._step("compact")
        return manifest

    def _merge(self, tenant: str, date: str, olds: tuple[FileEntry, ...]) -> FileEntry:
        table = read_tables([self.dest.arrow_path(file_rel(tenant, f.path)) for f in olds])
        table = sort_table(table)
        name = f"compact-{wall_ms()}-{uuid.uuid4().hex[:12]}.parquet"
        staging = self.dest.staging_path(tenant, name)
        info = write_table(table, staging, sort=False, bloom_on_id=True)
        path = f"date={date}/{name}"
        size = self.dest.put_file(file_rel(tenant, path), staging)
        return FileEntry(path=path, date=date, min_ts=info.min_ts, max_ts=info.max_ts, rows=info.rows,
                         bytes=size, min_gpos=info.min_gpos, max_gpos=info.max_gpos)

    async def _expire(self, tenant: str, manifest: Manifest, now_ms: int, report: PassReport) -> Manifest:
        """Archive retention: unlist every file of the days ``plan.expired_dates`` names, in one
        manifest publish (readers see all of a day or none of it); the files are retired and
        deleted after the grace like compacted ones (a reader holding the previous manifest can
        still read them). W is untouched: queries simply find nothing before the cut."""
        dates = expired_dates(manifest.file_counts(), now_ms, self.cfg.archive_retention_ms)
        if not dates:
            return manifest
        gone = set(dates)
        files = [f for f in manifest.files if f.date in gone]
        await self._renew(tenant, force=True)
        manifest = manifest.publish((), manifest.watermark_ms, self._clock(),
                                    removed=tuple(f.path for f in files))
        manifest = await asyncio.to_thread(save_manifest, self.dest, manifest)
        report.expired_dates = dates
        report.expired_rows = sum(f.rows for f in files)
        log.info("archive retention: %s lost %d day(s) (%s .. %s), %d rows", manifest.tenant, len(dates),
                 dates[0], dates[-1], report.expired_rows, extra={"tenant": manifest.tenant})
        return manifest

    async def _finish(self, tenant: str, manifest: Manifest) -> None:
        """Delete retired files past their grace and prune old advances (one manifest write)."""
        now = self._clock()
        expired = {r.path for r in manifest.retired if r.at_ms + self.cfg.grace_ms <= now}
        pruned = prune_advances(manifest.advances, now, self.cfg.grace_ms)
        if not expired and pruned == manifest.advances:
            return
        await self._renew(tenant, force=True)
        for p in expired:
            await asyncio.to_thread(self.dest.delete, file_rel(tenant, p))
        updated = manifest.without_retired(expired) if expired else manifest
        updated = updated.with_advances(pruned)
        await asyncio.to_thread(save_manifest, self.dest, updated)
