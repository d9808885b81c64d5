"""Shared machinery of the compatible-endpoint conformance suites (tests/integration/test_compat_*).

A ``CompatStack`` is the real thing, in-process: a real Redis (the session's), the real hot-tier
writer, the real archiver writing real Parquet into a tmp dir, and the real API app served by
uvicorn on a free loopback port, spoken to over HTTP with httpx. Events are ingested in a
vendor's own shape through that vendor's format adapter (``formats.<vendor>.to_event``), exactly
the step the ingest worker performs after reading Kafka.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from conftest import SMALL_USER_SETS
from eventstrata.api.app import create_app
from eventstrata.archive.service import run_archiver
from eventstrata.auth import ApiKeys
from eventstrata.config import Settings
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.model import Event, InvalidEvent
from eventstrata.redisconn import connect_redis

DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


LAYOUTS = ["single", "cluster-sharded"]
"""The compatible suites run twice: on a single Redis, and on the 3-master Cluster with every
tenant spread over 5 shards (``compat_stack``)."""


async def compat_stack(request: pytest.FixtureRequest, redis_url: str, tmp: Path) -> CompatStack:
    """A ``CompatStack`` for the fixture's parameter (one of ``LAYOUTS``)."""
    if request.param == "single":
        return await CompatStack.start(redis_url, tmp)
    return await CompatStack.start(request.getfixturevalue("redis_cluster_url"), tmp, redis_cluster=True,
                                   hot_shards=5)


class CompatStack:
    """Start with ``await CompatStack.start(redis_url, tmp)``; stop with ``await stack.stop()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = connect_redis(settings)
        self.layout = settings.layout()
        self.writer = RedisHotWriter(self.redis, self.layout, window_ms=settings.window_ms,
                                     tail_maxlen=settings.tail_maxlen)
        self.keys = ApiKeys(self.redis, self.layout)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""
        self.http: httpx.AsyncClient = httpx.AsyncClient()

    @classmethod
    async def start(cls, redis_url: str, tmp: Path, **overrides: Any) -> CompatStack:
        """``overrides``: more settings (``redis_cluster``, ``hot_shards``, …)."""
        settings = Settings.from_env(
            env={}, redis_url=redis_url, key_prefix="c" + uuid.uuid4().hex[:10],
            archive_uri=str(tmp / "archive"), state_dir=tmp / "state", api_port=0,
            archive_grace_ms=100,  # the removal grace protects readers; the suites need no wait
            **{"user_set_max": SMALL_USER_SETS, **overrides},
        )
        stack = cls(settings)
        app = create_app(settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        stack._server = server
        stack._task = asyncio.create_task(server.serve())
        for _ in range(1000):
            if server.started or stack._task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            await stack.stop()
            raise RuntimeError("the API did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        stack.base_url = f"http://127.0.0.1:{port}"
        stack.http = httpx.AsyncClient(base_url=stack.base_url, timeout=30.0)
        return stack

    async def stop(self) -> None:
        await self.http.aclose()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        await self.redis.aclose()

    async def key_for(self, tenant: str) -> str:
        return await self.keys.create(tenant)

    async def ingest(self, fmt: str, objs: Sequence[dict[str, Any]], *, tenant: str,
                     store: str = "default") -> list[Event]:
        """Normalize vendor-shaped objects with that vendor's adapter and store them in the hot
        tier (positions assigned); returns the stored events (with positions)."""
        adapter = importlib.import_module(f"eventstrata.formats.{fmt}")
        now = now_ms()
        events: list[Event] = []
        for obj in objs:
            ev = adapter.to_event(obj, tenant, store, now)
            if isinstance(ev, InvalidEvent):
                raise AssertionError(f"fixture event rejected by the {fmt} adapter: {ev} {obj}")
            events.append(ev)
        result = await self.writer.write(events)
        return [e.with_positions(g, s) for e, (g, s) in zip(events, result.positions, strict=True)]

    async def archive(self) -> int:
        """Run one archiver pass now (moves everything older than the hot retention to Parquet);
        returns the tenant watermarks' minimum over the archived tenants."""
        reports = await run_archiver(self.settings, once=True, now_ms=now_ms())
        return min((r.watermark_ms for r in reports), default=0)

    async def watermark(self, tenant: str) -> int:
        return await RedisHotStore(self.redis, self.layout).watermark(tenant)


# ------------------------------------------------------------------------- response schemas
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"

# The Trieve OpenAPI components of seeds 000/001 the responses must satisfy (copied verbatim
# from the seed pages; ``test_trieve_schema_matches_the_seed`` checks they did not drift).
TRIEVE_COMPONENTS_YAML = """
GetEventsResponseBody:
  type: object
  description: Response body for the GetEvents endpoint
  required:
    - events
  properties:
    events:
      type: array
      items:
        $ref: '#/components/schemas/EventData'
ErrorResponseBody:
  type: object
  required:
    - message
  properties:
    message:
      type: string
  example:
    message: Bad Request
EventData:
  type: object
  title: EventData
  description: EventData represents a single analytics event
  required:
    - id
    - event_type
    - event_name
    - items
    - dataset_id
    - created_at
    - updated_at
  properties:
    created_at:
      type: string
    dataset_id:
      type: string
      format: uuid
    event_name:
      type: string
    event_type:
      type: string
    id:
      type: string
      format: uuid
    is_conversion:
      type: boolean
      nullable: true
    items:
      type: array
      items:
        type: string
    metadata:
      nullable: true
    request_id:
      type: string
      nullable: true
    request_type:
      type: string
      nullable: true
    updated_at:
      type: string
    user_id:
      type: string
      nullable: true
"""


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: ``nullable`` → a ``null`` alternative, component
    ``$ref`` → ``#/$defs/...``; descriptive keys are kept (validators ignore them)."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "allOf" in out or "$ref" in out:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def trieve_schema(name: str) -> dict[str, Any]:
    import yaml

    comps = yaml.safe_load(TRIEVE_COMPONENTS_YAML)
    defs = {k: openapi_to_jsonschema(v) for k, v in comps.items()}
    return {"$defs": defs, "$ref": f"#/$defs/{name}"}


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches (formats not asserted:
    the seeds' ``uuid`` formats describe Trieve's ids, ours are tenant ids / producer ids)."""
    import jsonschema

    jsonschema.validate(instance, schema)


# The ThisData response written from seed 002 (the example's ``results`` items and their keys).
THISDATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "results"],
    "additionalProperties": False,
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["published", "verb", "device", "location", "session", "overall_score", "id",
                             "user", "raw"],
                "properties": {
                    "published": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"},
                    "verb": {"type": "string"},
                    "device": {"type": ["object", "null"]},
                    "location": {"type": ["object", "null"]},
                    "session": {"type": ["object", "string", "null"]},
                    "overall_score": {"type": ["number", "null"]},
                    "id": {"type": "string"},
                    "user": {"type": ["object", "null"]},
                    "raw": {"type": ["object", "null"]},
                },
            },
        },
    },
}
THISDATA_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {"type": "string"}},
}


# The Fluid Topics response written from seed 003 (fields of the example and the field table).
FT_RESULT_KEYS = ("appName", "appVersion", "contentLocale", "datetime", "id", "name", "offline", "parameters",
                  "sessionId", "tenantId", "uiLocale", "user", "userAgent", "userIp")
FT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["startDate", "endDate", "paging", "results"],
    "additionalProperties": False,
    "properties": {
        "startDate": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"},
        "endDate": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"},
        "paging": {
            "type": "object", "additionalProperties": False,
            "required": ["page", "perPage", "totalCount", "lastPage"],
            "properties": {"page": {"type": "integer", "minimum": 1}, "perPage": {"type": "integer", "minimum": 1},
                           "totalCount": {"type": "integer", "minimum": 0}, "lastPage": {"type": "boolean"}},
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": list(FT_RESULT_KEYS),
                "properties": {
                    "datetime": {"type": "integer"}, "id": {"type": "string"}, "name": {"type": "string"},
                    "tenantId": {"type": "string"}, "parameters": {"type": ["object", "null"]},
                    "user": {"type": ["object", "null"]}, "offline": {"type": ["boolean", "null"]},
                },
            },
        },
    },
}
FT_COUNT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["startDate", "endDate", "count"], "additionalProperties": False,
    "properties": {"startDate": {"type": "string"}, "endDate": {"type": "string"},
                   "count": {"type": "integer", "minimum": 0}},
}
FT_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["status", "error", "message"], "additionalProperties": False,
    "properties": {"status": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}},
}


# The event-store response and error bodies written from seed 004.
ES_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["streamId", "streamPosition", "globalPosition", "eventId", "type", "data", "schemaVersion",
                 "transactionId", "createdAt"],
    "properties": {
        "streamId": {"type": "string"}, "streamPosition": {"type": "number"},
        "globalPosition": {"type": "number"}, "eventId": {"type": "string"}, "type": {"type": "string"},
        "data": {"type": "object"}, "metadata": {"type": "object"}, "schemaVersion": {"type": "string"},
        "transactionId": {"type": "string"}, "createdAt": {"type": "string"},
    },
}
ES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events", "pagination"],
    "additionalProperties": False,
    "properties": {
        "events": {"type": "array", "items": ES_EVENT_SCHEMA},
        "pagination": {
            "type": "object", "required": ["limit", "offset", "hasMore"], "additionalProperties": False,
            "properties": {"limit": {"type": "number"}, "offset": {"type": "number"}, "total": {"type": "number"},
                           "hasMore": {"type": "boolean"}},
        },
    },
}
ES_400_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error", "details"], "additionalProperties": False,
    "properties": {
        "error": {"const": "Invalid request body"},
        "details": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["code", "message", "path"], "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "path": {"type": "array"}}}},
    },
}
ES_401_BODY: dict[str, Any] = {
    "error": "UNAUTHORIZED", "message": "Unauthorized: Organization ID not found in authentication context",
}
