"""Helpers of the ingest integration tests (real Kafka + Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.asyncio import Redis

from eventstrata.config import Settings
from eventstrata.hotstore.tailentry import entry_count
from eventstrata.ingest.pipeline import IngestPipeline
from eventstrata.ingest.worker import run_worker
from eventstrata.keys import (
    DAY_MS,
    SEQ_BLOCK,
    KeyLayout,
    TenantKeys,
    id_bucket_of,
    split_member,
    user_set_starts,
)

BASE_TS = int(time.time() * 1000) - 3_600_000


def native(i: int, tenant: str = "acme", **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": f"evt-{i}", "tenant": tenant, "type": ("click", "view", "buy")[i % 3],
        "user_id": f"user-{i % 7}", "timestamp": BASE_TS + i, "data": {"n": i, "pad": "x" * 200},
    }
    d.update(kw)
    return d


async def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes, Sequence[tuple[str, bytes]], bytes | None]],
    *, partition: int | None = None,
) -> int:
    """Send (value, headers, key) messages, wait for every ack; returns the count."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=512 * 1024,
                         max_request_size=4 * 1024 * 1024, acks="all")
    await p.start()
    n = 0
    try:
        futs = []
        for value, headers, key in messages:
            futs.append(await p.send(topic, value=value, headers=list(headers), key=key, partition=partition))
            n += 1
            if len(futs) >= 10_000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return n


def jmsg(obj: Any, **headers: str) -> tuple[bytes, list[tuple[str, bytes]], bytes | None]:
    return orjson.dumps(obj), [(k.replace("_", "-"), v.encode()) for k, v in headers.items()], None


async def run_until(settings: Settings, done: Callable[[IngestPipeline], bool], timeout: float = 120.0) -> int:
    """Run an in-process worker until ``done(pipeline)`` (checked every 50 ms); returns its
    exit code. Raises TimeoutError when ``done`` never holds."""
    holder: list[IngestPipeline] = []
    task = asyncio.create_task(run_worker(settings, on_ready=holder.append))
    deadline = time.monotonic() + timeout
    try:
        while not task.done():
            if holder and done(holder[0]):
                holder[0].request_stop()
                break
            if time.monotonic() > deadline:
                raise TimeoutError("worker did not reach the expected state")
            await asyncio.sleep(0.05)
        return await asyncio.wait_for(task, 60)
    finally:
        if not task.done():
            if holder:
                holder[0].request_stop()
            await asyncio.wait_for(task, 60)


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return {p: await c.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await c.stop()


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await c.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await c.stop()


async def read_all(bootstrap: str, topic: str, partitions: int = 1) -> list[Any]:
    """Every record of ``topic`` (up to its end offsets at call time)."""
    ends = await end_offsets(bootstrap, topic, partitions)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                         group_id=None)
    await c.start()
    out: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        want = sum(ends.values())
        deadline = time.monotonic() + 30
        while len(out) < want and time.monotonic() < deadline:
            got = await c.getmany(timeout_ms=500)
            for recs in got.values():
                out.extend(recs)
    finally:
        await c.stop()
    return out


async def snapshot(redis: Redis, prefix: str) -> dict[bytes, Any]:
    """Every key under ``prefix`` with its full contents (for before/after comparisons)."""
    out: dict[bytes, Any] = {}
    async for k in redis.scan_iter(f"{prefix}:*", count=1000):
        t = await redis.type(k)
        if t == b"hash":
            out[k] = await redis.hgetall(k)
        elif t == b"zset":
            out[k] = await redis.zrange(k, 0, -1, withscores=True)
        elif t == b"set":
            out[k] = await redis.smembers(k)
        elif t == b"stream":
            out[k] = await redis.xrange(k)
        else:
            out[k] = await redis.get(k)
    return out


def fresh_group() -> str:
    return "g-" + uuid.uuid4().hex[:10]


def layout(settings: Settings) -> KeyLayout:
    return KeyLayout(settings.key_prefix)


async def tail_events(redis: Any, key: str | bytes) -> int:
    """How many events a tail stream announces (an entry announces one write call's new
    events; ``hotstore.tailentry``), read in pages."""
    n, start = 0, "-"
    while True:
        rows = await redis.xrange(key, start, "+", count=200)
        n += sum(entry_count(i, f) for i, f in rows)
        if len(rows) < 200:
            return n
        last = rows[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))


@dataclass(frozen=True, slots=True)
class HotInventory:
    """What one tenant's hot keys hold, per family (``keys`` has the layout): event ids with a
    body member, with a type member, found by a tenant-wide read (the type sets each hour's
    types registry lists), with a global position (each a list, so a duplicate shows), the ids
    records, every key name, and global position → id."""

    bodies: list[str]
    by_type: list[str]
    tenant_wide: list[str]
    seq: list[str]
    ids: dict[str, bytes]
    keys: list[str]
    positions: dict[int, str]


async def id_count(redis: Any, tk: TenantKeys) -> int:
    """How many ids the tenant ``tk`` holds (one read: the id buckets' count ``n``)."""
    return int(await redis.hget(tk.id_buckets, "n") or 0)


async def stored_ids(redis: Any, tk: TenantKeys) -> dict[str, bytes]:
    """Every id of the tenant ``tk`` → its ``gpos|spos``, from its id buckets, checking that
    each id is in the bucket ``keys.id_bucket_of`` names and that the count ``n`` is exact."""
    meta = await redis.hgetall(tk.id_buckets)
    buckets = int(meta.get(b"b", 1))
    out: dict[str, bytes] = {}
    for k in range(buckets):
        for raw, v in (await redis.hgetall(tk.id_bucket(k))).items():
            eid = raw.decode("utf-8", "surrogatepass")
            assert id_bucket_of(eid, buckets) == k and eid not in out, (eid, k, buckets)
            out[eid] = v
    assert int(meta.get(b"n", 0)) == len(out), (meta, len(out))
    return out


async def hot_inventory(redis: Any, tk: TenantKeys, *, settled: bool = True) -> HotInventory:
    """Read every hot key of the tenant ``tk`` (SCAN over its base and its shards' bases). With
    ``settled`` (nothing writes meanwhile), also check what holds across keys: each user set is
    a start its registry lists and holds only its range, the hour counts equal the type sets'
    members. A poll while a worker writes passes ``settled=False``: a SCAN is not atomic, so a
    write between two of its reads would fail those checks without anything being wrong."""
    fam: dict[str, list[str]] = {"u": [], "t": [], "ty": []}
    names: list[str] = []
    for base in tk.bases:
        hours: Counter[int] = Counter()  # the hour counts follow the type sets' members
        async for k in redis.scan_iter(f"{base}:*", count=1000):
            name = k.decode() if isinstance(k, bytes) else k
            names.append(name)
            part, *rest = name[len(base) + 1:].split(":")
            if part in ("u", "t"):
                scored = await redis.zrange(name, 0, -1, withscores=True)
                members = [split_member(m)[0] for m, _ in scored]
                fam[part] += members
                if part == "u" and settled:  # a user set: one of the starts its registry field lists
                    start = int(rest[-1])
                    day = start - start % DAY_MS
                    starts = user_set_starts(day, await redis.hget(f"{base}:us", f"{rest[0]}:{day}"))
                    assert start in starts, (name, starts)
                    end = ([s for s in starts if s > start] or [day + DAY_MS])[0]
                    assert all(start <= sc < end for _, sc in scored), (name, starts)
                if part == "t":
                    hours[int(rest[-1])] += len(members)
            elif part == "ty":
                for t in await redis.zrange(name, 0, -1):
                    fam["ty"] += [split_member(m)[0] for m in
                                  await redis.zrange(f"{base}:t:{t.decode()}:{rest[0]}", 0, -1)]
        counted = {int(h): int(n) for h, n in (await redis.hgetall(f"{base}:hc")).items()}
        assert counted == +hours or not settled, (base, counted, hours)
    ids = await stored_ids(redis, tk)
    by_gpos = {int(v.split(b"|")[0]): i for i, v in ids.items()}
    positions: dict[int, str] = {}
    for b in await redis.zrange(tk.seq_blocks, 0, -1):
        for g in await redis.hkeys(tk.seq_block(int(b))):
            assert int(g) // SEQ_BLOCK == int(b) and int(g) not in positions
            positions[int(g)] = by_gpos[int(g)]
    seq = [positions[g] for g in sorted(positions)]
    return HotInventory(fam["u"], fam["t"], fam["ty"], seq, ids, sorted(names), positions)
