"""Scenarios 2 (freshness: produce → visible in /v1/events) and 5 (tail: produce → SSE
subscriber), both under a steady background load. Async; needs a running ingest worker and API.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from eventstrata_bench.dataset import GenEvent, load_sample_fn, native_event
from eventstrata_bench.infra import BenchError


def probe_message(
    tenant: str, user: str, ts_ms: int, eid: str, rng: random.Random
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A native-format event with a chosen id (the probe), ~600 bytes."""
    sample = load_sample_fn()
    if sample is not None:
        obj, _ = sample(rng, "native", tenant, user, ts_ms)
    else:
        obj = native_event(rng, tenant, user, ts_ms)
    obj["id"] = eid
    headers = [("es-format", b"native"), ("es-tenant", tenant.encode())]
    return orjson.dumps(obj), headers


async def steady_load(
    producer: Any, topic: str, events: Sequence[GenEvent], *, rate: int, stop: asyncio.Event, sent: list[int]
) -> None:
    """Send ``events`` (cycling) at ``rate`` per second until ``stop`` is set."""
    t0 = time.monotonic()
    i = 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * rate)
        while i < due:
            e = events[i % len(events)]
            await producer.send(topic, e.value, key=e.key, headers=list(e.headers))
            i += 1
        sent[0] = i
        await asyncio.sleep(0.005)


@dataclass(frozen=True, slots=True)
class LiveResult:
    latencies_ms: list[float]
    lost: int
    background_rate: float


async def _producer(bootstrap: str, linger_ms: int) -> Any:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, acks=1)
    await p.start()
    return p


async def wait_worker(bootstrap: str, topic: str, api: str, key: str, tenant: str, timeout: float) -> float:
    """Produce one probe and poll until the API returns it: the worker has joined its group and
    is consuming. Returns seconds waited; raises ``BenchError`` after ``timeout``."""
    import httpx

    probe = await _producer(bootstrap, 0)
    eid = f"wk{uuid.uuid4().hex[:16]}"
    user = f"probe-{eid}"
    value, headers = probe_message(tenant, user, int(time.time() * 1000), eid, random.Random(1))
    t0 = time.monotonic()
    try:
        await probe.send_and_wait(topic, value, key=f"{tenant}:{user}".encode(), headers=headers)
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
        ) as c:
            while time.monotonic() - t0 < timeout:
                r = await c.get("/v1/events", params={"user_id": user, "limit": 1})
                if r.status_code == 200 and (r.json().get("events") or [{}])[0].get("id") == eid:
                    return time.monotonic() - t0
                await asyncio.sleep(0.1)
    finally:
        await probe.stop()
    raise BenchError(f"live ingest worker did not store a probe within {timeout:.0f} s")


async def freshness(
    bootstrap: str,
    topic: str,
    api: str,
    key: str,
    tenant: str,
    *,
    background: Sequence[GenEvent],
    rate: int,
    seconds: float,
    warmup: float,
) -> LiveResult:
    """One probe at a time: produce it, poll ``GET /v1/events?user_id=<probe user>&limit=1``
    every 2 ms until it is there. Latency = first successful poll − produce call."""
    import httpx

    bg = await _producer(bootstrap, 5)
    probe = await _producer(bootstrap, 0)
    stop = asyncio.Event()
    sent = [0]
    rng = random.Random(5)
    lat: list[float] = []
    lost = 0
    load = asyncio.create_task(steady_load(bg, topic, background, rate=rate, stop=stop, sent=sent))
    t_load = time.monotonic()
    try:
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
        ) as client:
            await asyncio.sleep(warmup)
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                eid = f"fr{uuid.uuid4().hex[:16]}"
                user = f"probe-{eid}"
                value, headers = probe_message(tenant, user, int(time.time() * 1000), eid, rng)
                t0 = time.perf_counter()
                await probe.send(topic, value, key=f"{tenant}:{user}".encode(), headers=headers)
                deadline = t0 + 10.0
                seen = False
                while time.perf_counter() < deadline:
                    r = await client.get("/v1/events", params={"user_id": user, "limit": 1})
                    if r.status_code != 200:
                        raise BenchError(f"/v1/events answered {r.status_code}: {r.text[:300]}")
                    evs = r.json().get("events") or []
                    if evs and evs[0].get("id") == eid:
                        lat.append((time.perf_counter() - t0) * 1000.0)
                        seen = True
                        break
                    await asyncio.sleep(0.002)
                if not seen:
                    lost += 1
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await load
        elapsed = time.monotonic() - t_load
        await bg.stop()
        await probe.stop()
    return LiveResult(lat, lost, sent[0] / elapsed if elapsed > 0 else 0.0)


_ID_RE = re.compile(rb"tp[0-9a-f]{16}")


async def _subscriber(
    host: str,
    port: int,
    path: str,
    key: str,
    *,
    ready: asyncio.Event,
    counter: list[int],
    total: int,
    arrivals: dict[bytes, float],
    errors: list[str],
    stop: asyncio.Event,
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    except OSError as exc:
        errors.append(f"connect: {exc}")
        counter[0] += 1
        if counter[0] >= total:
            ready.set()
        return
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        counter[0] += 1
        if counter[0] >= total:
            ready.set()
        if b" 200 " not in status:
            rest = b""
            with contextlib.suppress(TimeoutError, OSError):
                while len(rest) < 2000:
                    chunk = await asyncio.wait_for(reader.read(2000), 1)
                    if not chunk:
                        break
                    rest += chunk
            body = rest.split(b"\r\n\r\n", 1)[-1]
            errors.append(f"{status.decode(errors='replace').strip()} {body[:300]!r}")
            return
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                errors.append("stream closed by server")
                return
            now = time.perf_counter()
            for m in _ID_RE.finditer(line):
                arrivals.setdefault(m.group(0), now)
    except (TimeoutError, OSError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def tail_latency(
    bootstrap: str,
    topic: str,
    api: str,
    key: str,
    tenant: str,
    *,
    background: Sequence[GenEvent],
    rate: int,
    subscribers: int,
    seconds: float,
    probes_per_second: int = 100,
    warmup: float = 3.0,
) -> tuple[LiveResult, list[str]]:
    """``subscribers`` SSE connections to ``/v1/tail?user_id=probe-<k>`` (one probe user each)
    while ``rate`` background events/s flow; probes go round-robin to the probe users.
    Latency = time the probe's id appears on its subscriber's stream − produce call, measured
    in the steady state: probing starts ``warmup`` seconds after the background load (the first
    second after 1,000 subscribers connected and the load started measured p99 ~150 ms, every
    later second ~20-35 ms; 2026-12-01 full run)."""
    parts = urlsplit(api)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    run = uuid.uuid4().hex[:6]
    users = [f"probe-{run}-{k}" for k in range(subscribers)]
    ready = asyncio.Event()
    stop = asyncio.Event()
    counter = [0]
    arrivals: dict[bytes, float] = {}
    errors: list[str] = []
    subs = [
        asyncio.create_task(
            _subscriber(
                host,
                port,
                "/v1/tail?" + urlencode({"user_id": u}),
                key,
                ready=ready,
                counter=counter,
                total=subscribers,
                arrivals=arrivals,
                errors=errors,
                stop=stop,
            )
        )
        for u in users
    ]
    await asyncio.wait_for(ready.wait(), 120)
    if errors:
        stop.set()
        for s in subs:
            s.cancel()
        raise BenchError(f"{len(errors)} subscribers failed, first: {errors[0]}")
    await asyncio.sleep(1.0)
    bg = await _producer(bootstrap, 5)
    probe = await _producer(bootstrap, 0)
    load_stop = asyncio.Event()
    sent_bg = [0]
    load = asyncio.create_task(steady_load(bg, topic, background, rate=rate, stop=load_stop, sent=sent_bg))
    t_load = time.monotonic()
    sent: dict[bytes, float] = {}
    rng = random.Random(9)
    try:
        await asyncio.sleep(warmup)
        t_end = time.monotonic() + seconds
        k = 0
        interval = 1.0 / probes_per_second
        next_t = time.monotonic()
        while time.monotonic() < t_end:
            eid = f"tp{uuid.uuid4().hex[:16]}"
            user = users[k % subscribers]
            k += 1
            value, headers = probe_message(tenant, user, int(time.time() * 1000), eid, rng)
            sent[eid.encode()] = time.perf_counter()
            await probe.send(topic, value, key=f"{tenant}:{user}".encode(), headers=headers)
            next_t += interval
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        drain_end = time.monotonic() + 10.0
        while time.monotonic() < drain_end and any(i not in arrivals for i in sent):
            await asyncio.sleep(0.1)
    finally:
        load_stop.set()
        with contextlib.suppress(Exception):
            await load
        elapsed = time.monotonic() - t_load
        stop.set()
        for s in subs:
            s.cancel()
        await asyncio.gather(*subs, return_exceptions=True)
        await bg.stop()
        await probe.stop()
    lat = [(arrivals[i] - t0) * 1000.0 for i, t0 in sent.items() if i in arrivals]
    return LiveResult(lat, len(sent) - len(lat), sent_bg[0] / elapsed if elapsed else 0.0), errors
