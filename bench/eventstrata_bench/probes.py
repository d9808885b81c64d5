"""Development probes: small, fast measurements of one component, for A/B comparisons while
changing it (the full benchmark takes ~18 minutes; a probe takes one or two).

- ``writer``: the hot-tier writer alone against a fresh redis-server (the product's own
  configuration, ``stack.redis``): events/s of the write calls, Redis CPU per event by command
  from ``INFO commandstats`` (``evalsha`` includes the commands the script calls), and memory
  per event by key family (``MEMORY USAGE``). ``--script FILE`` runs a modified ``write.lua``
  (how the per-call costs in docs/ARCHITECTURE.md were found: remove one call, compare);
  ``--dataset`` writes the benchmark's users instead of the sample's; ``--zset-entries N``
  raises Redis' listpack limit for sorted sets (with a huge N: the memory of a layout whose
  every set stays a listpack, a floor for a layout that splits big sets).
- ``api``: one ``eventstrata serve`` process over a fresh redis-server holding ``--events``
  sample events written by the real writer; wrk at 8 connections and at 1 on user pages,
  type pages (last hour), counts and gets by id (``--kinds tenant tenantcount``: the tenant's
  newest 50 of the last hour, its count of the last six days), each with the Redis and API
  CPU and the read-script calls per request, then vegeta at ``openloop.FRACTIONS`` of the
  8-connection throughput (when installed) — the benchmark's own API process, wrk script and
  parser; ``--profile KIND`` samples the API with py-spy meanwhile and prints the
  benchmark's profile summary; ``--api-processes N`` serves with N API processes
  (``EVENTSTRATA_API_PROCESSES``; the API CPU is theirs summed, the profile the first one's).

- ``cluster``: one tenant's writes on a fresh 3-master Redis Cluster (``stack.redis``), the
  benchmark's users (``bench.dataset``: Zipf 1.0 over 20,000 users, event times in the last 10
  minutes), with 1 shard and with ``--shards`` shards, in alternation, twice: events/s, and per
  master the Redis CPU (``INFO cpu``) and memory (``used_memory``) per event.

- ``worker``: the ingest worker's per-event CPU, in this process, no servers: the product's
  ``normalize`` and ``encode`` (the writer's script arguments) against the floor of the library
  calls any Python worker makes per event (``orjson.loads`` of the record, ``orjson.dumps`` of
  the parsed object, zstd compression of the stored payload, ``hiredis.pack_command`` of the
  arguments), on the benchmark's dataset; the median of 5 passes, the garbage collector off.

- ``lean``: evidence for a proposed hot-tier write, not the product's: the same sample events
  written by the product's writer and by a prototype of the proposal, in alternation, each on a
  flushed Redis, twice: Redis CPU (``INFO cpu``) and memory (``used_memory``) per event. The
  prototype keeps the product's sets (bodies in per-(user, day) sets, short members per (type,
  hour) with the hour's types registry, the ``ids`` hash for strict dedupe) but assigns positions only to
  event-store events, keeps them out of the body members (no position blocks), and stores
  with native multi-member ``ZADD``s after a small dedupe script (``HMGET``/``HSET ids``,
  stream positions): one tail entry per tenant and batch. A third writer, "prototype, id
  buckets", claims each id instead with one ``HSETNX`` into the product's small id buckets
  (sized up front, ``ID_BUCKET_LOAD`` ids each), the value being the record's coordinates (a
  stand-in here), in calls of 500 events: the per-event call that strict dedupe within small
  listpacks costs. Memory is also given per key family (``MEMORY USAGE``). Neither prototype
  cuts user or type sets. Nothing of them is used by the product.

Timestamps: ``--live`` puts the events in the last 10 minutes, else they are spread over six
days (a backfill). Not a benchmark of record: numbers vary by ±10 % from run to run on the
2-core machine, so compare A and B in alternation, each at least twice.

Run: ``python -m eventstrata_bench.probes writer --events 100000 [--live] [--script F]``,
``python -m eventstrata_bench.probes api [--events 60000] [--kinds user count] [--profile user]
[--api-processes 2]``,
``python -m eventstrata_bench.probes cluster --events 60000 --shards 12``,
``python -m eventstrata_bench.probes lean --events 100000 [--live]`` or
``python -m eventstrata_bench.probes worker --events 20000``.
Blocking; needs redis-server (and wrk, py-spy for ``api``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from eventstrata.auth import ApiKeys
from eventstrata.config import Settings
from eventstrata.formats.normalize import normalize
from eventstrata.formats.samples import encode_headers, sample_event
from eventstrata.hotstore import writer as hot_writer
from eventstrata.hotstore.codec import BodyCodec, lean_payload
from eventstrata.keys import KeyLayout
from eventstrata.localstack.redis import RedisServer
from eventstrata.model import FORMATS, Event
from eventstrata_bench import openloop
from eventstrata_bench.infra import Api
from eventstrata_bench.machine import process_cpu_seconds
from eventstrata_bench.profile import record
from eventstrata_bench.scen_reads import lua_script, run_wrk

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
TENANT = "acme"


def sample_events(n: int, now_ms: int, *, live: bool, tenants: Sequence[str] = (TENANT,),
                  users: int = 2000, seed: int = 1) -> list[Event]:
    """``n`` normalized sample events of all five formats, Pareto-distributed users. Pure."""
    rng = random.Random(seed)
    out: list[Event] = []
    span = 600_000 if live else 6 * 24 * HOUR_MS
    for i in range(n):
        user = f"u{int(rng.paretovariate(1.0)) % users:06d}"
        obj, headers = sample_event(rng, FORMATS[i % len(FORMATS)], tenants[i % len(tenants)], user,
                                    now_ms - rng.randint(1000, span))
        ev = normalize(orjson.dumps(obj), encode_headers(headers), now_ms=now_ms)
        if isinstance(ev, Event):
            out.append(ev)
    return out


async def _write(redis: Redis, events: Sequence[Event], *, batch: int = 2000, shards: int = 1) -> float:
    w = hot_writer.RedisHotWriter(redis, KeyLayout("es", shards), window_ms=HOUR_MS, tail_maxlen=100_000)
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        await w.write(events[i:i + batch])
    return time.perf_counter() - t0


async def _families(redis: Redis, n: int) -> dict[str, int]:
    """``MEMORY USAGE`` of every key ÷ ``n``, per key family (the name after the hash tag)."""
    families: dict[str, int] = {}
    async for key in redis.scan_iter(count=1000):
        name = key.decode()
        family = name.split("}:")[1].split(":")[0] if "}:" in name else name
        families[family] = families.get(family, 0) + int(await redis.memory_usage(key, samples=0) or 0)
    return {k: round(v / n) for k, v in sorted(families.items(), key=lambda x: -x[1]) if v >= n}


async def _writer_probe(url: str, events: Sequence[Event], shards: int = 1,
                        zset_entries: int | None = None) -> None:
    redis = Redis.from_url(url)
    try:
        if zset_entries is not None:
            await redis.config_set("zset-max-listpack-entries", zset_entries)
        await redis.config_resetstat()
        cpu0 = await redis.info("cpu")
        seconds = await _write(redis, events, shards=shards)
        n = len(events)
        cpu1 = await redis.info("cpu")
        stats = await redis.info("commandstats")
        per = {k.removeprefix("cmdstat_"): v["usec"] / n for k, v in stats.items() if v["usec"] / n >= 0.1}
        used_cpu = sum(cpu1[k] - cpu0[k] for k in ("used_cpu_sys", "used_cpu_user"))
        print(f"write calls: {n / seconds:,.0f} events/s (encoding included); Redis CPU (INFO cpu, "
              f"AOF everysec): {used_cpu / n * 1e6:.1f} µs/event")
        ranked = sorted(per.items(), key=lambda x: -x[1])
        print("Redis µs/event by command:", {k: round(v, 1) for k, v in ranked})
        calls = sorted(((k.removeprefix("cmdstat_"), v["calls"] / n) for k, v in stats.items()),
                       key=lambda x: -x[1])
        print("calls/event by command:", {k: round(v, 2) for k, v in calls if v >= 0.01})
        used = (await redis.info("memory"))["used_memory"]
        print(f"memory: {used / n:,.0f} B/event used_memory;", await _families(redis, n))
    finally:
        await redis.aclose()


def dataset_events(n: int, now_ms: int, *, span_days: float = 600_000 / 86_400_000) -> list[Event]:
    """``n`` normalized events of one tenant with the benchmark's users, over the last
    ``span_days`` (10 minutes by default)."""
    from eventstrata_bench.dataset import DatasetSpec, generate, load_sample_fn

    spec = DatasetSpec(events=n, tenants=(TENANT,), tenant_weights=(1.0,), span_days=span_days)
    out: list[Event] = []
    for g in generate(spec, now_ms, load_sample_fn()):
        ev = normalize(g.value, g.headers, now_ms=now_ms)
        if isinstance(ev, Event):
            out.append(ev)
    return out


async def _cluster_probe(url: str, events: Sequence[Event], shards: int, prefix: str) -> None:
    from redis.asyncio.cluster import RedisCluster

    redis = RedisCluster.from_url(url)
    await redis.initialize()
    try:
        masters = redis.get_primaries()

        async def per_master(section: str, field: str | tuple[str, ...]) -> list[float]:
            out = []
            for node in masters:
                info = await redis.info(section, target_nodes=node)
                out.append(sum(info[f] for f in field) if isinstance(field, tuple) else info[field])
            return out

        cpu_fields = ("used_cpu_sys", "used_cpu_user")
        cpu0, mem0 = await per_master("cpu", cpu_fields), await per_master("memory", "used_memory")
        w = hot_writer.RedisHotWriter(redis, KeyLayout(prefix, shards), window_ms=HOUR_MS,
                                      tail_maxlen=100_000)
        t0 = time.perf_counter()
        for i in range(0, len(events), 2000):
            await w.write(events[i:i + 2000])
        seconds = time.perf_counter() - t0
        cpu1, mem1 = await per_master("cpu", cpu_fields), await per_master("memory", "used_memory")
        n = len(events)
        cpu = [(b - a) / n * 1e6 for a, b in zip(cpu0, cpu1, strict=True)]
        mem = [(b - a) / n for a, b in zip(mem0, mem1, strict=True)]
        print(f"{shards:>2} shard(s): {n / seconds:,.0f} events/s; per master: Redis CPU µs/event "
              f"{', '.join(f'{c:.1f}' for c in cpu)} (sum {sum(cpu):.1f}), B/event "
              f"{', '.join(f'{m:.0f}' for m in mem)} (sum {sum(mem):.0f})", flush=True)
    finally:
        await redis.aclose()


def _cluster(events: Sequence[Event], shards: int, work: Path) -> None:
    from collections import Counter

    from eventstrata.localstack.redis import RedisClusterServer

    users = Counter(e.user_id for e in events)
    top = users.most_common(1)[0][1] / len(events)
    print(f"{len(users):,} users; the busiest holds {100 * top:.1f} % of the events")
    cluster = RedisClusterServer(work / "cluster", nodes=3)
    cluster.start()
    try:
        cluster.wait_ready(timeout=60.0)
        for run, s in enumerate((1, shards, 1, shards)):
            asyncio.run(_cluster_probe(cluster.url, events, s, f"p{run}"))
    finally:
        cluster.stop()


LEAN_DEDUPE = b"""
local ids = KEYS[1]
local spos = KEYS[2]
local n = #ARGV / 3
local found = redis.call('HMGET', ids, unpack(ARGV, 1, n))
local out, fields = {}, {}
for i = 1, n do
  if found[i] then
    out[i] = false
  else
    local stream = ARGV[n + i]
    local pos = ''
    if stream ~= '' then pos = redis.call('HINCRBY', spos, stream, 1) end
    out[i] = tostring(pos)
    fields[#fields + 1] = ARGV[i]
    fields[#fields + 1] = ARGV[2 * n + i]
  end
end
if #fields > 0 then redis.call('HSET', ids, unpack(fields)) end
return out
"""
LEAN_DEDUPE_SHA = hashlib.sha1(LEAN_DEDUPE, usedforsecurity=False).hexdigest()
LEAN_CLAIM = b"""
local base, n = ARGV[1], (#ARGV - 1) / 4
local out = {}
for i = 1, n do
  local j = 1 + 4 * (i - 1)
  local bucket, id, v, stream = base .. ':i:' .. ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4]
  if redis.call('HSETNX', bucket, id, v) == 1 then
    local pos = ''
    if stream ~= '' then pos = redis.call('HINCRBY', base .. ':spos', stream, 1) end
    out[i] = tostring(pos)
  elseif redis.call('HGET', bucket, id) == v then
    out[i] = 'again'
  else
    out[i] = false
  end
end
return out
"""
"""The bucketed claim: per event ``HSETNX`` of the id with its record's coordinates; the same
coordinates found = a replay of that record (stored again, byte for byte), others = a
duplicate; a new event-store event gets its stream position. Returns the stream position
('' = none), 'again', or false per event."""
LEAN_CLAIM_SHA = hashlib.sha1(LEAN_CLAIM, usedforsecurity=False).hexdigest()


async def _lean_write(redis: Redis, events: Sequence[Event], codec: BodyCodec, *, buckets: int = 0) -> None:
    """The prototype write (see the module docstring), per tenant and batch of 2,000; with
    ``buckets`` > 0, the bucketed claim (``LEAN_CLAIM``) into that many id buckets per tenant,
    in calls of 500 events."""
    from eventstrata import keys

    by_tenant: dict[str, list[Event]] = {}
    for e in events:
        by_tenant.setdefault(e.tenant, []).append(e)
    per_call = 500 if buckets else 2000
    for tenant, evs in by_tenant.items():
        base = f"lean:{{{tenant}}}"
        for i in range(0, len(evs), per_call):
            chunk = evs[i:i + per_call]
            users = [keys.encode_part(e.user_id) if e.user_id is not None else "_" for e in chunk]
            streams = [(e.stream_id or "") if e.format == "eventstore" else "" for e in chunk]
            flags: list[bytes | None]
            if buckets:
                args = [base]
                for k, (e, st) in enumerate(zip(chunk, streams, strict=True)):
                    args += [str(int(keys.id_hash(e.id), 16) % buckets), e.id, f"0:{i + k}", st]
                flags = [None if f is None else (b"" if f == b"again" else f)
                         for f in await redis.evalsha(LEAN_CLAIM_SHA, 0, *args)]
            else:
                where = [f"{u}|{e.timestamp}" for u, e in zip(users, chunk, strict=True)]
                flags = await redis.evalsha(LEAN_DEDUPE_SHA, 2, f"{base}:ids", f"{base}:spos",
                                            *[e.id for e in chunk], *streams, *where)
            sets: dict[str, list[bytes | float]] = {}
            registries: dict[str, set[str]] = {}
            for e, u, flag in zip(chunk, users, flags, strict=True):
                if flag is None:  # a duplicate: nothing is stored or announced
                    continue
                t = keys.encode_part(e.type)
                ref = f"{t}|{flag.decode()}|".encode()
                member = keys.escape_id(e.id) + b"\0\0" + ref + codec.encode_event(e)
                short = keys.short_member(e.id, u)
                day = e.timestamp - e.timestamp % 86_400_000
                hour = e.timestamp - e.timestamp % keys.TYPE_SET_MS
                for key, m in ((f"{base}:u:{u}:{day}", member), (f"{base}:t:{t}:{hour}", short)):
                    sets.setdefault(key, []).extend((e.timestamp, m))
                registries.setdefault(f"{base}:ty:{hour}", set()).add(t)
            pipe = redis.pipeline(transaction=True)
            for key, flat in sets.items():
                pipe.execute_command("ZADD", key, *flat)
            for key, types in registries.items():
                pipe.zadd(key, dict.fromkeys(types, 0))
            pipe.xadd(f"{base}:tail", {"n": str(len(chunk)), "o": "0-0"}, maxlen=100_000, approximate=True)
            pipe.hset(f"{base}:offsets", "raw|0", str(i + len(chunk)))
            await pipe.execute()


async def _lean_probe(url: str, events: Sequence[Event]) -> None:
    from eventstrata.keys import ID_BUCKET_LOAD

    redis = Redis.from_url(url)
    codec = BodyCodec()
    tenants = len({e.tenant for e in events})
    buckets = max(1, -(-len(events) // (tenants * ID_BUCKET_LOAD)))
    try:
        for run in ("product", "prototype", "prototype, id buckets") * 2:
            await redis.flushall()
            await redis.script_load(LEAN_DEDUPE)
            await redis.script_load(LEAN_CLAIM)
            mem0 = (await redis.info("memory"))["used_memory"]
            cpu0 = await redis.info("cpu")
            t0 = time.perf_counter()
            if run == "product":
                await _write(redis, events)
            else:
                await _lean_write(redis, events, codec, buckets=buckets if "buckets" in run else 0)
            seconds = time.perf_counter() - t0
            cpu1 = await redis.info("cpu")
            mem1 = (await redis.info("memory"))["used_memory"]
            n = len(events)
            used_cpu = sum(cpu1[k] - cpu0[k] for k in ("used_cpu_sys", "used_cpu_user"))
            print(f"{run:22s}: {n / seconds:,.0f} events/s; Redis CPU {used_cpu / n * 1e6:.1f} µs/event; "
                  f"memory {(mem1 - mem0) / n:,.0f} B/event {await _families(redis, n)}", flush=True)
    finally:
        await redis.aclose()


def _use_script(path: Path) -> None:
    """Make the writer run ``path`` instead of the packaged ``write.lua`` (composed with the
    packaged ``layout.lua`` like it)."""
    from eventstrata.hotstore.scripts import compose

    script = compose(path.read_bytes())
    hot_writer.WRITE_SCRIPT = script
    hot_writer.WRITE_SCRIPT_SHA = hashlib.sha1(script, usedforsecurity=False).hexdigest()


async def _seed_api(url: str, events: Sequence[Event]) -> str:
    redis = Redis.from_url(url)
    try:
        await _write(redis, events)
        return await ApiKeys(redis, KeyLayout("es")).create(TENANT)
    finally:
        await redis.aclose()


def _api_probe(url: str, events: Sequence[Event], now_ms: int, kinds: Sequence[str], profile: str | None,
               work: Path, processes: int = 1) -> None:
    """The same API process, wrk script and py-spy summary as the benchmark's read scenario
    (``infra.Api``, ``scen_reads.lua_script``/``run_wrk``, ``profile.record``)."""
    key = asyncio.run(_seed_api(url, events))
    settings = Settings.from_env(env={}, redis_url=url, key_prefix="es", archive_uri=str(work / "archive"),
                                 state_dir=work / "state", log_level="WARNING", cursor_secret="p" * 32,
                                 api_processes=processes)
    users = sorted({e.user_id for e in events if e.user_id is not None})[:200]
    types = sorted({e.type for e in events})
    since = now_ms - HOUR_MS
    paths = {
        "user": [f"/v1/events?{urlencode({'user_id': u, 'limit': 50})}" for u in users],
        "type": [f"/v1/events?{urlencode({'type': t, 'since': since, 'limit': 50})}" for t in types],
        "count": [f"/v1/events/count?{urlencode({'user_id': u})}" for u in users],
        "byid": [f"/v1/events/{quote(e.id, safe='')}" for e in events[:500]],
        "tenant": [f"/v1/events?{urlencode({'since': since, 'limit': 50})}"],
        "tenantcount": [f"/v1/events/count?{urlencode({'since': now_ms - 6 * DAY_MS})}"],
    }
    scripts: dict[str, Path] = {}
    for kind, kind_paths in paths.items():
        scripts[kind] = work / f"wrk-{kind}.lua"
        scripts[kind].write_text(lua_script([(path, TENANT) for path in kind_paths], {TENANT: key}))
    api = Api.start(settings, work)
    redis = SyncRedis.from_url(url)
    redis_pid = int(redis.info("server")["process_id"])
    try:
        for kind in kinds:
            saturated = 0.0
            for conns in (8, 1):
                run_wrk(api.base, scripts[kind], concurrency=conns, seconds=3)  # warm-up
                servers = api.server_pids()
                cpu0 = process_cpu_seconds(redis_pid), sum(map(process_cpu_seconds, servers))
                calls0 = _script_calls(redis)
                r = run_wrk(api.base, scripts[kind], concurrency=conns, seconds=8)
                cpu1 = process_cpu_seconds(redis_pid), sum(map(process_cpu_seconds, servers))
                n = max(1, r.requests)
                saturated = saturated or r.rps
                print(f"{kind}, {conns} connection(s): {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, "
                      f"p99 {r.p99_ms:.2f} ms ({r.bad_status} non-2xx, {r.socket_errors} socket errors); "
                      f"per request: Redis CPU {(cpu1[0] - cpu0[0]) / n * 1e6:,.0f} µs, API CPU "
                      f"{(cpu1[1] - cpu0[1]) / n * 1e6:,.0f} µs, {(_script_calls(redis) - calls0) / n:.2f} "
                      "script calls", flush=True)
            if openloop.vegeta_path() is not None:
                targets = work / f"vegeta-{kind}.txt"
                targets.write_text(openloop.targets_text(api.base, [(p, TENANT) for p in paths[kind]],
                                                         {TENANT: key}))
                for frac in openloop.FRACTIONS:
                    o = openloop.run(targets, rate=round(saturated * frac), seconds=8, workdir=work)
                    print(f"{kind}, open loop at {frac:.0%} of that ({o.rate:,.0f} req/s offered): "
                          f"p50 {o.p50_ms:.2f} ms, p90 {o.p90_ms:.2f} ms, p99 {o.p99_ms:.2f} ms, "
                          f"max {o.max_ms:.1f} ms, {o.success:.1%} 2xx", flush=True)
        if profile is not None:
            wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d12s", "-s", str(scripts[profile]), api.base],
                                   stdout=subprocess.DEVNULL)
            time.sleep(1)
            print(record(api.server_pids()[0], 8, work / f"pyspy-{profile}.txt"))
            wrk.wait()
    finally:
        redis.close()
        api.stop()


def _script_calls(redis: SyncRedis) -> int:
    """How many ``EVALSHA``/``EVAL`` calls Redis has served (``INFO commandstats``)."""
    stats: dict[str, dict[str, int]] = redis.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


def _worker_probe(n: int, now_ms: int) -> None:
    import gc
    import statistics

    import hiredis

    from eventstrata_bench.dataset import DatasetSpec, generate, load_sample_fn

    spec = DatasetSpec(events=n, tenants=(TENANT,), tenant_weights=(1.0,), span_days=600_000 / 86_400_000)
    records = [(g.value, g.headers) for g in generate(spec, now_ms, load_sample_fn())]
    codec = BodyCodec()
    events = [e for e in (normalize(v, h, now_ms=now_ms) for v, h in records) if isinstance(e, Event)]
    objs = [orjson.loads(v) for v, _ in records]
    payloads = [lean_payload(e) for e in events]
    encoded = [hot_writer.encode_event(e, HOUR_MS, codec) for e in events]

    def pack() -> None:
        args: list[bytes] = [a for pair in encoded for a in pair]
        for i in range(0, len(args), 1000):
            command: tuple[bytes, ...] = (b"EVALSHA", b"sha", b"0", *args[i:i + 1000])
            hiredis.pack_command(command)  # type: ignore[arg-type]  # stub types one element

    steps: dict[str, Callable[[], object]] = {
        "floor: orjson.loads of the record": lambda: [orjson.loads(v) for v, _ in records],
        "floor: orjson.dumps of the parsed object": lambda: [orjson.dumps(o) for o in objs],
        "floor: zstd compression of the stored payload": lambda: [codec.encode(p) for p in payloads],
        "floor: hiredis.pack_command of the arguments": pack,
        "product: normalize": lambda: [normalize(v, h, now_ms=now_ms) for v, h in records],
        "product: encode (script arguments)": lambda: [hot_writer.encode_event(e, HOUR_MS, codec)
                                                       for e in events],
    }
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        for label, step in steps.items():
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                step()
                runs.append(time.perf_counter() - t0)
            print(f"{label:48s} {statistics.median(runs) / len(records) * 1e6:6.2f} µs/event", flush=True)
    finally:
        gc.enable()
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eventstrata_bench.probes",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("probe", choices=("writer", "api", "cluster", "worker", "lean"))
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--live", action="store_true", help="event times in the last 10 minutes")
    p.add_argument("--script", type=Path, help="writer: a modified write.lua to run instead")
    p.add_argument("--shards", type=int, default=1,
                   help="writer: EVENTSTRATA_HOT_SHARDS (on the one Redis); cluster: the sharded runs'")
    p.add_argument("--dataset", action="store_true",
                   help="writer: one tenant with the benchmark's users (Zipf 1.0 over 20,000) "
                        "instead of the sample's; over 7 days, or the last 10 minutes with --live")
    p.add_argument("--zset-entries", type=int,
                   help="writer: CONFIG SET zset-max-listpack-entries (what a layout with every "
                        "set a listpack would hold: a memory floor, not a configuration)")
    p.add_argument("--kinds", nargs="*", default=["user", "type", "count", "byid"],
                   choices=("user", "type", "count", "byid", "tenant", "tenantcount"))
    p.add_argument("--profile", choices=("user", "type", "count", "byid", "tenant", "tenantcount"))
    p.add_argument("--api-processes", type=int, default=1, help="api: EVENTSTRATA_API_PROCESSES")
    args = p.parse_args(argv)
    now_ms = int(time.time() * 1000)
    if args.probe == "worker":
        _worker_probe(args.events, now_ms)
        return
    work = Path(tempfile.mkdtemp(prefix="es-probe-"))
    print(f"generating {args.events:,} sample events …", flush=True)
    if args.probe == "cluster":
        _cluster(dataset_events(args.events, now_ms), args.shards, work)
        print(f"work directory: {work}")
        return
    tenants = (TENANT,) if args.probe == "api" else ("t0", "t1", "t2", "t3")
    if args.dataset:
        events = (dataset_events(args.events, now_ms) if args.live
                  else dataset_events(args.events, now_ms, span_days=7.0))
    else:
        events = sample_events(args.events, now_ms, live=args.live, tenants=tenants)
    server = RedisServer(work / "redis")
    server.start()
    try:
        server.wait_ready()
        if args.probe == "lean":
            asyncio.run(_lean_probe(server.url, events))
        elif args.probe == "writer":
            if args.script is not None:
                _use_script(args.script)
            asyncio.run(_writer_probe(server.url, events, args.shards, args.zset_entries))
        else:
            _api_probe(server.url, events, now_ms, args.kinds, args.profile, work, args.api_processes)
    finally:
        server.stop()
    print(f"work directory: {work}")


if __name__ == "__main__":
    main()
