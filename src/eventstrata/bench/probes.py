"""Development probes: small, fast measurements of one component, for A/B comparisons while
changing it (the full benchmark takes ~18 minutes; a probe takes one or two).

- ``writer``: the hot-tier writer alone against a fresh redis-server (the product's own
  configuration, ``stack.redis``): events/s of the write calls, Redis CPU per event by command
  from ``INFO commandstats`` (``evalsha`` includes the commands the script calls), and memory
  per event by key family (``MEMORY USAGE``). ``--script FILE`` runs a modified ``write.lua``
  (how the per-call costs in docs/ARCHITECTURE.md were found: remove one call, compare).
- ``api``: one ``eventstrata serve`` process over a fresh redis-server holding ``--events``
  sample events written by the real writer; wrk at 8 connections and at 1 on user pages,
  type pages (last hour), counts and gets by id; ``--profile KIND`` samples the API with
  py-spy meanwhile (raw collapsed stacks written to a file).

Timestamps: ``--live`` puts the events in the last 10 minutes, else they are spread over six
days (a backfill). Not a benchmark of record: numbers vary by ±10 % from run to run on the
2-core machine, so compare A and B in alternation, each at least twice.

Run: ``python -m eventstrata.bench.probes writer --events 100000 [--live] [--script F]`` or
``python -m eventstrata.bench.probes api [--events 60000] [--kinds user count] [--profile user]``.
Blocking; needs redis-server (and wrk, py-spy for ``api``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from redis.asyncio import Redis

from eventstrata.auth import ApiKeys
from eventstrata.formats.normalize import normalize
from eventstrata.formats.samples import encode_headers, sample_event
from eventstrata.hotstore import writer as hot_writer
from eventstrata.keys import KeyLayout
from eventstrata.model import FORMATS, Event
from eventstrata.stack.ports import free_port
from eventstrata.stack.redis import RedisServer

HOUR_MS = 3_600_000
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


async def _write(redis: Redis, events: Sequence[Event], *, batch: int = 2000) -> float:
    w = hot_writer.RedisHotWriter(redis, KeyLayout("es"), window_ms=HOUR_MS, tail_maxlen=100_000)
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        await w.write(events[i:i + batch])
    return time.perf_counter() - t0


async def _writer_probe(url: str, events: Sequence[Event]) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.config_resetstat()
        seconds = await _write(redis, events)
        n = len(events)
        stats = await redis.info("commandstats")
        per = {k.removeprefix("cmdstat_"): v["usec"] / n for k, v in stats.items() if v["usec"] / n >= 0.1}
        print(f"write calls: {n / seconds:,.0f} events/s (encoding included)")
        ranked = sorted(per.items(), key=lambda x: -x[1])
        print("Redis µs/event by command:", {k: round(v, 1) for k, v in ranked})
        families: dict[str, int] = {}
        async for key in redis.scan_iter(match="es:{*", count=1000):
            family = key.decode().split(":")[2]
            families[family] = families.get(family, 0) + int(await redis.memory_usage(key, samples=0) or 0)
        used = (await redis.info("memory"))["used_memory"]
        print(f"memory: {used / n:,.0f} B/event used_memory;",
              {k: round(v / n) for k, v in sorted(families.items(), key=lambda x: -x[1])})
    finally:
        await redis.aclose()


def _use_script(path: Path) -> None:
    """Make the writer run ``path`` instead of the packaged ``write.lua``."""
    script = path.read_bytes()
    hot_writer.WRITE_SCRIPT = script
    hot_writer.WRITE_SCRIPT_SHA = hashlib.sha1(script, usedforsecurity=False).hexdigest()


async def _seed_api(url: str, events: Sequence[Event]) -> str:
    redis = Redis.from_url(url)
    try:
        await _write(redis, events)
        return await ApiKeys(redis, KeyLayout("es")).create(TENANT)
    finally:
        await redis.aclose()


def _write_lua(paths: Sequence[str], key: str, lua: Path) -> None:
    reqs = ",".join(json.dumps(p) for p in paths)
    lua.write_text(
        f"local paths = {{{reqs}}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n"
        f"  return wrk.format('GET', paths[(i % #paths) + 1], {{Authorization = 'Bearer {key}'}})\nend\n"
    )


def _wrk(base: str, paths: Sequence[str], key: str, *, connections: int, seconds: int, lua: Path) -> str:
    _write_lua(paths, key, lua)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), base]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout


def _summary(out: str) -> str:
    lines = out.splitlines()

    def pick(prefix: str) -> str:
        return next((ln.split()[-1] for ln in lines if ln.strip().startswith(prefix)), "?")

    errors = [ln.strip() for ln in lines if "Non-2xx" in ln or "Socket errors" in ln]
    return f"{pick('Requests/sec')} req/s, p50 {pick('50%')}, p99 {pick('99%')} {' '.join(errors)}"


def _api_probe(url: str, events: Sequence[Event], now_ms: int, kinds: Sequence[str], profile: str | None,
               work: Path) -> None:
    key = asyncio.run(_seed_api(url, events))
    port = free_port()
    env = {"EVENTSTRATA_REDIS_URL": url, "EVENTSTRATA_API_PORT": str(port), "EVENTSTRATA_KEY_PREFIX": "es",
           "EVENTSTRATA_ARCHIVE_URI": str(work / "archive"), "EVENTSTRATA_STATE_DIR": str(work / "state"),
           "EVENTSTRATA_LOG_LEVEL": "WARNING", "EVENTSTRATA_CURSOR_SECRET": "p" * 32}
    api = subprocess.Popen([str(Path(sys.executable).parent / "eventstrata"), "serve"],
                           env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                           stderr=(work / "api.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        users = sorted({e.user_id for e in events if e.user_id is not None})[:200]
        paths = {
            "user": [f"/v1/events?user_id={u}&limit=50" for u in users],
            "type": [f"/v1/events?type={t}&since={now_ms - HOUR_MS}&limit=50"
                     for t in sorted({e.type for e in events})],
            "count": [f"/v1/events/count?user_id={u}" for u in users],
            "byid": [f"/v1/events/{e.id}" for e in events[:500]],
        }
        lua = work / "probe.lua"
        for kind in kinds:
            for conns in (8, 1):
                _wrk(base, paths[kind], key, connections=conns, seconds=3, lua=lua)  # warm-up
                print(f"{kind}, {conns} connection(s): "
                      f"{_summary(_wrk(base, paths[kind], key, connections=conns, seconds=8, lua=lua))}",
                      flush=True)
        if profile is not None:
            out = work / f"pyspy-{profile}.txt"
            _write_lua(paths[profile], key, lua)
            wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d12s", "-s", str(lua), base],
                                   stdout=subprocess.DEVNULL)
            time.sleep(1)
            pyspy = str(Path(sys.executable).parent / "py-spy")
            subprocess.run([pyspy, "record", "-p", str(api.pid), "-d", "8", "-r", "200", "-f", "raw",
                            "-o", str(out)], capture_output=True, check=False)
            wrk.wait()
            print(f"py-spy (collapsed stacks) of '{profile}': {out}")
    finally:
        api.terminate()
        api.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eventstrata.bench.probes",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("probe", choices=("writer", "api"))
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--live", action="store_true", help="event times in the last 10 minutes")
    p.add_argument("--script", type=Path, help="writer: a modified write.lua to run instead")
    p.add_argument("--kinds", nargs="*", default=["user", "type", "count", "byid"],
                   choices=("user", "type", "count", "byid"))
    p.add_argument("--profile", choices=("user", "type", "count", "byid"))
    args = p.parse_args(argv)
    now_ms = int(time.time() * 1000)
    work = Path(tempfile.mkdtemp(prefix="es-probe-"))
    print(f"generating {args.events:,} sample events …", flush=True)
    tenants = (TENANT,) if args.probe == "api" else ("t0", "t1", "t2", "t3")
    events = sample_events(args.events, now_ms, live=args.live, tenants=tenants)
    server = RedisServer(work / "redis")
    server.start()
    try:
        server.wait_ready()
        if args.probe == "writer":
            if args.script is not None:
                _use_script(args.script)
            asyncio.run(_writer_probe(server.url, events))
        else:
            _api_probe(server.url, events, now_ms, args.kinds, args.profile, work)
    finally:
        server.stop()
    print(f"work directory: {work}")


if __name__ == "__main__":
    main()
