"""``POST /v1/ingest`` against a real API process (uvicorn in this process), a real Kafka
broker, the real ingest worker and Redis: events of all five formats are stored once even when
the request is retried, bad events are rejected with their dead-letter codes while the good
ones are stored, scopes and tenants are enforced, and a Kafka that does not answer is a 503."""

from __future__ import annotations

import asyncio
import gzip
import random
import time
from typing import Any

import httpx
import orjson
import pytest
from api_support import closed_port, serving
from ingest_util import run_until
from typer.testing import CliRunner

from eventstrata.auth import ApiKeys
from eventstrata.cli import app
from eventstrata.config import Settings
from eventstrata.formats.samples import sample_event
from eventstrata.model import FORMATS
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration


async def _keys(settings: Settings) -> dict[str, str]:
    redis: Any = connect_redis(settings)
    try:
        keys = ApiKeys(redis, settings.layout())
        return {"both": await keys.create("acme"), "read": await keys.create("acme", scopes=("read",)),
                "ingest": await keys.create("acme", scopes=("ingest",))}
    finally:
        await redis.aclose()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_http_ingest_stores_every_accepted_event_once(settings_factory, tmp_path) -> None:
    s = settings_factory(topic_partitions=1)
    keys = await _keys(s)
    now = int(time.time() * 1000)
    rng = random.Random(7)
    events = [{"format": fmt, "event": sample_event(rng, fmt, "acme", f"u{i}", now - 60_000 - i)[0]}
              for i, fmt in enumerate(FORMATS)]
    bad = {"format": "native", "event": {"id": "no-type", "timestamp": now}}
    async with serving(s) as url, httpx.AsyncClient(base_url=url, timeout=60) as c:
        first = await c.post("/v1/ingest", content=orjson.dumps([*events, bad]), headers=_auth(keys["ingest"]))
        assert first.status_code == 200, first.text
        body = first.json()
        assert [a["index"] for a in body["accepted"]] == [0, 1, 2, 3, 4]
        assert [(r["index"], r["code"]) for r in body["rejected"]] == [(5, "missing_field")]
        retried = await c.post("/v1/ingest", content=orjson.dumps([*events, bad]), headers=_auth(keys["both"]))
        assert retried.json() == body  # the same ids: the worker stores them once
        line = orjson.dumps({"id": "gz-1", "type": "signup", "user_id": "u9", "timestamp": now - 1000})
        gz = await c.post("/v1/ingest?format=native", content=gzip.compress(line + b"\n"),
                          headers={**_auth(keys["ingest"]), "Content-Encoding": "gzip",
                                   "Content-Type": "application/x-ndjson"})
        assert gz.json() == {"accepted": [{"index": 0, "id": "gz-1"}], "rejected": []}

        denied = await c.post("/v1/ingest", content=orjson.dumps(events), headers=_auth(keys["read"]))
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        blind = await c.get("/v1/events", headers=_auth(keys["ingest"]))
        assert blind.status_code == 403 and "ingest" in blind.json()["error"]["message"]
        other = {"format": "native", "event": {"tenant": "globex", "type": "t", "timestamp": now}}
        mismatch = await c.post("/v1/ingest", content=orjson.dumps([events[0], other]),
                                headers=_auth(keys["both"]))
        assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "tenant_mismatch"
        huge = await c.post("/v1/ingest", content=b"\n".join([line] * (s.ingest_max_events + 1)),
                            headers=_auth(keys["both"]))
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"

        lines = tmp_path / "events.jsonl"
        lines.write_bytes(b"\n".join([orjson.dumps({"id": f"cli-{i}", "type": "t", "user_id": "u1",
                                                    "timestamp": now - 500}) for i in range(2)] + [b"{oops"]))
        cli = await asyncio.to_thread(CliRunner().invoke, app, ["produce", str(lines), "--http", "--api", url,
                                                                "--key", keys["ingest"], "--format", "native",
                                                                "--json"])
        assert cli.exit_code == 1, cli.output  # one line was not JSON
        assert orjson.loads(cli.output.strip().splitlines()[-1]) == {"sent": 2, "rejected": 1, "api": url}

        want = {a["id"] for a in body["accepted"]} | {"gz-1", "cli-0", "cli-1"}
        # 5 + 5 (retry) + 1 + 2 records on the topic; the worker stores 8 events
        await run_until(s, lambda p: p.totals["consumed"] >= 13, timeout=120)
        page = await c.get("/v1/events", params={"limit": 100, "include_total": "true"},
                           headers=_auth(keys["read"]))
        assert page.status_code == 200, page.text
        got = [e["id"] for e in page.json()["events"]]
        assert sorted(got) == sorted(want) and page.json()["total"] == len(want)
        assert {e["format"] for e in page.json()["events"]} == set(FORMATS)


async def test_http_ingest_answers_503_when_kafka_does_not_acknowledge(settings_factory) -> None:
    s = settings_factory(topic="unused.ingest", dlq_topic="unused.ingest.dlq",
                         kafka_bootstrap=f"127.0.0.1:{closed_port()}", ingest_timeout_ms=2000)
    keys = await _keys(s)
    event = orjson.dumps({"id": "x1", "type": "t", "timestamp": int(time.time() * 1000)})
    async with serving(s) as url, httpx.AsyncClient(base_url=url, timeout=60) as c:
        r = await c.post("/v1/ingest?format=native", content=event, headers=_auth(keys["both"]))
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["code"] == "unavailable"
        rejected_only = await c.post("/v1/ingest?format=native", content=b"{bad",
                                     headers=_auth(keys["both"]))  # nothing to publish: no Kafka needed
        assert rejected_only.status_code == 200 and rejected_only.json()["rejected"][0]["code"] == "malformed_json"
