"""The chaos suite: the whole stack as separate processes (its own Kafka broker and Redis, two
ingest workers at most, the archiver, the API), a steady load of known events, and a sequence
of faults. After each fault the load pauses until every acknowledged event is stored (the
recovery time), then the tiers are walked through the API: events missing, events stored
twice, dead letters (none are produced), HTTP answers of 500 (never allowed) and 503 (a store
that is down) from a prober that reads all along, and what a live-tail subscriber that started
at the first event has received (missing or twice).

``python tests/integration/chaos_support.py [--long] [--out FILE]`` (``make chaos``) runs it
and writes the table; ``tests/integration/test_chaos.py`` runs the short version in ``make
test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis as redis_lib
from aiokafka import AIOKafkaProducer

from eventstrata.auth import ApiKeys
from eventstrata.client import ApiError, AsyncClient
from eventstrata.config import Settings
from eventstrata.ingest.dlq_topic import read_letters
from eventstrata.localstack.kafka import KafkaServer, create_topics
from eventstrata.localstack.ports import free_port
from eventstrata.localstack.redis import RedisServer
from eventstrata.redisconn import connect_redis

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ("acme", "globex")
HOUR = 3_600_000
STATIC_WORKER = "chaos-0"
"""The first worker's static group instance id (EVENTSTRATA_INGEST_INSTANCE_ID): restarted after
its kill -9, it takes its partitions back at once; the second (the rebalance) is dynamic."""


@dataclass
class Row:
    """One fault's line of the table."""

    fault: str
    produced: int = 0
    stored: int = 0
    missing: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    http_500: int = 0
    http_503: int = 0
    tail_missing: int = 0
    tail_twice: int = 0
    recovery_s: float = 0.0


@dataclass
class Sizes:
    rate: int  # events/s produced
    phase_s: float  # load between faults


KILL_REDIS = "kill -9 Redis, restart it from its AOF"
RESTART_REDIS = "restart Redis, keeping a copy of its data"
ROLLBACK = "roll Redis back to the earlier copy"
WIPE = "wipe Redis (empty data directory)"
TAIL_REPEATS = frozenset({ROLLBACK, WIPE})
"""Faults across which the live tail is known to repeat events (docs/OPERATIONS.md, "Chaos
suite"): Redis losing acknowledged writes, whose replay stores the lost events again under new
positions, above every position given before -- so the tail misses nothing, but a subscriber
receives again the lost events it had received. Storage stays exactly once across all of them."""

SHORT = Sizes(rate=300, phase_s=3.0)
LONG = Sizes(rate=1000, phase_s=20.0)


class Proc:
    """A product process (``python -m eventstrata.processes.<name>``) with its log."""

    def __init__(self, module: str, env: dict[str, str], log: Path, *args: str) -> None:
        self.popen = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=ROOT,
                                      stdout=log.open("ab"), stderr=subprocess.STDOUT)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    """The stack under test and the observers around it."""

    tmp: Path
    sizes: Sizes
    kafka: KafkaServer = field(init=False)
    redis: RedisServer = field(init=False)
    settings: Settings = field(init=False)
    env: dict[str, str] = field(init=False)
    api_url: str = field(init=False)
    keys: dict[str, str] = field(default_factory=dict)
    workers: list[Proc] = field(default_factory=list)
    archiver: Proc | None = None
    api: Proc | None = None
    acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    tailed: list[str] = field(default_factory=list)
    _producing: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _seq: int = 0
    _producer: AIOKafkaProducer | None = None

    # -- servers and processes ------------------------------------------------------------
    async def start(self) -> None:
        self.kafka = KafkaServer(self.tmp / "kafka")
        self.kafka.start()
        self.redis = RedisServer(self.tmp / "redis")
        self.redis.start()
        await asyncio.to_thread(self.kafka.wait_ready)
        self.redis.wait_ready()
        self.settings = Settings.from_env(
            env={}, kafka_bootstrap=self.kafka.bootstrap, redis_url=self.redis.url, topic="chaos.raw",
            dlq_topic="chaos.dlq", consumer_group="chaos", archive_uri=str(self.tmp / "archive"),
            state_dir=self.tmp / "state", hot_retention_ms=24 * HOUR, window_ms=HOUR, archive_interval_ms=1000,
            archive_grace_ms=500, archive_lease_ms=5000, offsets_refresh_ms=200, api_port=free_port(),
            log_level="INFO", api_key_cache_ms=0)
        await create_topics(self.kafka.bootstrap, [("chaos.raw", 4), ("chaos.dlq", 1)])
        self.env = {**os.environ, **self.settings.to_env()}
        self.api_url = f"http://127.0.0.1:{self.settings.api_port}"
        redis = connect_redis(self.settings)
        try:
            self.keys = {t: await ApiKeys(redis, self.settings.layout()).create(t) for t in TENANTS}
        finally:
            await redis.aclose()
        self.start_worker(STATIC_WORKER)
        self.archiver = self._proc("archiver", "eventstrata.processes.archive")
        self.api = self._proc("api", "eventstrata.processes.api")
        await self._wait_api()
        self._producing.set()
        self._tasks = [asyncio.create_task(self._produce()), asyncio.create_task(self._probe()),
                       asyncio.create_task(self._tail())]

    def _proc(self, name: str, module: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        return Proc(module, {**self.env, **(env or {})}, self.tmp / f"{name}.log", *args)

    def worker(self, name: str, instance_id: str = "") -> Proc:
        """An ingest worker; with ``instance_id``, a static group member (restarted in place
        with the same id, it takes its partitions back at once)."""
        return self._proc(name, "eventstrata.processes.ingest", env={"EVENTSTRATA_INGEST_INSTANCE_ID": instance_id})

    def start_worker(self, instance_id: str = "") -> Proc:
        w = self.worker(f"worker{len(self.workers)}", instance_id)
        self.workers.append(w)
        return w

    async def _wait_api(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as c:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(self.api_url + "/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("the API did not start")

    async def stop(self) -> None:
        self._stop.set()
        self._producing.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for p in [*self.workers, self.archiver, self.api]:
            if p is not None:
                p.stop()
        self.redis.stop()
        self.kafka.stop()

    # -- the load and the observers ---------------------------------------------------------
    async def _produce(self) -> None:
        """Known events at ``sizes.rate``, timed over the last two days (so the archiver moves
        about half of them); each is retried until Kafka acknowledges it."""
        try:
            await self._produce_loop(1.0 / self.sizes.rate)
        finally:
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await self._producer.stop()

    async def _produce_loop(self, period: float) -> None:
        while not self._stop.is_set():
            await self._producing.wait()
            try:
                if self._producer is None:
                    self._producer = AIOKafkaProducer(bootstrap_servers=self.kafka.bootstrap, acks="all",
                                                      enable_idempotence=True, request_timeout_ms=5000)
                    await self._producer.start()
                producer = self._producer
                now = int(time.time() * 1000)
                batch = []
                for _ in range(max(1, self.sizes.rate // 10)):
                    i = self._seq
                    self._seq += 1
                    t = TENANTS[i % 2]
                    ev = {"id": f"c-{i}", "tenant": t, "type": ("view", "buy", "ask")[i % 3],
                          "user_id": f"u{i % 97}", "timestamp": now - (i * 7919) % (48 * HOUR)}
                    batch.append((ev["id"], await producer.send(
                        "chaos.raw", orjson.dumps(ev), key=f"{t}:u{i % 97}".encode(),
                        headers=[("es-format", b"native")])))
                for eid, fut in batch:
                    with contextlib.suppress(Exception):
                        await fut
                        self.acked.add(eid)
                await asyncio.sleep(period * len(batch))
            except Exception:  # the broker is down: a new producer, later
                if self._producer is not None:
                    with contextlib.suppress(Exception):
                        await self._producer.stop()
                self._producer = None
                await asyncio.sleep(0.5)

    async def _probe(self) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10,
                                     headers={"Authorization": f"Bearer {self.keys['acme']}"}) as c:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    r = await c.get("/v1/events", params={"limit": 5})
                    self.statuses[r.status_code] += 1
                await asyncio.sleep(0.05)

    async def _tail(self) -> None:
        """One subscriber from the first event on; after an ``error`` item it resumes from the
        last event it received, as a client application would."""
        last = "0"
        while not self._stop.is_set():
            try:
                async with AsyncClient(self.api_url, self.keys["acme"], backoff_s=0.2) as es:
                    async for e in es.tail(after=last):
                        self.tailed.append(str(e["id"]))
                        last = str(e.get("global_position") or last)
            except ApiError:
                await asyncio.sleep(0.5)

    # -- checks -----------------------------------------------------------------------------
    async def stored_ids(self) -> list[str]:
        out: list[str] = []
        for t in TENANTS:
            async with AsyncClient(self.api_url, self.keys[t], retries=20, backoff_s=0.5) as es:
                async for e in es.events(limit=1000, since=_since()):
                    out.append(str(e["id"]))
        return out

    async def counted(self) -> int:
        """The exact count of both tenants' events, through the API."""
        n = 0
        for t in TENANTS:
            async with AsyncClient(self.api_url, self.keys[t], retries=20, backoff_s=0.5) as es:
                n += (await es.count(since=_since())).count
        return n

    async def _caught_up(self, want: set[str]) -> list[str] | None:
        """The stored ids when every id of ``want`` is stored, else None (a store may be down)."""
        try:
            if await self.counted() >= len(want):
                ids = await self.stored_ids()
                if want <= set(ids):
                    return ids
        except Exception:  # a store still down: the caller tries again
            return None
        return None

    async def settle(self, row: Row, started: float, timeout: float = 240.0) -> None:
        """Under the load, wait until every event acknowledged before the fault is stored
        (``recovery_s`` from ``started``); then pause the load, wait until every acknowledged
        event is stored and fill ``row`` from a walk of both tiers through the API."""
        deadline = time.monotonic() + timeout
        before = set(self.acked)
        while time.monotonic() < deadline and await self._caught_up(before) is None:
            await asyncio.sleep(0.5)
        row.recovery_s = round(time.monotonic() - started, 1)
        self._producing.clear()
        await asyncio.sleep(0.3)  # the batch in flight finishes
        want = set(self.acked)
        ids: list[str] = []
        while time.monotonic() < deadline:
            got = await self._caught_up(want)
            if got is not None:
                ids = got
                break
            await asyncio.sleep(0.5)
        else:
            with contextlib.suppress(Exception):
                ids = await self.stored_ids()
        row.produced = len(want)
        row.stored = len(set(ids))
        row.missing = len(want - set(ids))
        row.duplicates = len(ids) - len(set(ids))
        with contextlib.suppress(Exception):
            row.dead_letters = len(await read_letters(self.kafka.bootstrap, "chaos.dlq", timeout_s=10))
        tail_want = {i for i in want if int(i[2:]) % 2 == 0}  # acme's events
        await asyncio.sleep(1.0)
        row.tail_missing = len(tail_want - set(self.tailed))
        row.tail_twice = len(self.tailed) - len(set(self.tailed))
        self._producing.set()


def _since() -> int:
    """Before every event the load produces (they are timed over the last two days)."""
    return int(time.time() * 1000) - 72 * HOUR


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _restart_redis(stack: Stack, *, kill: bool = True, restore: Path | None = None,
                   keep: Path | None = None, wipe: bool = False) -> None:
    """Stop Redis (kill -9, or SIGTERM), keep or restore a copy of its data or wipe it, start it
    again on the same port. Blocks: run it in a thread, so the observers keep observing."""
    data = stack.redis.state_dir / "appendonlydir"
    if kill:
        assert stack.redis.ref is not None
        _kill_pid(stack.redis.ref.pid)
        if stack.redis.popen is not None:
            stack.redis.popen.wait(30)
    else:
        stack.redis.stop()
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(data, keep)
    if restore is not None:
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(restore, data)
    if wipe:
        shutil.rmtree(data, ignore_errors=True)
    stack.redis.start()
    stack.redis.wait_ready()


def _api_key_records(stack: Stack) -> dict[str, Any]:
    r = redis_lib.Redis.from_url(stack.redis.url)
    try:
        out: dict[str, Any] = {}
        for k in r.scan_iter(match=f"{stack.settings.key_prefix}:apikey*"):
            out[k.decode()] = r.dump(k)
        return out
    finally:
        r.close()


def _restore_records(stack: Stack, saved: dict[str, Any]) -> None:
    r = redis_lib.Redis.from_url(stack.redis.url)
    try:
        for k, v in saved.items():
            r.restore(k, 0, v, replace=True)
    finally:
        r.close()


async def _phase(stack: Stack, name: str, fault: Callable[[], Awaitable[None]]) -> Row:
    await asyncio.sleep(stack.sizes.phase_s)
    row = Row(name)
    before = Counter(stack.statuses)
    await fault()
    started = time.monotonic()
    await stack.settle(row, started)
    delta = stack.statuses - before
    row.http_500 = sum(n for s, n in delta.items() if s >= 500 and s != 503)
    row.http_503 = delta[503]
    return row


async def _nothing() -> None:
    """No fault: the last phase checks the events produced after the last fault."""


async def run(tmp: Path, sizes: Sizes) -> list[Row]:
    """Start the stack, inject every fault in sequence, return the table's rows."""
    stack = Stack(tmp, sizes)
    await stack.start()
    rows: list[Row] = []
    try:
        async def kill_worker() -> None:
            stack.workers[0].kill()
            stack.workers[0] = stack.worker("worker0b", STATIC_WORKER)

        async def rebalance() -> None:
            second = stack.start_worker()
            await asyncio.sleep(max(5.0, sizes.phase_s))
            second.stop()
            stack.workers.remove(second)

        async def kill_redis() -> None:
            await asyncio.to_thread(_restart_redis, stack, kill=True)

        async def copy_redis() -> None:  # a clean restart that keeps a copy for the rollback
            await asyncio.to_thread(_restart_redis, stack, kill=False, keep=tmp / "redis-copy")

        async def kill_broker() -> None:
            assert stack.kafka.ref is not None
            _kill_pid(stack.kafka.ref.pid)
            if stack.kafka.popen is not None:
                stack.kafka.popen.wait(30)
            await asyncio.sleep(1.0)
            stack.kafka.start()
            await asyncio.to_thread(stack.kafka.wait_ready)

        async def kill_archiver() -> None:
            assert stack.archiver is not None
            stack.archiver.kill()
            crashing = stack._proc("archiver-crash", "eventstrata.processes.archive", "--once",
                                   "--crash-after", "write")
            await asyncio.to_thread(crashing.popen.wait, 120)
            stack.archiver = stack._proc("archiver2", "eventstrata.processes.archive")

        async def rollback() -> None:
            await asyncio.to_thread(_restart_redis, stack, kill=False, restore=tmp / "redis-copy")

        async def wipe() -> None:
            # API keys live only in Redis: saved here and put back after the wipe, as an
            # operator restores them from a backup (OPERATIONS.md, "Redis lost everything")
            saved = await asyncio.to_thread(_api_key_records, stack)
            await asyncio.to_thread(_restart_redis, stack, kill=True, wipe=True)
            await asyncio.to_thread(_restore_records, stack, saved)

        for name, fault in (
            ("kill -9 an ingest worker, restart it", kill_worker),
            ("a second worker joins, then leaves (rebalance)", rebalance),
            (KILL_REDIS, kill_redis),
            (RESTART_REDIS, copy_redis),
            ("kill -9 the Kafka broker, restart it", kill_broker),
            ("kill -9 the archiver mid-pass, run it again", kill_archiver),
            (ROLLBACK, rollback),
            (WIPE, wipe),
            ("steady load after the faults", _nothing),
        ):
            rows.append(await _phase(stack, name, fault))
    finally:
        await stack.stop()
    return rows


def table(rows: list[Row]) -> str:
    head = ("| fault | events produced | stored | missing | stored twice | dead letters | HTTP 500 | HTTP 503 "
            "| tail: missing | tail: twice | recovery, s |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    return head + "".join(
        f"| {r.fault} | {r.produced:,} | {r.stored:,} | {r.missing} | {r.duplicates} | {r.dead_letters} "
        f"| {r.http_500} | {r.http_503} | {r.tail_missing} | {r.tail_twice} | {r.recovery_s} |\n" for r in rows)


def main() -> int:
    p = argparse.ArgumentParser(description="eventstrata chaos suite")
    p.add_argument("--long", action="store_true", help="the longer run (make chaos)")
    p.add_argument("--out", default=None, help="write the table (markdown) here")
    args = p.parse_args()
    sizes = LONG if args.long else SHORT
    with tempfile.TemporaryDirectory(prefix="eventstrata-chaos-") as d:
        rows = asyncio.run(run(Path(d), sizes))
    text = (f"# eventstrata chaos suite — {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n\n"
            f"Mode: {'long' if args.long else 'short'} ({sizes.rate} events/s, {sizes.phase_s:.0f} s of load "
            f"between faults), one machine, every process real.\n\n" + table(rows))
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    bad = [r for r in rows if r.missing or r.duplicates or r.dead_letters or r.http_500]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
