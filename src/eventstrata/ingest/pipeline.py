"""The ingest loop: consume a batch, normalize, store, dead-letter, commit.

Order of one batch — the at-least-once guarantee rests on it:

1. ``getmany`` a batch of records from the raw topic;
2. normalize every record (pure CPU work, in slices with ``await asyncio.sleep(0)`` between so
   the event loop stays responsive; aiokafka's heartbeats run in their own task);
3. check the DLQ limit; if it trips, stop *without* storing, dead-lettering or committing;
4. write the good events to Redis and wait for the ack (transient Redis errors are retried
   with exponential backoff, logged and counted; the Lua write is idempotent, so a retry or a
   re-delivery never duplicates anything);
5. write the dead letters to the DLQ topic and wait for its ack (``acks=all``);
6. only then commit the offsets of the batch (next offset per partition = last + 1).

A crash anywhere before 6 re-delivers the batch to whichever worker owns the partitions next;
idempotent writes turn that into exactly-once contents. The rebalance listener
(``rebalance``) waits for the in-flight batch (including its commit) before partitions go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from eventstrata.config import Settings
from eventstrata.hotstore.writer import HotWriter, WriteResult
from eventstrata.ingest import metrics
from eventstrata.ingest.batch import NormalizedBatch, Normalizer, RawRecord, merge, normalize_records
from eventstrata.ingest.commit import Partition, consumer_lag, offsets_to_commit
from eventstrata.ingest.dlq import DeadLetter, DlqLimit, Trip, dead_letter

log = logging.getLogger(__name__)

T = TypeVar("T")
NORMALIZE_SLICE = 1000
"""Records normalized between two yields to the event loop (~5-10 ms of CPU)."""


class BatchConsumer(Protocol):
    """The part of ``AIOKafkaConsumer`` the pipeline uses (partitions are ``TopicPartition``)."""

    async def getmany(
        self, *partitions: Any, timeout_ms: int = ..., max_records: int | None = ...
    ) -> Any: ...
    async def commit(self, offsets: Any = ...) -> None: ...
    def highwater(self, partition: Any) -> int | None: ...
    def assignment(self) -> Any: ...


class DlqSink(Protocol):
    """Produces dead letters; returns only once the broker acknowledged all of them."""

    async def send_all(self, letters: Sequence[DeadLetter]) -> None: ...


class Stop(Enum):
    REQUESTED = "requested"  # SIGTERM / SIGINT / caller
    DLQ_LIMIT = "dlq_limit"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    consumed: int
    stored: int
    duplicates: int
    dead_lettered: int
    committed: Mapping[Partition, int]
    trip: Trip | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    records: Sequence[RawRecord]
    norm: NormalizedBatch
    now_ms: int
    started: float
    trip: Trip | None


def is_transient(exc: BaseException) -> bool:
    """Redis errors worth retrying: connection loss, timeouts, loading, failover, cluster
    reconfiguration, and OOM under ``noeviction`` (the archiver frees memory)."""
    if isinstance(exc, ConnectionError | TimeoutError | BusyLoadingError | ClusterDownError
                  | TryAgainError | ReadOnlyError):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(
        ("OOM", "LOADING", "TRYAGAIN", "MASTERDOWN")
    )


def is_transient_kafka(exc: BaseException) -> bool:
    """Kafka produce errors worth retrying (aiokafka already retried retriable ones inside its
    delivery timeout; one more round with backoff covers a broker restart)."""
    from aiokafka.errors import KafkaError

    return isinstance(exc, KafkaError | OSError | asyncio.TimeoutError)


def backoff_delays(base_s: float = 0.05, cap_s: float = 5.0, budget_s: float = 60.0) -> list[float]:
    """Exponential backoff delays (doubling from ``base_s``, capped) summing to ≤ ``budget_s``."""
    delays: list[float] = []
    d, total = base_s, 0.0
    while total + d <= budget_s:
        delays.append(d)
        total += d
        d = min(cap_s, d * 2)
    return delays


class IngestPipeline:
    """Runs the batch loop on a consumer already subscribed to the raw topic.

    ``run`` returns why it stopped; it raises on errors that are not bad input and not
    transient (or transient past the retry budget) — the worker then exits non-zero without
    committing the failing batch.
    """

    def __init__(
        self,
        consumer: BatchConsumer,
        *,
        writer: HotWriter,
        dlq: DlqSink,
        limit: DlqLimit,
        normalize: Normalizer,
        settings: Settings,
        topic_partition: Callable[[str, int], Any],
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        fetch_timeout_ms: int = 500,
        retry_delays: Sequence[float] | None = None,
    ) -> None:
        self._consumer = consumer
        self._writer = writer
        self._dlq = dlq
        self._limit = limit
        self._normalize = normalize
        self._settings = settings
        self._tp = topic_partition
        self._clock_ms = clock_ms
        self._fetch_timeout_ms = fetch_timeout_ms
        self._retry_delays = list(retry_delays) if retry_delays is not None else backoff_delays()
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Task[BatchOutcome] | None = None
        self._stop = asyncio.Event()
        self.trip: Trip | None = None
        self.totals = {"consumed": 0, "stored": 0, "duplicates": 0, "dead_lettered": 0, "processed": 0}
        """Running counts; ``processed`` = records of batches finished (written and committed)."""

    def request_stop(self) -> None:
        """Ask ``run`` to return after the in-flight batch is committed. Safe from a signal
        handler (``loop.add_signal_handler``); never blocks."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def drain(self) -> None:
        """Wait until no batch is in flight: the one being finished (written, dead-lettered,
        committed) is done or failed. Called by the rebalance listener before revocation."""
        task = self._inflight
        if task is not None:
            await asyncio.wait([task])
        async with self._lock:
            return

    async def run(self) -> Stop:
        """Loop until ``request_stop`` or the DLQ limit trips.

        Two batches overlap: while batch N is written to Redis / the DLQ and committed (I/O),
        batch N+1 is fetched and normalized (CPU). Batch N+1's own writes start only after
        batch N's commit, so commits stay in order.
        """
        try:
            while not self._stop.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=self._fetch_timeout_ms, max_records=self._settings.batch_max
                )
                records: list[RawRecord] = [r for recs in batches.values() for r in recs]
                if not records:
                    await self._await_inflight()
                    continue
                prepared = await self._prepare(records)
                await self._await_inflight()
                if prepared.trip is not None:
                    return Stop.DLQ_LIMIT
                self._inflight = asyncio.create_task(self._finish(prepared))
            return Stop.REQUESTED
        finally:
            await self._await_inflight()

    async def _await_inflight(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            await task  # re-raises a failed batch (not committed)

    async def process(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Steps 2–6 of the module docstring for one batch, start to end (no overlap)."""
        prepared = await self._prepare(records)
        if prepared.trip is not None:
            return BatchOutcome(len(records), 0, 0, 0, {}, prepared.trip)
        return await self._finish(prepared)

    async def _prepare(self, records: Sequence[RawRecord]) -> _Prepared:
        """Normalize and check the DLQ limit (steps 2-3); logs the trip."""
        started = time.perf_counter()
        metrics.CONSUMED.inc(len(records))
        self.totals["consumed"] += len(records)
        now_ms = self._clock_ms()
        norm = await self._normalize_sliced(records, now_ms)
        trip = self._limit.check_runs(now_ms, norm.runs)
        if trip is not None:
            self.trip = trip
            log.error(
                "ingest stopping: DLQ limit tripped: %s; batch of %d message(s) from %s NOT stored, "
                "dead-lettered or committed. Fix the producers (see `eventstrata dlq list`) or raise "
                "EVENTSTRATA_DLQ_MAX_RATIO / EVENTSTRATA_DLQ_MAX_CONSECUTIVE, then restart",
                trip.describe(self._limit.max_ratio, self._limit.max_consecutive),
                len(records), _describe_partitions(records),
            )
        return _Prepared(records, norm, now_ms, started, trip)

    async def _finish(self, p: _Prepared) -> BatchOutcome:
        """Steps 4-6: hot write (ack), DLQ (ack), commit."""
        async with self._lock:
            norm, records, now_ms = p.norm, p.records, p.now_ms
            result = await self._write_hot(norm)
            letters = [dead_letter(r.record, r.error, now_ms=now_ms) for r in norm.rejected]
            if letters:
                await self._with_retry(
                    "dlq produce", lambda: self._dlq.send_all(letters), metrics.DLQ_RETRIES,
                    transient=is_transient_kafka,
                )
                for rj in norm.rejected:
                    metrics.DEAD_LETTERED.labels(rj.error.code).inc()
            offsets = offsets_to_commit(records)
            await self._commit(offsets)
            metrics.STORED.inc(result.stored)
            metrics.DUPLICATES.inc(result.duplicates)
            self.totals["stored"] += result.stored
            self.totals["duplicates"] += result.duplicates
            self.totals["dead_lettered"] += len(letters)
            self.totals["processed"] += len(records)
            metrics.BATCH_SECONDS.observe(time.perf_counter() - p.started)
            return BatchOutcome(len(records), result.stored, result.duplicates, len(letters), offsets)

    async def _normalize_sliced(self, records: Sequence[RawRecord], now_ms: int) -> NormalizedBatch:
        parts: list[NormalizedBatch] = []
        s = self._settings
        for start in range(0, len(records), NORMALIZE_SLICE):
            if start:
                await asyncio.sleep(0)
            parts.append(normalize_records(
                records[start : start + NORMALIZE_SLICE], self._normalize, now_ms=now_ms,
                max_bytes=s.max_event_bytes, max_future_skew_ms=s.max_future_skew_ms,
            ))
        return parts[0] if len(parts) == 1 else merge(parts)

    async def _write_hot(self, norm: NormalizedBatch) -> WriteResult:
        if not norm.events:
            return WriteResult(0, 0, ())
        before = getattr(self._writer, "round_trips", 0)
        result = await self._with_retry(
            "redis hot write", lambda: self._writer.write(norm.events), metrics.REDIS_RETRIES,
            transient=is_transient,
        )
        metrics.REDIS_ROUND_TRIPS.inc(max(0, getattr(self._writer, "round_trips", 0) - before))
        return result

    async def _with_retry(
        self,
        what: str,
        op: Callable[[], Awaitable[T]],
        counter: Any,
        *,
        transient: Callable[[BaseException], bool],
    ) -> T:
        delays = iter(self._retry_delays)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await op()
            except Exception as exc:
                if not transient(exc):
                    raise
                delay = next(delays, None)
                if delay is None:
                    log.error("%s failed after %d attempt(s): %r", what, attempt, exc)
                    raise
                counter.inc()
                log.warning("%s failed (attempt %d): %r; retrying in %.2fs", what, attempt, exc, delay)
                await asyncio.sleep(delay)

    async def _commit(self, offsets: Mapping[Partition, int]) -> None:
        from aiokafka.errors import CommitFailedError, IllegalStateError

        started = time.perf_counter()
        assigned = self._consumer.assignment()
        tps = {self._tp(p.topic, p.partition): off for p, off in offsets.items()}
        gone = [tp for tp in tps if tp not in assigned]
        for tp in gone:  # revoked meanwhile: its new owner re-reads (idempotent), never regress
            del tps[tp]
        if gone:
            log.info("not committing revoked partition(s) %s", gone)
        if not tps:
            return
        try:
            await self._consumer.commit(tps)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on (rebalance): the batch is stored and will simply be
            # re-delivered to the partition's next owner, where the idempotent write makes it
            # a no-op.
            metrics.COMMIT_FAILURES.inc()
            log.warning("offset commit failed (%r); batch will be re-delivered: %s", exc, dict(offsets))
            return
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        assigned = self._consumer.assignment()
        for p, off in offsets.items():
            tp = self._tp(p.topic, p.partition)
            if tp not in assigned:  # revoked meanwhile: its lag is the new owner's to report
                continue
            lag = consumer_lag(self._consumer.highwater(tp), off)
            if lag is not None:
                metrics.CONSUMER_LAG.labels(p.topic, str(p.partition)).set(lag)


def _describe_partitions(records: Sequence[RawRecord]) -> str:
    spans: dict[tuple[str, int], list[int]] = {}
    for r in records:
        span = spans.setdefault((r.topic, r.partition), [r.offset, r.offset])
        span[0] = min(span[0], r.offset)
        span[1] = max(span[1], r.offset)
    return ", ".join(f"{t}[{p}] offsets {a}..{b}" for (t, p), (a, b) in sorted(spans.items()))
