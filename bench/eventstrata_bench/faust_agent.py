"""Baseline: a plain faust-streaming agent doing the ingest worker's job (Kafka → Redis).

Run as its own process by the harness: ``python -m eventstrata_bench.faust_agent worker -l
warning`` with ``BENCH_FAUST_*`` variables. It reads batches (``take_events``), parses each
message with the product's own normalizer (``eventstrata.formats.normalize``, the same code the
ingest worker runs), and writes with one redis-py pipeline per batch: the canonical body (HSET
per hour window) plus three sorted sets (tenant, user, type). That is less Redis work than
the product does (no dedupe, no positions, no user+type index, no tail stream), so the
comparison flatters faust.
"""

from __future__ import annotations

import os
import time
from typing import Any

import faust
import redis.asyncio as aioredis

from eventstrata.formats.normalize import normalize
from eventstrata.keys import encode_part
from eventstrata.model import Event


def build_app() -> faust.App:
    """The faust app configured from ``BENCH_FAUST_*`` environment variables."""
    app = faust.App(
        os.environ["BENCH_FAUST_APP"],
        broker=f"kafka://{os.environ['BENCH_FAUST_BROKER']}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        datadir=os.environ["BENCH_FAUST_DATADIR"],
        topic_partitions=int(os.environ.get("BENCH_FAUST_PARTITIONS", "4")),
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(os.environ["BENCH_FAUST_TOPIC"], value_serializer="raw", key_serializer="raw")
    prefix = os.environ["BENCH_FAUST_PREFIX"]
    r = aioredis.Redis.from_url(os.environ["BENCH_FAUST_REDIS"], socket_timeout=None)

    @app.agent(topic)
    async def store(stream: Any) -> None:
        async for batch in stream.take_events(1000, within=0.05):
            pipe = r.pipeline(transaction=False)
            now_ms = int(time.time() * 1000)
            for ev in batch:
                e = normalize(ev.value or b"", list(ev.message.headers or ()), now_ms=now_ms)
                if not isinstance(e, Event):
                    continue
                window = e.timestamp - e.timestamp % 3_600_000
                base = f"{prefix}:{{{e.tenant}}}"
                member = f"{e.timestamp:013d}|{e.id}"
                pipe.hset(f"{base}:b:{window}", e.id, e.to_json())
                pipe.zadd(f"{base}:z:{window}", {member: e.timestamp})
                pipe.zadd(f"{base}:zu:{window}:{encode_part(e.user_id or '')}", {member: e.timestamp})
                pipe.zadd(f"{base}:zt:{window}:{encode_part(e.type)}", {member: e.timestamp})
            pipe.incrby(f"{prefix}:faust:count", len(batch))
            await pipe.execute()

    return app


app = build_app() if "BENCH_FAUST_APP" in os.environ else None

if __name__ == "__main__":
    if app is None:
        raise SystemExit("BENCH_FAUST_* variables are not set")
    app.main()
