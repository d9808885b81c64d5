"""The batch loop of ``IngestPipeline`` against fake consumer, writer and DLQ (no network).

Batch ``i`` holds offsets ``10*i ..`` of partition ``t[0]``; every fake step appends
``"<step> <batch> <phase>"`` to one shared log (``write 1 start``, ``dlq 1 ack``,
``commit 0 done`` ...) and can be held on a gate, so the tests see the exact order of writes,
acknowledgements and commits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from ingest_records import Rec
from redis.exceptions import ResponseError

from eventstrata.config import Settings
from eventstrata.hotstore.memory import max_set
from eventstrata.hotstore.writer import WriteResult
from eventstrata.ingest.commit import Partition
from eventstrata.ingest.dlq import DeadLetter, DlqLimit, header
from eventstrata.ingest.pipeline import MAX_IN_FLIGHT, IngestPipeline, Stop
from eventstrata.model import Event, InvalidEvent

TIMEOUT = 5.0


class TP(NamedTuple):
    """Stands in for aiokafka's ``TopicPartition`` (equal to the plain ``(topic, partition)``)."""

    topic: str
    partition: int


def batch(i: int, good: int = 3, bad: int = 0) -> list[Rec]:
    """``good`` valid then ``bad`` invalid records at offsets ``10*i ..``."""
    return [Rec("t", 0, 10 * i + k, value=b"bad" if k >= good else str(10 * i + k).encode())
            for k in range(good + bad)]


def _norm(value: bytes, headers: object, *, now_ms: int, max_bytes: int, max_future_skew_ms: int
          ) -> Event | InvalidEvent:
    if value.startswith(b"bad"):
        return InvalidEvent("malformed_json", "bad")
    n = int(value)
    return Event(id=f"e{n}", tenant="t1", type="click", timestamp=1_732_406_400_000 + n, received_at=1,
                 format="native")


class Steps:
    """The shared log plus gates (closed gate = the step waits) and injected errors."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.errors: dict[str, BaseException] = {}

    def hold(self, step: str) -> asyncio.Event:
        """Make ``step`` (e.g. ``"commit 0"``) wait until the returned event is set."""
        return self.gates.setdefault(step, asyncio.Event())

    async def run(self, step: str) -> None:
        self.log.append(f"{step} start")
        gate = self.gates.get(step)
        if gate is not None:
            await gate.wait()
        err = self.errors.get(step)
        if err is not None:
            self.log.append(f"{step} failed")
            raise err
        self.log.append(f"{step} {'done' if step.startswith('commit') else 'ack'}")

    def before(self, a: str, b: str) -> bool:
        return a in self.log and b in self.log and self.log.index(a) < self.log.index(b)


class FakeConsumer:
    """Hands out the scripted batches, then empty polls (calling ``on_empty`` each time)."""

    def __init__(self, steps: Steps, batches: Sequence[list[Rec]]) -> None:
        self.steps = steps
        self.queue = deque(batches)
        self.fetched = 0
        self.commits: list[dict[Any, int]] = []
        self.on_empty: Callable[[], None] = lambda: None
        self.group_offsets: dict[Any, int] = {}
        self.seeks: list[tuple[Any, int]] = []

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0)
        if not self.queue:
            self.on_empty()
            await asyncio.sleep(0.001)
            return {}
        self.fetched += 1
        return {("t", 0): self.queue.popleft()}

    async def commit(self, offsets: Any = None) -> None:
        (off,) = offsets.values()
        await self.steps.run(f"commit {(off - 1) // 10}")
        self.commits.append(dict(offsets))

    def highwater(self, partition: Any) -> int | None:
        return None

    def assignment(self) -> Any:
        return {("t", 0)}

    async def committed(self, partition: Any) -> int | None:
        return self.group_offsets.get(partition)

    def seek(self, partition: Any, offset: int) -> None:
        self.steps.log.append(f"seek {partition[1]} {offset}")
        self.seeks.append((partition, offset))


class FakeWriter:
    """Writes nothing but keeps each tenant's offsets record by ``write.lua``'s rule
    (``hotstore.memory.max_set``: max-set, not raised where below the expected value, previous
    values returned) in one flat dict, so a test can roll it back."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.records: dict[tuple[str, str], int] = {}
        self.covers: list[tuple[tuple[str, int], ...]] = []
        self.lineage: dict[str, int] = {}
        self.lost = 0  # calls of positions_lost

    def positions_lost(self) -> None:
        self.lost += 1

    def _record(self, tenants: Sequence[str], covers: Sequence[tuple[str, int]],
                expected: Any = None) -> dict[tuple[str, str], int | None]:
        prev: dict[tuple[str, str], int | None] = {}
        for t in tenants:
            record = {f: v for (owner, f), v in self.records.items() if owner == t}
            prev.update({(t, f): p for f, p in max_set(record, t, covers, expected).items()})
            self.records.update({(t, f): v for f, v in record.items()})
        return prev

    async def record_offsets(self, tenants: Sequence[str], covers: Sequence[tuple[str, int]],
                             expected: Any = None) -> dict[tuple[str, str], int | None]:
        return self._record(tenants, covers, expected)

    async def read_offsets(self, fields: Sequence[str]) -> dict[tuple[str, str], int | None]:
        return {k: v for k, v in self.records.items() if k[1] in fields}

    async def mark_lineage(self, covers: Sequence[tuple[str, int]]) -> dict[str, int | None]:
        return max_set(self.lineage, "", covers, None)

    async def read_lineage(self, fields: Sequence[str]) -> dict[str, int | None]:
        return {f: self.lineage.get(f) for f in fields}

    def encode(self, events: Sequence[Event]) -> list[tuple[bytes, bytes]]:
        return [(e.id.encode(), b"") for e in events]

    async def write(self, events: Sequence[Event], encoded: Sequence[tuple[bytes, bytes]] | None = None,
                    *, covers: Sequence[tuple[str, int]] = (), expected: Any = None) -> WriteResult:
        assert encoded is not None and [m for m, _ in encoded] == [e.id.encode() for e in events]
        await self.steps.run(f"write {int(events[0].id[1:]) // 10}")
        self.covers.append(tuple(covers))
        prev = self._record(sorted({e.tenant for e in events}), covers, expected)
        return WriteResult(len(events), 0, tuple((i + 1, None) for i in range(len(events))), prev)


class FakeDlq:
    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.sent: list[DeadLetter] = []

    async def send_all(self, letters: Sequence[DeadLetter]) -> None:
        await self.steps.run(f"dlq {int(header(letters[0].headers, 'es-source-offset') or b'0') // 10}")
        self.sent.extend(letters)


@dataclass
class Rig:
    pipeline: IngestPipeline
    consumer: FakeConsumer
    dlq: FakeDlq
    steps: Steps
    writer: FakeWriter

    @property
    def commits(self) -> list[int]:
        """Committed batches, in commit order."""
        return [(next(iter(c.values())) - 1) // 10 for c in self.consumer.commits]


def rig(batches: Sequence[list[Rec]], *, limit: DlqLimit | None = None, stop_when_empty: bool = True,
        settings: Settings | None = None) -> Rig:
    steps = Steps()
    consumer = FakeConsumer(steps, batches)
    dlq = FakeDlq(steps)
    writer = FakeWriter(steps)
    pipeline = IngestPipeline(
        consumer, writer=writer, dlq=dlq, limit=limit or DlqLimit(0.99, 10**6),
        normalize=_norm, settings=settings or Settings(), topic_partition=lambda t, p: (t, p),
        retry_delays=[],
    )
    if stop_when_empty:
        consumer.on_empty = pipeline.request_stop
    return Rig(pipeline, consumer, dlq, steps, writer)


async def until(cond: Callable[[], bool], what: str) -> None:
    """Wait (at most ``TIMEOUT``) for ``cond``; fails naming ``what``."""
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.001)
    try:
        await asyncio.wait_for(poll(), TIMEOUT)
    except TimeoutError:
        pytest.fail(f"timed out waiting for: {what}")


async def settle() -> None:
    """Let every runnable task run for a while (a wrong implementation gets its chance)."""
    for _ in range(50):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)


_running: list[tuple[Rig, asyncio.Task[Stop]]] = []


@pytest.fixture(autouse=True)
async def _no_leftover_pipelines() -> AsyncIterator[None]:
    """A failed test must not leave its pipeline blocked on a gate in the shared event loop."""
    yield
    while _running:
        r, task = _running.pop()
        for gate in r.steps.gates.values():
            gate.set()
        r.pipeline.request_stop()
        r.consumer.queue.clear()
        await asyncio.wait([task], timeout=TIMEOUT)
        if not task.done():
            task.cancel()
        await asyncio.wait([task], timeout=TIMEOUT)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: failures are the test's business, not the teardown's


def start(r: Rig) -> asyncio.Task[Stop]:
    task = asyncio.create_task(r.pipeline.run())
    _running.append((r, task))
    return task


async def finish(task: asyncio.Task[Stop]) -> Stop:
    return await asyncio.wait_for(task, TIMEOUT)


# -- overlap: the next write does not wait for the previous commit ---------------------------------
async def test_next_batch_write_starts_before_previous_commit_completes() -> None:
    r = rig([batch(0), batch(1)])
    gate = r.steps.hold("commit 0")
    task = start(r)
    await until(lambda: "write 1 ack" in r.steps.log, "batch 1 written while batch 0's commit is held")
    assert "commit 0 start" in r.steps.log and "commit 0 done" not in r.steps.log
    assert r.steps.before("commit 0 start", "write 1 start")
    gate.set()
    assert await finish(task) is Stop.REQUESTED
    assert r.commits == [0, 1]


# -- commits in order, each after its own writes were acknowledged ---------------------------------
async def test_commits_in_order_even_when_a_later_batch_is_written_first() -> None:
    r = rig([batch(i) for i in range(5)])
    gate = r.steps.hold("commit 0")
    task = start(r)
    await until(lambda: "write 1 ack" in r.steps.log, "batch 1 written")
    await settle()  # batch 1 is written and ready: it must still not commit before batch 0
    assert "commit 1 start" not in r.steps.log
    gate.set()
    assert await finish(task) is Stop.REQUESTED
    assert r.commits == [0, 1, 2, 3, 4]
    assert [c[("t", 0)] for c in r.consumer.commits] == [3, 13, 23, 33, 43]
    for b in range(5):
        assert r.steps.before(f"write {b} ack", f"commit {b} start"), r.steps.log
        if b:
            assert r.steps.before(f"commit {b - 1} done", f"commit {b} start"), r.steps.log
            assert r.steps.before(f"write {b - 1} ack", f"write {b} start"), r.steps.log
    assert r.pipeline.totals["processed"] == 15 and r.pipeline.totals["stored"] == 15


async def test_no_commit_before_the_hot_write_and_the_dlq_write_are_acknowledged() -> None:
    r = rig([batch(0), batch(1, good=2, bad=2)])
    write_gate, dlq_gate = r.steps.hold("write 1"), r.steps.hold("dlq 1")
    task = start(r)
    await until(lambda: "commit 0 done" in r.steps.log and "write 1 start" in r.steps.log, "batch 0 committed")
    await settle()
    assert "commit 1 start" not in r.steps.log and "dlq 1 start" not in r.steps.log
    write_gate.set()
    await until(lambda: "dlq 1 start" in r.steps.log, "batch 1 dead letters sent")
    await settle()
    assert "commit 1 start" not in r.steps.log  # Redis acknowledged, the DLQ not yet
    dlq_gate.set()
    assert await finish(task) is Stop.REQUESTED
    assert r.commits == [0, 1]
    assert r.steps.before("write 1 ack", "dlq 1 start") and r.steps.before("dlq 1 ack", "commit 1 start")
    assert [int(header(d.headers, "es-source-offset") or b"") for d in r.dlq.sent] == [12, 13]
    assert r.pipeline.totals["dead_lettered"] == 2


# -- failures: nothing after a failed batch is committed ---------------------------------------------
async def test_failing_write_of_next_batch_prevents_its_commit_but_not_the_previous_one() -> None:
    r = rig([batch(0), batch(1), batch(2)])
    r.steps.errors["write 1"] = ResponseError("ERR not transient")
    gate = r.steps.hold("commit 0")  # batch 0's commit finishes only after batch 1's write failed
    task = start(r)
    await until(lambda: "write 1 failed" in r.steps.log, "batch 1's write failed")
    await settle()
    gate.set()
    with pytest.raises(ResponseError, match="not transient"):
        await finish(task)
    assert r.commits == [0]
    assert "commit 1 start" not in r.steps.log
    assert "write 2 start" not in r.steps.log and "commit 2 start" not in r.steps.log
    assert r.pipeline.totals["processed"] == 3


async def test_failing_commit_stops_every_later_commit_and_propagates() -> None:
    r = rig([batch(0), batch(1), batch(2)])
    r.steps.errors["commit 0"] = RuntimeError("coordinator gone")
    gate = r.steps.hold("commit 0")
    task = start(r)
    await until(lambda: "write 1 ack" in r.steps.log, "batch 1 written")
    gate.set()
    with pytest.raises(RuntimeError, match="coordinator gone"):
        await finish(task)
    assert r.commits == []  # batch 1 was stored (allowed: re-delivered, idempotent) but not committed
    assert not any(s.startswith(("commit 1", "commit 2")) for s in r.steps.log)


async def test_failing_write_stops_the_next_batch_from_being_written() -> None:
    r = rig([batch(0), batch(1), batch(2)])
    r.steps.errors["write 0"] = ResponseError("ERR not transient")
    gate = r.steps.hold("write 0")
    task = start(r)
    await until(lambda: r.consumer.fetched == 3, "batches 1 and 2 fetched while batch 0 is written")
    await settle()
    gate.set()
    with pytest.raises(ResponseError, match="not transient"):
        await finish(task)
    assert r.commits == []
    assert [s for s in r.steps.log if not s.startswith("write 0")] == []  # batch 1 neither written nor committed


async def test_consumer_error_propagates_after_the_in_flight_batch_is_committed() -> None:
    r = rig([batch(0)], stop_when_empty=False)
    gate = r.steps.hold("commit 0")

    def broker_gone() -> None:
        raise RuntimeError("broker gone")

    r.consumer.on_empty = broker_gone
    task = start(r)
    await until(lambda: "commit 0 start" in r.steps.log, "batch 0 committing")
    await settle()
    assert not task.done()  # the fetch failed, but batch 0's commit is still under way
    gate.set()
    with pytest.raises(RuntimeError, match="broker gone"):
        await finish(task)
    assert r.commits == [0]


# -- drain (rebalance) and stop wait for the commits --------------------------------------------------
async def test_drain_waits_until_every_in_flight_batch_is_committed() -> None:
    r = rig([batch(0), batch(1)], stop_when_empty=False)
    gate0, gate1 = r.steps.hold("commit 0"), r.steps.hold("commit 1")
    task = start(r)
    await until(lambda: "write 1 ack" in r.steps.log, "batch 1 written")
    drained_at: list[int] = []
    drain = asyncio.create_task(r.pipeline.drain())
    drain.add_done_callback(lambda _: drained_at.append(len(r.steps.log)))
    await settle()
    assert not drain.done()
    gate0.set()
    await until(lambda: "commit 0 done" in r.steps.log, "batch 0 committed")
    await settle()
    assert not drain.done(), "drain returned while batch 1's commit was still pending"
    gate1.set()
    await asyncio.wait_for(drain, TIMEOUT)
    assert "commit 1 done" in r.steps.log[: drained_at[0]]
    r.pipeline.request_stop()
    assert await finish(task) is Stop.REQUESTED
    assert r.commits == [0, 1]


async def test_request_stop_finishes_and_commits_the_in_flight_batches() -> None:
    r = rig([batch(0), batch(1)], stop_when_empty=False)
    gate = r.steps.hold("commit 0")
    task = start(r)
    await until(lambda: "write 1 ack" in r.steps.log, "batch 1 written")
    r.pipeline.request_stop()
    await settle()
    assert not task.done()
    gate.set()
    assert await finish(task) is Stop.REQUESTED
    assert r.commits == [0, 1]


# -- bounded: at most MAX_IN_FLIGHT batches between write and commit ---------------------------------
async def test_at_most_two_batches_in_flight() -> None:
    assert MAX_IN_FLIGHT == 2
    r = rig([batch(i) for i in range(6)])
    gate = r.steps.hold("commit 0")
    task = start(r)
    await until(lambda: "write 1 ack" in r.steps.log, "batch 1 written")
    await settle()
    # batch 0 committing, batch 1 written, batch 2 normalized and waiting: nothing more
    assert "write 2 start" not in r.steps.log
    assert r.consumer.fetched == 3
    gate.set()
    assert await finish(task) is Stop.REQUESTED
    assert r.commits == list(range(6))


# -- DLQ limit: the offending batch is neither stored, dead-lettered nor committed -------------------------
async def test_dlq_limit_stops_before_the_offending_batch_after_committing_the_previous() -> None:
    r = rig([batch(0), batch(1, good=0, bad=5), batch(2)], limit=DlqLimit(0.99, 3))
    gate = r.steps.hold("commit 0")
    task = start(r)
    await until(lambda: r.pipeline.trip is not None, "the DLQ limit tripped")
    await settle()
    assert not task.done()  # batch 0 is still committing
    gate.set()
    assert await finish(task) is Stop.DLQ_LIMIT
    assert r.commits == [0] and r.dlq.sent == []
    assert [s for s in r.steps.log if not s.startswith(("write 0", "commit 0"))] == []


async def test_process_chains_single_batches_in_order() -> None:
    r = rig([])
    out = await r.pipeline.process(batch(0, good=2, bad=1))
    assert (out.consumed, out.stored, out.dead_lettered) == (3, 2, 1)
    out = await r.pipeline.process(batch(1))
    assert out.committed == {Partition("t", 0): 13} and r.commits == [0, 1]
    assert r.steps.before("commit 0 done", "write 1 start")


# -- healing a Redis that lost acknowledged writes (``recovery``) ----------------------------

async def test_each_write_records_the_offsets_its_batch_covers() -> None:
    r = rig([batch(0), batch(1, good=2, bad=1)])
    assert await finish(start(r)) is Stop.REQUESTED
    assert r.writer.covers == [(("t|0", 3),), (("t|0", 13),)]
    assert r.writer.records == {("t1", "t|0"): 13}


async def test_a_record_found_below_what_was_acknowledged_rewinds_the_partition() -> None:
    """Redis lost writes (its record fell back from 13 to 3): the batches in flight finish,
    then the partition is sought back to 3, before anything else is fetched."""
    r = rig([batch(0), batch(1)], stop_when_empty=False)
    task = start(r)
    await until(lambda: r.commits == [0, 1], "both batches committed")
    r.writer.records[("t1", "t|0")] = 3  # the restored Redis
    r.consumer.queue.append(batch(2))
    await until(lambda: r.consumer.seeks == [(("t", 0), 3)], "the seek back to offset 3")
    assert r.steps.before("commit 2 done", "seek 0 3")  # in-flight batch finished first
    r.consumer.queue.append(batch(0))  # the replay re-reads from 3 (the fake replays batch 0)
    await until(lambda: r.commits == [0, 1, 2, 0], "the replayed batch committed")
    r.pipeline.request_stop()
    assert await finish(task) is Stop.REQUESTED
    assert len(r.consumer.seeks) == 1, "the replay itself must not look like another rollback"


async def test_the_refresh_records_idle_tenants_and_notices_a_rollback_without_new_events() -> None:
    r = rig([batch(0)], stop_when_empty=False, settings=Settings(offsets_refresh_ms=1))
    r.writer.records[("idle", "t|0")] = 1  # a tenant that has no events in these batches
    await r.pipeline.heal_assigned([TP("t", 0)])  # (nothing committed: no seek)
    task = start(r)
    await until(lambda: r.writer.records.get(("idle", "t|0")) == 3, "the idle tenant's record raised")
    r.writer.records[("idle", "t|0")] = 2  # rolled back while nothing is being ingested
    await until(lambda: r.consumer.seeks == [(("t", 0), 2)], "the rollback noticed by the refresh")
    r.pipeline.request_stop()
    assert await finish(task) is Stop.REQUESTED


async def test_assignment_resumes_from_the_lower_of_committed_and_recorded() -> None:
    r = rig([])
    r.consumer.group_offsets[("t", 0)] = 500
    r.writer.records.update({("a", "t|0"): 800, ("b", "t|0"): 420, ("a", "t|1"): 10})
    r.writer.lineage["t|0"] = 500
    await r.pipeline.heal_assigned([TP("t", 0)])
    assert r.consumer.seeks == [(("t", 0), 420)]
    r2 = rig([])
    r2.consumer.group_offsets[("t", 0)] = 500
    r2.writer.records.update({("a", "t|0"): 500, ("b", "t|0"): 900})
    r2.writer.lineage["t|0"] = 500
    await r2.pipeline.heal_assigned([TP("t", 0)])
    assert r2.consumer.seeks == []


async def test_a_redis_that_lost_everything_is_refilled_from_the_beginning() -> None:
    """No lineage mark although Kafka has a committed offset: Redis lost its data (no tenant
    record is left to compare with), so the partition replays from 0; with no committed offset
    (a new group) the consumer's own position is right."""
    r = rig([])
    r.consumer.group_offsets[("t", 0)] = 500
    await r.pipeline.heal_assigned([TP("t", 0)])
    assert r.consumer.seeks == [(("t", 0), 0)]
    assert r.writer.lost == 1, "the writer is told: no tenant's positions may start again from 1"
    fresh = rig([])
    await fresh.pipeline.heal_assigned([TP("t", 0)])
    assert fresh.consumer.seeks == [] and fresh.writer.lost == 0


async def test_a_worker_that_finds_its_lineage_mark_gone_replays_from_the_beginning() -> None:
    """This worker began reading at offset 10 (a previous one stored offsets 0..9): a wiped
    Redis lost those too, so the replay starts at 0, not where this worker began."""
    r = rig([batch(1), batch(2)], stop_when_empty=False)
    task = start(r)
    await until(lambda: r.commits == [1, 2], "both batches committed")
    await r.pipeline.refresh_offsets()
    assert r.writer.lineage == {"t|0": 23} and r.writer.lost == 0
    r.writer.lineage.clear()  # Redis wiped: the mark and every record gone
    r.writer.records.clear()
    await r.pipeline.refresh_offsets()
    assert r.writer.lost == 1
    r.consumer.queue.append(batch(3))
    await until(lambda: (("t", 0), 0) in r.consumer.seeks, "the seek back to the beginning")
    assert (("t", 0), 10) not in r.consumer.seeks
    r.pipeline.request_stop()
    await task


async def test_writes_after_a_loss_do_not_raise_the_record_past_the_lost_records() -> None:
    """A worker that dies between finding the loss and finishing its replay must still resume
    before the lost records: the writes that find it, and those in flight, leave the record
    where the loss left it; the replay raises it again."""
    r = rig([batch(0), batch(1)], stop_when_empty=False)
    task = start(r)
    await until(lambda: r.commits == [0, 1], "both batches committed")
    r.writer.records[("t1", "t|0")] = 3  # the restored Redis holds batch 0 only
    gate = r.steps.hold("commit 3")  # keep batch 3 in flight: the rewind waits for it
    r.consumer.queue.extend([batch(2), batch(3)])
    await until(lambda: "write 3 ack" in r.steps.log, "batches 2 and 3 written after the loss")
    assert r.writer.records[("t1", "t|0")] == 3, "the record must stay before the lost records"
    assert r.consumer.seeks == []  # not yet: batch 3 is still in flight
    gate.set()
    await until(lambda: r.consumer.seeks == [(("t", 0), 3)], "the seek back to offset 3")
    assert r.writer.records[("t1", "t|0")] == 3
    r.consumer.queue.append(batch(1))  # the replay (the fake re-delivers batch 1: offsets 10..12)
    await until(lambda: r.writer.records[("t1", "t|0")] == 13, "the replay raises the record again")
    r.pipeline.request_stop()
    assert await finish(task) is Stop.REQUESTED
