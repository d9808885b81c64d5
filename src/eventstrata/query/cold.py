"""Cold-tier executor: SQL from the planner run through the archive's ``ColdReader``.

The reader is blocking (DuckDB); every call here goes through ``asyncio.to_thread``. Rows are
always re-checked with ``EventFilter.matches`` (the SQL is a superset for data/metadata
paths), in batches that continue strictly after the last row read, so a page is exact even
when the pre-filter lets extra rows through. Bounded work: at most ``scan_cap`` rows per call;
when reached the result is non-exhausted with the last row's position as boundary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import duckdb
from prometheus_client import Counter

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.model import Event
from eventstrata.query.filters import EventFilter, Order, SortKey
from eventstrata.query.merge import SortPos, SourceResult, sort_position
from eventstrata.query.planner import ColdPlan, cold_count_sql, cold_sql

log = logging.getLogger("eventstrata.query.cold")
COLD_RETRIES = Counter("eventstrata_query_cold_retries_total",
                       "Cold reads retried because a listed file vanished (compaction) mid-read")
READ_ATTEMPTS = 4
DEFAULT_SCAN_CAP = 50_000
COUNT_SCAN_CAP = 1_000_000
MAX_BATCH = 2000


class ColdQuery(Protocol):
    """What the engine needs of ``eventstrata.archive.reader.ColdReader`` (blocking)."""

    def execute(self, tenant: str, since_ms: int | None, until_ms: int | None, sql: str,
                params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def cold_get(self, tenant: str, event_id: str, ts_hint: int | None = None) -> Event | None: ...


class ColdExecutor:
    def __init__(self, reader: ColdQuery, *, scan_cap: int = DEFAULT_SCAN_CAP) -> None:
        self._reader = reader
        self.scan_cap = scan_cap

    async def _run(self, tenant: str, since: int | None, until: int | None, sql: str,
                   params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One reader call. A file listed by the manifest the reader loaded may be deleted by
        compaction before DuckDB opens it (``IOException``, or ``FileNotFoundError`` from an
        object store); the manifest then lists its replacement, so the read is retried (logged
        and counted) with a short backoff."""
        delay = 0.005
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self._reader.execute, tenant, since, until, sql, params)
            except (duckdb.IOException, FileNotFoundError) as exc:
                if attempt == READ_ATTEMPTS:
                    raise
                COLD_RETRIES.inc()
                log.warning("cold read of tenant %s retried (attempt %d): %s", tenant, attempt, exc)
                await asyncio.sleep(delay)
                delay *= 4
        raise AssertionError("unreachable")

    async def scan(self, tenant: str, plan: ColdPlan, flt: EventFilter, *, sort: SortKey, order: Order,
                   after: SortPos | None, want: int) -> SourceResult:
        """Up to ``want`` matching archived events strictly after ``after``. May raise
        ``duckdb.Error`` / ``ManifestError`` from the reader."""
        matched: list[Event] = []
        scanned = 0
        pos = after
        batch = min(MAX_BATCH, max(want, 16) if plan.exact else max(want * 4, 64))
        since, until = plan.since, plan.until
        while True:
            if sort == "time" and pos is not None:
                # Prune partitions by the cursor's time.
                if order == "desc":
                    until = min(until, int(pos[0]) + 1)
                else:
                    since = int(pos[0]) if since is None else max(since, int(pos[0]))
            sql, params = cold_sql(plan, sort=sort, order=order, after=pos, limit=batch)
            rows = await self._run(tenant, since, until, sql, params)
            scanned += len(rows)
            for (body,) in rows:
                e = Event.from_json(body)
                pos = sort_position(e, sort)
                if flt.matches(e):
                    matched.append(e)
                    if len(matched) >= want:
                        return SourceResult(tuple(matched), False, pos)
            if len(rows) < batch:
                return SourceResult(tuple(matched), True)
            if scanned >= self.scan_cap:
                assert pos is not None
                return SourceResult(tuple(matched), False, pos)
            batch = min(MAX_BATCH, batch * 2)

    async def count(self, tenant: str, plan: ColdPlan, flt: EventFilter) -> int:
        """Exact count of matching archived events (SQL COUNT when the SQL is exact)."""
        if plan.exact:
            sql, params = cold_count_sql(plan)
            rows = await self._run(tenant, plan.since, plan.until, sql, params)
            return int(rows[0][0]) if rows else 0
        return len(await self._scan_all_times(tenant, plan, flt))

    async def bucket_counts(self, tenant: str, plan: ColdPlan, flt: EventFilter,
                            bucket_ms: int) -> dict[int, int]:
        if plan.exact:
            sql, params = cold_count_sql(plan, bucket_ms=bucket_ms)
            rows = await self._run(tenant, plan.since, plan.until, sql, params)
            return {int(b): int(n) for b, n in rows}
        out: dict[int, int] = {}
        for ts in await self._scan_all_times(tenant, plan, flt):
            b = ts - ts % bucket_ms
            out[b] = out.get(b, 0) + 1
        return out

    async def _scan_all_times(self, tenant: str, plan: ColdPlan, flt: EventFilter) -> list[int]:
        times: list[int] = []
        after: SortPos | None = None
        scanned = 0
        while True:
            sql, params = cold_sql(plan, sort="time", order="asc", after=after, limit=10_000)
            rows = await self._run(tenant, plan.since, plan.until, sql, params)
            for (body,) in rows:
                e = Event.from_json(body)
                after = (e.timestamp, e.id)
                if flt.matches(e):
                    times.append(e.timestamp)
            scanned += len(rows)
            if len(rows) < 10_000:
                return times
            if scanned >= COUNT_SCAN_CAP:
                raise ApiError(400, "query_too_broad",
                               f"counting with data/metadata filters scans at most {COUNT_SCAN_CAP} "
                               "archived events; narrow the time range",
                               (ErrorDetail("since", "range too large for a filtered count"),))

    async def get(self, tenant: str, event_id: str) -> Event | None:
        """The archived event or None (retried like ``_run`` when a file vanishes)."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self._reader.cold_get, tenant, event_id, None)
            except (duckdb.IOException, FileNotFoundError) as exc:
                if attempt == READ_ATTEMPTS:
                    raise
                COLD_RETRIES.inc()
                log.warning("cold get of tenant %s retried (attempt %d): %s", tenant, attempt, exc)
                await asyncio.sleep(0.005 * 4 ** attempt)
        return None
