"""The ingest loop: consume a batch, normalize, store, dead-letter, commit.

Order of one batch — the at-least-once guarantee rests on it:

1. ``getmany`` a batch of records from the raw topic;
2. normalize every record (pure CPU work, in slices with ``await asyncio.sleep(0)`` between so
   the event loop stays responsive; aiokafka's heartbeats run in their own task);
3. check the DLQ limit; if it trips, stop *without* storing, dead-lettering or committing
   (the batches before it are still finished: written, then committed);
4. wait until the previous batch's Redis and DLQ writes were acknowledged (if they failed,
   give up: this batch is neither written nor committed);
5. write the good events to Redis and wait for the ack (transient Redis errors are retried
   with exponential backoff, logged and counted; the Lua write is idempotent, so a retry or a
   re-delivery never duplicates anything); the write records, atomically with the data, the
   offsets the batch covers (``recovery``);
6. write the dead letters to the DLQ topic and wait for its ack (``acks=all``);
7. wait until the previous batch's offset commit finished (if it or anything before it
   failed, give up: this batch stays uncommitted);
8. only then commit the offsets of the batch (next offset per partition = last + 1).

So writes happen in batch order, commits happen in batch order, and a batch's commit starts
only after its own writes were acknowledged *and* every earlier batch's commit finished: the
committed offset of a partition never passes a record that is not stored or dead-lettered.

Batches overlap (``IngestPipeline.run``): batch N+1's writes (5-6) start as soon as batch N's
writes are acknowledged, while batch N's commit (8) is still under way — events are visible
once Redis acknowledged them, so the commit round trip is not on the path to visibility — and
batch N+2 is fetched and normalized (1-3) meanwhile. At most ``MAX_IN_FLIGHT`` batches are
between step 4 and the end of step 8.

A crash anywhere before 8 re-delivers the batch (and every later one) to whichever worker owns
the partitions next; idempotent writes turn that into exactly-once contents. The rebalance
listener (``rebalance``) waits until every in-flight batch is written and committed (or
failed) before partitions go.

Healing a Redis that lost acknowledged writes (``recovery``): on assignment a partition
resumes from the lower of its committed offset and the offsets Redis recorded with the data
(``heal_assigned``); when a write or the periodic refresh (``EVENTSTRATA_OFFSETS_REFRESH``)
reads back a recorded offset below what this worker recorded earlier, the batches in flight
are finished and the partition is sought back to it (``_rewind``), so the lost records are
read and stored again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, TypeVar

from redis.exceptions import (
    ReadOnlyError,
    ResponseError,
)

from eventstrata.config import Settings
from eventstrata.hotstore.writer import EncodedEvent, HotWriter, WriteResult
from eventstrata.ingest import metrics
from eventstrata.ingest.batch import NormalizedBatch, Normalizer, RawRecord, merge, normalize_records
from eventstrata.ingest.commit import Partition, consumer_lag, offsets_to_commit
from eventstrata.ingest.dlq import DeadLetter, DlqLimit, Trip, dead_letter
from eventstrata.ingest.recovery import TenantField, lineage_lost, offset_field, resume_offset, rolled_back
from eventstrata.redisconn import is_outage

log = logging.getLogger(__name__)

T = TypeVar("T")
NORMALIZE_SLICE = 1000
"""Records normalized between two yields to the event loop (~5-10 ms of CPU)."""
MAX_IN_FLIGHT = 2
"""Batches at most between their hot write and the end of their commit (steps 4-8: waiting to
write, writing, waiting for the previous commit, committing). ``run`` fetches and normalizes
one more batch meanwhile; a batch drops its records once written, so at most three batches'
records are held at a time (one being written, one waiting to be written, one being
normalized) plus the offsets of the one being committed."""


class BatchConsumer(Protocol):
    """The part of ``AIOKafkaConsumer`` the pipeline uses (partitions are ``TopicPartition``)."""

    async def getmany(
        self, *partitions: Any, timeout_ms: int = ..., max_records: int | None = ...
    ) -> Any: ...
    async def commit(self, offsets: Any = ...) -> None: ...
    def highwater(self, partition: Any) -> int | None: ...
    def assignment(self) -> Any: ...
    async def committed(self, partition: Any) -> int | None: ...
    def seek(self, partition: Any, offset: int) -> None: ...


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
    encoded: Sequence[EncodedEvent]  # HotWriter.encode(norm.events), done before the hand-over
    now_ms: int
    started: float
    trip: Trip | None


@dataclass(eq=False, slots=True)
class _Milestones:
    """How far one in-flight batch got, for the next batch to wait on: ``written`` is set once
    its Redis and DLQ writes are over (``write_ok``: acknowledged), ``committed`` once its
    commit is over (``commit_ok``: committed, or left to the partitions' next owner when they
    were revoked or a rebalance refused the commit — see ``_commit``). Both are set, with the
    flag false, when the batch failed or gave up."""

    written: asyncio.Event = field(default_factory=asyncio.Event)
    write_ok: bool = False
    committed: asyncio.Event = field(default_factory=asyncio.Event)
    commit_ok: bool = False


class EarlierBatchFailed(RuntimeError):
    """A batch gave up because an earlier batch's write or commit failed: it was not committed
    (and not written either when the earlier *write* failed). The earlier failure is the one
    ``run`` raises."""


def is_transient(exc: BaseException) -> bool:
    """Redis errors worth retrying: an outage (``redisconn.is_outage``: connection loss,
    timeouts, loading, failover, cluster reconfiguration), a replica that refuses writes, and
    OOM under ``noeviction`` (the archiver frees memory)."""
    if is_outage(exc) or isinstance(exc, ReadOnlyError):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith("OOM")


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
    committing the failing batch or any batch after it.
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
        self._inflight: deque[asyncio.Task[BatchOutcome]] = deque()
        """Batches handed to ``_finish`` and not yet reaped by ``run``, oldest first."""
        self._last: _Milestones | None = None
        """Milestones of the batch handed over last: the next batch waits on them."""
        self._stop = asyncio.Event()
        self._expected: dict[TenantField, int] = {}
        """Offsets this worker recorded per (tenant, field) and saw acknowledged (``recovery``)."""
        self._frontier: dict[Partition, int] = {}
        self._marked: set[Partition] = set()  # partitions whose lineage mark this worker set
        """Per partition, the next offset after the last batch whose writes were acknowledged."""
        self._started_at: dict[Partition, int] = {}
        """Per partition, the offset this worker began reading it at."""
        self._rewind: dict[Partition, int] = {}
        """Partitions to seek back (found rolled back), applied between batches."""
        self._last_refresh = time.monotonic()
        self.trip: Trip | None = None
        self.totals = {"consumed": 0, "stored": 0, "duplicates": 0, "dead_lettered": 0, "processed": 0}
        """Running counts; ``processed`` = records of batches finished (written and committed)."""

    def request_stop(self) -> None:
        """Ask ``run`` to return once the in-flight batches are written and committed (the batch
        being fetched or normalized at that moment is finished too). Safe from a signal handler
        (``loop.add_signal_handler``); never blocks."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def drain(self) -> None:
        """Wait until every batch in flight — and any handed over while waiting — is written,
        acknowledged and committed, or failed (a failure is left for ``run`` to raise). Called
        by the rebalance listener before revocation; while aiokafka rebalances, ``getmany``
        blocks, so at most the batch being normalized joins and this ends."""
        while pending := [t for t in self._inflight if not t.done()]:
            await asyncio.wait(pending)

    async def run(self) -> Stop:
        """Loop until ``request_stop`` or the DLQ limit trips; either way every batch in flight
        is first finished (written, then committed, in order).

        Batches overlap (see the module docstring): while batch N waits for its commit, batch
        N+1 is written (its write starts once N's Redis and DLQ writes were acknowledged) and
        batch N+2 is fetched and normalized. At most ``MAX_IN_FLIGHT`` batches are in flight:
        a normalized batch waits for the oldest one's commit before it is handed over.

        Raises the first (oldest) failed batch's error; that batch and every later one are not
        committed.
        """
        try:
            stop = await self._loop()
        except BaseException:
            await self._settle(raise_failure=False)
            raise
        await self._settle()
        return stop

    async def _loop(self) -> Stop:
        while not self._stop.is_set():
            self._reap()
            if self._rewind:
                await self._apply_rewind()
            if time.monotonic() - self._last_refresh >= self._settings.offsets_refresh_ms / 1000:
                await self.refresh_offsets()
            prepared = await self._fetch_and_prepare()
            if prepared is None:
                continue
            if prepared.trip is not None:
                return Stop.DLQ_LIMIT  # not handed over: neither stored, dead-lettered nor committed
            await self._wait_in_flight(MAX_IN_FLIGHT - 1)
            self._hand_over(prepared)
            del prepared  # the in-flight task holds the records until they are written
        return Stop.REQUESTED

    async def _fetch_and_prepare(self) -> _Prepared | None:
        batches = await self._consumer.getmany(
            timeout_ms=self._fetch_timeout_ms, max_records=self._settings.batch_max
        )
        records: list[RawRecord] = [r for recs in batches.values() for r in recs]
        return await self._prepare(records) if records else None

    # -- healing a Redis that lost acknowledged writes (see ``recovery``) -------------------
    async def heal_assigned(self, assigned: Any) -> None:
        """Called on partition assignment, before anything is fetched from the new partitions:
        seek each to the lower of its committed offset and the lowest offset any tenant
        recorded for it in Redis (``recovery.resume_offset``), and take the recorded values as
        this worker's expectations. Blocks on Redis and the group coordinator; transient Redis
        errors are retried (then raised)."""
        parts = {Partition(tp.topic, tp.partition): tp for tp in assigned}
        if not parts:
            return
        fields = {offset_field(p): p for p in parts}
        recorded = await self._with_retry(
            "read recorded offsets", lambda: self._writer.read_offsets(list(fields)),
            metrics.REDIS_RETRIES, transient=is_transient,
        )
        lineage = await self._with_retry(
            "read the lineage", lambda: self._writer.read_lineage(list(fields)),
            metrics.REDIS_RETRIES, transient=is_transient,
        )
        for p, tp in parts.items():
            f = offset_field(p)
            values = {t: v for (t, ff), v in recorded.items() if ff == f and v is not None}
            committed = await self._consumer.committed(tp)
            to = resume_offset(committed, values.values(), lineage=lineage.get(f) is not None)
            if to is not None:
                self._consumer.seek(tp, to)
                metrics.REPLAYS.inc()
                if lineage.get(f) is None:
                    self._writer.positions_lost()
                    log.warning("%s[%d]: Redis holds no record of this partition although offset %d is "
                                "committed (it lost its data): replaying the partition from the beginning",
                                p.topic, p.partition, committed,
                                extra={"partition": f"{p.topic}[{p.partition}]"})
                else:
                    log.warning("%s[%d]: Redis holds this partition's records only up to offset %d, "
                                "below the committed offset %d (it lost acknowledged writes): "
                                "replaying from %d", p.topic, p.partition, to, committed, to,
                                extra={"partition": f"{p.topic}[{p.partition}]"})
            start = to if to is not None else committed
            if start is not None:
                self._started_at[p] = start
            for t, v in values.items():
                self._expected[(t, f)] = v

    def forget(self, revoked: Any) -> None:
        """Drop what this worker knows of ``revoked`` partitions (after draining them)."""
        for tp in revoked:
            p = Partition(tp.topic, tp.partition)
            self._frontier.pop(p, None)
            self._started_at.pop(p, None)
            self._rewind.pop(p, None)
            self._marked.discard(p)
            self._drop_expected(p)

    async def refresh_offsets(self) -> None:
        """Record every acknowledged batch's offsets for every tenant this worker knows (those
        without events in them had no write to record them) and check the values read back
        (``recovery.rolled_back``). A failure is logged and counted, never raised: the next
        refresh tries again."""
        self._last_refresh = time.monotonic()
        covers = dict(self._frontier)
        tenants = sorted({t for t, _ in self._expected})
        if not covers:
            return
        expected = dict(self._expected)  # before the call: later acks may raise it meanwhile
        pairs = [(offset_field(p), off) for p, off in covers.items()]
        try:
            lineage = await self._writer.mark_lineage(pairs)
            previous = await self._writer.record_offsets(tenants, pairs, expected) if tenants else {}
        except Exception as exc:
            if not is_transient(exc):
                raise
            metrics.REDIS_RETRIES.inc()
            log.warning("recording offsets failed: %r; retrying in the next refresh", exc)
            return
        for p in lineage_lost(self._marked, lineage):
            self._writer.positions_lost()
            log.warning("%s[%d]: the lineage mark this worker set is gone (Redis lost its data): "
                        "replaying the partition from the beginning", p.topic, p.partition,
                        extra={"partition": f"{p.topic}[{p.partition}]"})
            self._rewind[p] = 0
        self._marked |= set(covers)
        self._note_recorded(expected, previous, dict(pairs))

    def _note_recorded(self, expected: Mapping[TenantField, int],
                       previous: Mapping[TenantField, int | None], written: Mapping[str, int]) -> None:
        """After an acknowledged write or refresh: queue a rewind of the partitions whose
        recorded offsets went backwards, and raise the expectations to what was written."""
        back = rolled_back(expected, previous, self._started_at)
        for p, off in back.items():
            if off < self._rewind.get(p, off + 1):
                self._rewind[p] = off
        for key in previous:
            off = written[key[1]]
            if off > self._expected.get(key, -1):
                self._expected[key] = off

    async def _apply_rewind(self) -> None:
        """Finish every batch in flight, then seek each partition found rolled back to the
        offset its record fell back to, so the records Redis lost are read and stored again."""
        await self.drain()
        self._reap()
        back, self._rewind = self._rewind, {}
        assigned = self._consumer.assignment()
        for p, off in sorted(back.items()):
            tp = self._tp(p.topic, p.partition)
            if tp not in assigned:
                continue
            self._consumer.seek(tp, off)
            metrics.REPLAYS.inc()
            log.warning("%s[%d]: Redis lost acknowledged writes (its recorded offset fell back to "
                        "%d): replaying from there", p.topic, p.partition, off,
                        extra={"partition": f"{p.topic}[{p.partition}]"})
            self._drop_expected(p)
            self._frontier.pop(p, None)
            self._started_at[p] = min(off, self._started_at.get(p, off))

    def _drop_expected(self, p: Partition) -> None:
        """Forget what this worker expects of ``p``'s offsets records (revoked, or replaying)."""
        f = offset_field(p)
        for key in [k for k in self._expected if k[1] == f]:
            del self._expected[key]

    def _hand_over(self, prepared: _Prepared) -> asyncio.Task[BatchOutcome]:
        """Start steps 4-8 of ``prepared`` as a task chained after the batch handed over last."""
        prev, me = self._last, _Milestones()
        self._last = me
        task = asyncio.create_task(self._finish(prepared, prev, me))
        self._inflight.append(task)
        return task

    def _reap(self) -> None:
        """Drop the oldest finished batches; raises the first one's error if it failed."""
        while self._inflight and self._inflight[0].done():
            self._inflight.popleft().result()

    async def _wait_in_flight(self, most: int) -> None:
        """Wait until at most ``most`` batches are in flight (they finish oldest first, as
        commits are in order); raises the error of the first one that failed."""
        while len(self._inflight) > most:
            await asyncio.wait([self._inflight[0]])
            self._reap()

    async def _settle(self, *, raise_failure: bool = True) -> None:
        """Wait for every in-flight batch to finish or fail. Raises the oldest failure (that is
        not a mere ``EarlierBatchFailed``), or only logs it when ``run`` is already raising."""
        failure: BaseException | None = None
        while self._inflight:
            await asyncio.wait([self._inflight[0]])
            try:
                self._inflight.popleft().result()
            except EarlierBatchFailed as exc:
                failure = failure or exc
            except BaseException as exc:
                if failure is None or isinstance(failure, EarlierBatchFailed):
                    failure = exc
                if not raise_failure:
                    log.error("in-flight batch failed while stopping: %r", exc)
        if failure is not None and raise_failure:
            raise failure

    async def process(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Steps 2–8 of the module docstring for one batch, start to end (chained after any
        batch ``run`` has in flight, so writes and commits stay in order)."""
        prepared = await self._prepare(records)
        if prepared.trip is not None:
            return BatchOutcome(len(records), 0, 0, 0, {}, prepared.trip)
        task = self._hand_over(prepared)
        del prepared
        await asyncio.wait([task])
        if task in self._inflight:
            self._inflight.remove(task)
        return task.result()

    async def _prepare(self, records: Sequence[RawRecord]) -> _Prepared:
        """Normalize, check the DLQ limit (steps 2-3; logs the trip) and encode the good events
        for the hot write (CPU work done here, while the previous batch is being written, so
        Redis is not left waiting for it)."""
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
            return _Prepared(records, norm, (), now_ms, started, trip)
        encoded = await self._encode_sliced(norm)
        return _Prepared(records, norm, encoded, now_ms, started, trip)

    async def _encode_sliced(self, norm: NormalizedBatch) -> list[EncodedEvent]:
        out: list[EncodedEvent] = []
        events = norm.events
        for start in range(0, len(events), NORMALIZE_SLICE):
            await asyncio.sleep(0)
            out.extend(self._writer.encode(events[start : start + NORMALIZE_SLICE]))
        return out

    async def _finish(self, p: _Prepared, prev: _Milestones | None, me: _Milestones) -> BatchOutcome:
        """Steps 4-8 of one batch, strictly in this order:

        1. wait until ``prev`` (the batch handed over before) is written; give up with
           ``EarlierBatchFailed`` — writing nothing — if its write failed;
        2. hot write to Redis, wait for the ack; then the dead letters, wait for the broker's
           ack; mark ``me`` written;
        3. wait until ``prev``'s commit finished; give up with ``EarlierBatchFailed`` —
           committing nothing — if it failed or gave up;
        4. commit this batch's offsets; mark ``me`` committed.

        Whatever fails, ``me``'s milestones are set (unsuccessful), so the next batch gives up
        in turn: nothing after a failed batch is ever committed.
        """
        try:
            if prev is not None:
                await prev.written.wait()
                if not prev.write_ok:
                    raise EarlierBatchFailed("an earlier batch's write failed: batch not written")
            consumed, offsets, started = len(p.records), offsets_to_commit(p.records), p.started
            result, dead = await self._write(p, offsets)
            me.write_ok = True
            me.written.set()
            del p  # stored and dead-lettered: only the offsets are needed from here on
            if prev is not None:
                await prev.committed.wait()
                if not prev.commit_ok:
                    raise EarlierBatchFailed("an earlier batch's commit failed: batch not committed")
            await self._commit(offsets)
            me.commit_ok = True
        finally:
            me.written.set()
            me.committed.set()
        metrics.STORED.inc(result.stored)
        metrics.DUPLICATES.inc(result.duplicates)
        self.totals["stored"] += result.stored
        self.totals["duplicates"] += result.duplicates
        self.totals["dead_lettered"] += dead
        self.totals["processed"] += consumed
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return BatchOutcome(consumed, result.stored, result.duplicates, dead, offsets)

    async def _write(self, p: _Prepared, offsets: Mapping[Partition, int]) -> tuple[WriteResult, int]:
        """Steps 5-6: hot write (wait for Redis' ack; it records ``offsets`` with the data),
        then the dead letters (wait for the broker's ack). Returns the write result and the
        number of dead letters."""
        if any(tp not in self._started_at for tp in offsets):  # a partition's first batch here
            for rec in p.records:
                self._started_at.setdefault(Partition(rec.topic, rec.partition), rec.offset)
        covers = {offset_field(tp): off for tp, off in offsets.items()}
        expected = dict(self._expected)
        result = await self._write_hot(p.norm, p.encoded, covers, expected)
        self._note_recorded(expected, result.recorded, covers)
        letters = [dead_letter(r.record, r.error, now_ms=p.now_ms) for r in p.norm.rejected]
        if letters:
            await self._with_retry(
                "dlq produce", lambda: self._dlq.send_all(letters), metrics.DLQ_RETRIES,
                transient=is_transient_kafka,
            )
            for rj in p.norm.rejected:
                metrics.DEAD_LETTERED.labels(rj.error.code).inc()
        for tp, off in offsets.items():
            if off > self._frontier.get(tp, -1):
                self._frontier[tp] = off
        return result, len(letters)

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

    async def _write_hot(self, norm: NormalizedBatch, encoded: Sequence[EncodedEvent],
                         covers: Mapping[str, int], expected: Mapping[TenantField, int]) -> WriteResult:
        if not norm.events:
            return WriteResult(0, 0, ())
        before = getattr(self._writer, "round_trips", 0)
        pairs = tuple(covers.items())
        result = await self._with_retry(
            "redis hot write",
            lambda: self._writer.write(norm.events, encoded, covers=pairs, expected=expected),
            metrics.REDIS_RETRIES, transient=is_transient,
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
