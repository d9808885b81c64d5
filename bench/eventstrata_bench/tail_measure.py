"""Measure store → live-tail subscriber latency (a script, not a test; ``make bench`` has the
Kafka-to-subscriber scenario in ``eventstrata_bench.scen_live``).

    EVENTSTRATA_REDIS_URL=redis://127.0.0.1:16379/0 python -m eventstrata_bench.tail_measure \
        --subscribers 1 100 --rate 5000 --seconds 10

Starts one API process (``eventstrata serve`` in a subprocess, its own key prefix), writes
events through the real hot-tier writer (the ingest Lua script) at ``--rate`` events/s of
background users, plus ``--probes`` probe events/s round-robin over ``N`` probe users; each of
the ``N`` SSE subscribers filters on one probe user (``/v1/tail?user_id=probe-k``). Latency =
time the probe's id is read on its subscriber's socket − time just before the write call
(both in this process, monotonic clock). Prints p50/p99/max per subscriber count as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid

import orjson

from eventstrata.auth import ApiKeys
from eventstrata.config import Settings
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import KeyLayout
from eventstrata.model import Event
from eventstrata.redisconn import connect_redis

_PROBE = re.compile(rb"pr[0-9a-f]{12}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _subscriber(port: int, path: str, key: str, arrivals: dict[bytes, float],
                      opened: list[int], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"subscribe failed: {status!r}")
    opened[0] += 1
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            now = time.perf_counter()
            for m in _PROBE.finditer(line):
                arrivals.setdefault(m.group(0), now)
    finally:
        writer.close()


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def run_one(settings: Settings, port: int, key: str, tenant: str, *, subscribers: int, rate: int,
                  probes: int, seconds: float) -> dict[str, object]:
    redis = connect_redis(settings)
    writer = RedisHotWriter(redis, settings.layout(), window_ms=settings.window_ms,
                            tail_maxlen=settings.tail_maxlen)
    arrivals: dict[bytes, float] = {}
    sent: dict[bytes, float] = {}
    stop = asyncio.Event()
    opened = [0]
    subs = [asyncio.create_task(_subscriber(port, f"/v1/tail?user_id=probe-{k}", key, arrivals, opened, stop))
            for k in range(subscribers)]
    while opened[0] < subscribers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    now_ms = int(time.time() * 1000)
    tick = 0.01
    t0 = time.perf_counter()
    n_bg = n_probe = 0
    while time.perf_counter() - t0 < seconds:
        elapsed = time.perf_counter() - t0
        batch: list[Event] = []
        while n_bg < int(elapsed * rate):
            batch.append(Event(id=f"bg{uuid.uuid4().hex}", tenant=tenant, type="view", timestamp=now_ms,
                               received_at=now_ms, format="native", user_id=f"user{n_bg % 1000}",
                               data={"pad": "x" * 400}))
            n_bg += 1
        probe_ids: list[bytes] = []
        while n_probe < int(elapsed * probes):
            pid = f"pr{uuid.uuid4().hex[:12]}"
            batch.append(Event(id=pid, tenant=tenant, type="probe", timestamp=now_ms, received_at=now_ms,
                               format="native", user_id=f"probe-{n_probe % subscribers}"))
            probe_ids.append(pid.encode())
            n_probe += 1
        if batch:
            t_send = time.perf_counter()
            for pid_b in probe_ids:
                sent[pid_b] = t_send
            await writer.write(batch)
        await asyncio.sleep(tick)
    await asyncio.sleep(1.0)
    stop.set()
    for t in subs:
        t.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    await redis.aclose()
    lat = [(arrivals[p] - t) * 1000 for p, t in sent.items() if p in arrivals]
    return {"subscribers": subscribers, "background_rate": rate, "probes": len(sent),
            "lost": len(sent) - len(lat), "p50_ms": round(_pct(lat, 0.5), 2),
            "p99_ms": round(_pct(lat, 0.99), 2), "max_ms": round(max(lat), 2) if lat else None}


async def main_async(args: argparse.Namespace) -> None:
    prefix = "m" + uuid.uuid4().hex[:8]
    port = _free_port()
    settings = Settings.from_env(key_prefix=prefix, api_port=port)
    env = {**os.environ, **settings.to_env()}
    tenant = "measure"
    redis = connect_redis(settings)
    key = await ApiKeys(redis, KeyLayout(prefix)).create(tenant)
    await redis.aclose()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "eventstrata", "serve", env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            await asyncio.sleep(0.05)
        for n in args.subscribers:
            res = await run_one(settings, port, key, tenant, subscribers=n, rate=args.rate,
                                probes=args.probes, seconds=args.seconds)
            print(orjson.dumps(res).decode(), flush=True)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--rate", type=int, default=5000, help="background events/s (other users)")
    ap.add_argument("--probes", type=int, default=100, help="probe events/s")
    ap.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
