"""Scenario "remote": producers and readers that reach eventstrata over HTTP only.

- ``http_ingest``: ``POST /v1/ingest`` with batches of ``batch`` events (NDJSON, the five
  formats in their ``{"format", "event"}`` envelopes) from ``concurrency`` connections for
  ``seconds``; a request counts once the API answered 200 (after Kafka acknowledged every
  event). Events/s acknowledged, and the request latency.
- ``page_walk``: the same cursor walk through ``GET /v1/events`` with plain httpx (parse the
  JSON, follow ``next_cursor``) and with ``eventstrata.client.Client.events``, alternated;
  the client's time per page over the raw one is its overhead.

Both block; they raise ``BenchError`` when the API refuses.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx
import orjson

from eventstrata_bench.dataset import GenEvent
from eventstrata_bench.infra import BenchError
from eventstrata_bench.stats import median


def ingest_bodies(events: Iterable[GenEvent], batch: int) -> list[bytes]:
    """NDJSON request bodies of ``batch`` events each (the last partial batch dropped). Pure."""
    lines = [orjson.dumps({"format": e.fmt, "event": orjson.loads(e.value)}) for e in events]
    return [b"\n".join(lines[i : i + batch]) for i in range(0, len(lines) - batch + 1, batch)]


@dataclass(frozen=True, slots=True)
class IngestResult:
    events: int
    requests: int
    seconds: float
    latency_ms: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def http_ingest(base: str, key: str, bodies: Sequence[bytes], batch: int, *, seconds: float,
                concurrency: int) -> IngestResult:
    """Post ``bodies`` round-robin for ``seconds`` from ``concurrency`` connections."""
    if not bodies:
        raise BenchError("no request bodies to post")

    async def run() -> IngestResult:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
        limits = httpx.Limits(max_connections=concurrency)
        lat: list[float] = []
        counts = [0, 0]
        cycle = itertools.cycle(bodies)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as c:
            t0 = time.perf_counter()
            end = t0 + seconds

            async def one() -> None:
                while time.perf_counter() < end:
                    started = time.perf_counter()
                    r = await c.post("/v1/ingest", content=next(cycle))
                    if r.status_code != 200:
                        raise BenchError(f"POST /v1/ingest: HTTP {r.status_code}: {r.text[:300]}")
                    accepted = len(orjson.loads(r.content)["accepted"])
                    if accepted != batch:
                        raise BenchError(f"POST /v1/ingest accepted {accepted} of {batch}: {r.text[:300]}")
                    lat.append((time.perf_counter() - started) * 1000)
                    counts[0] += accepted
                    counts[1] += 1

            await asyncio.gather(*(one() for _ in range(concurrency)))
            return IngestResult(counts[0], counts[1], time.perf_counter() - t0, tuple(lat))

    return asyncio.run(run())


@dataclass(frozen=True, slots=True)
class WalkResult:
    pages: int
    raw_ms_per_page: float
    client_ms_per_page: float

    @property
    def overhead(self) -> float:
        """Client time per page / raw time per page (1.0 = no overhead)."""
        return self.client_ms_per_page / self.raw_ms_per_page


def page_walk(base: str, key: str, params: dict[str, str], *, pages: int, repeats: int) -> WalkResult:
    """Walk ``pages`` pages of ``GET /v1/events?params`` raw and through the client, alternated
    ``repeats`` times each after one warm-up walk of each; medians of the per-page times."""
    from eventstrata.client import Client

    limit = int(params["limit"])

    def raw(http: httpx.Client) -> float:
        t0 = time.perf_counter()
        cursor: str | None = None
        for _ in range(pages):
            r = http.get("/v1/events", params={**params, **({"cursor": cursor} if cursor else {})})
            if r.status_code != 200:
                raise BenchError(f"GET /v1/events: HTTP {r.status_code}: {r.text[:300]}")
            cursor = orjson.loads(r.content).get("next_cursor")
            if cursor is None:
                raise BenchError(f"the walk ended before {pages} pages")
        return (time.perf_counter() - t0) * 1000 / pages

    def client(es: Client) -> float:
        t0 = time.perf_counter()
        n = sum(1 for _ in itertools.islice(es.events(**params), pages * limit))
        if n != pages * limit:
            raise BenchError(f"the client's walk ended after {n} events")
        return (time.perf_counter() - t0) * 1000 / pages

    raws: list[float] = []
    clients: list[float] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http, \
            Client(base, key) as es:
        raw(http)
        client(es)
        for _ in range(repeats):
            raws.append(raw(http))
            clients.append(client(es))
    return WalkResult(pages, median(raws), median(clients))
