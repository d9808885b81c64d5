"""Running the archiver as a process (shared by ``eventstrata/processes/archive.py`` and the CLI) and the
``status`` summary. The shell around ``Archiver``: builds clients from ``Settings``, loops with
backoff, logs and counts failures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from eventstrata import erasure, health
from eventstrata.archive.archiver import Archiver, ArchiverConfig, LeaseLost, PassReport, wall_ms
from eventstrata.archive.destination import ArchiveUnavailable, Destination, PublishConflict, open_destination
from eventstrata.archive.store import load_manifest
from eventstrata.config import Settings
from eventstrata.health import LoopHeartbeat
from eventstrata.hotstore.interface import HotHandoff, RedisHotStore
from eventstrata.keys import KeyLayout
from eventstrata.redisconn import RedisClient, connect_redis

log = logging.getLogger("eventstrata.archive")

PASS_SECONDS = Histogram("eventstrata_archive_pass_seconds", "Duration of one archive pass over all tenants",
                         buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
EXPIRED_ROWS = Counter("eventstrata_archive_expired_rows_total",
                       "Archived events deleted by EVENTSTRATA_ARCHIVE_RETENTION (whole days)", ["tenant"])
WATERMARK_AGE = Gauge("eventstrata_archive_watermark_age_seconds",
                      "How far the tenant's archive watermark lags the pass time (about the hot retention)",
                      ["tenant"])


TRANSIENT = (RedisError, OSError, LeaseLost, ArchiveUnavailable, PublishConflict)
"""Pass failures logged as WARNING (retried with backoff): stores unreachable, another archiver."""


def redis_archiver(redis: RedisClient, layout: KeyLayout, dest: Destination, config: ArchiverConfig,
                   **kw: Any) -> Archiver:
    """The product's archiver: the hot tier on ``redis`` with ``layout``'s keys, the erasure
    jobs recorded there, ``dest`` for the archive. ``kw``: ``Archiver``'s options."""
    return Archiver(RedisHotStore(redis, layout), dest, config,
                    erasures=erasure.RedisErasureJobs(redis, layout, dest), **kw)


def config_of(settings: Settings) -> ArchiverConfig:
    return ArchiverConfig(retention_ms=settings.hot_retention_ms, window_ms=settings.window_ms,
                          grace_ms=settings.archive_grace_ms, lease_ms=settings.archive_lease_ms,
                          compact_files=settings.archive_compact_files,
                          erasure_tombstone_ms=settings.erasure_tombstone_ms,
                          archive_retention_ms=settings.archive_retention_ms)


async def run_archiver(settings: Settings, *, once: bool, now_ms: int | None = None,
                       crash_after: str | None = None, stop: asyncio.Event | None = None,
                       on_tenant: Callable[[int, int, str], None] | None = None) -> list[PassReport]:
    """Archive every tenant once (``once``) or every ``archive_interval`` until ``stop`` is set.
    ``now_ms`` (event time of the pass; default: the wall clock) is for operators and tests.
    ``once``: errors propagate. Loop: every error is logged and retried with backoff (capped at
    the interval); a failing tenant does not stop the others (``Archiver.run_once``).
    ``on_tenant`` is passed to ``Archiver.run_once``. Returns the reports of the last pass."""
    heartbeat = LoopHeartbeat()
    beat = asyncio.create_task(heartbeat.run())
    if settings.metrics_port and not once:
        health.serve(settings.metrics_port, heartbeat, host=settings.api_host)
    redis = connect_redis(settings)
    archiver = redis_archiver(redis, settings.layout(), open_destination(settings),
                        config_of(settings), crash_after=crash_after)
    stop = stop or asyncio.Event()
    reports: list[PassReport] = []
    backoff = 1.0
    try:
        while True:
            now = now_ms if now_ms is not None else wall_ms()
            try:
                t0 = time.perf_counter()
                reports = await archiver.run_once(now, on_tenant=on_tenant)
                seconds = time.perf_counter() - t0
                PASS_SECONDS.observe(seconds)
                for r in reports:
                    WATERMARK_AGE.labels(r.tenant).set(max(0.0, (now - r.watermark_ms) / 1000))
                    if r.expired_rows:
                        EXPIRED_ROWS.labels(r.tenant).inc(r.expired_rows)
                    log.info("archived tenant=%s windows=%d read=%d written=%d dup=%d removed=%d W=%d",
                             r.tenant, r.windows, r.events_read, r.rows_written, r.duplicates, r.removed,
                             r.watermark_ms, extra={"tenant": r.tenant})
                log.info("archive pass done: %d tenant(s), %d window(s) in %.2f s", len(reports),
                         sum(r.windows for r in reports), seconds)
                backoff = 1.0
                delay = settings.archive_interval_ms / 1000
            except Exception as exc:  # logged + counted (PASS_FAILURES), retried with backoff
                if once:
                    raise
                transient = isinstance(exc, TRANSIENT)
                level = logging.WARNING if transient else logging.ERROR
                log.log(level, "archive pass failed (%r); retrying in %.0f s", exc, backoff)
                delay = backoff
                backoff = min(backoff * 2, settings.archive_interval_ms / 1000)
            if once:
                return reports
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return reports
            except TimeoutError:
                pass
    finally:
        beat.cancel()
        archiver.close()
        await redis.aclose()


@dataclass(frozen=True, slots=True)
class TenantStatus:
    """One tenant's archive: the manifest's watermark and Redis' mirror of it (epoch ms, 0 =
    nothing archived), the files listed in the manifest with their bytes and rows, and the
    windows still in the hot tier."""

    tenant: str
    watermark_ms: int
    mirror_ms: int
    files: int
    bytes: int
    rows: int
    hot_windows: int
    oldest_date: str | None = None


async def tenant_status(hot: HotHandoff, dest: Destination, tenant: str) -> TenantStatus:
    """``tenant``'s ``TenantStatus``. Read-only; reads the manifest in a thread. Raises the hot
    tier's errors (``RedisError``) and ``OSError``."""
    m = await asyncio.to_thread(load_manifest, dest, tenant)
    return TenantStatus(tenant, m.watermark_ms, await hot.watermark(tenant), len(m.files),
                        m.total_bytes, m.total_rows, len(await hot.windows(tenant)),
                        min((f.date for f in m.files), default=None))


async def archive_status(settings: Settings) -> list[TenantStatus]:
    """Per tenant (of Redis ``es:tenants`` and of the archive): ``tenant_status``. Read-only."""
    redis = connect_redis(settings)
    dest = open_destination(settings)
    hot = RedisHotStore(redis, settings.layout())
    try:
        names = sorted(set(await hot.tenants()) | set(dest.tenants()))
        return [await tenant_status(hot, dest, t) for t in names]
    finally:
        await redis.aclose()
