"""``POST /v1/ingest``: events over HTTP, for producers that cannot hold a Kafka connection.

The key must hold the ``ingest`` scope (403 otherwise); the tenant is the key's. The body is
checked by ``api.ingest_body`` (pure) and the accepted events are published to the raw topic
by the process's ``produce.AckedProducer`` (idempotent, ``acks=all``). Order of durability:
the answer is sent only after Kafka acknowledged every accepted event; the ingest worker then
stores them as it stores any other message (by id, so a retried request stores nothing twice).
When Kafka does not acknowledge in time the answer is 503 with ``Retry-After`` and nothing is
reported as accepted.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from eventstrata.api.deps import bearer_key, request_tenant, spend
from eventstrata.api.ingest_body import Limits, check_events, decode_body, split_events, too_large
from eventstrata.api.models import UNAUTHORIZED, error_responses
from eventstrata.api.responses import OrjsonResponse
from eventstrata.config import Settings
from eventstrata.errors import ApiError
from eventstrata.produce import AckedProducer, ProducerUnavailable

router = APIRouter()
RETRY_AFTER_S = 2
"""``Retry-After`` of a 503 answered while Kafka does not acknowledge."""


@asynccontextmanager
async def ingest_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app lifespan hook: ``app.state.ingest_producer`` (started on the first request, so
    an API without a reachable Kafka serves reads as before), flushed and stopped at exit."""
    settings: Settings = app.state.settings
    producer = AckedProducer(settings.kafka_bootstrap, settings.topic, timeout_ms=settings.ingest_timeout_ms,
                             security=settings.kafka_security())
    app.state.ingest_producer = producer
    try:
        yield
    finally:
        await producer.close()


def _limits(s: Settings) -> Limits:
    return Limits(max_bytes=s.ingest_max_bytes, max_events=s.ingest_max_events,
                  max_event_bytes=s.max_event_bytes, max_future_skew_ms=s.max_future_skew_ms)


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, read up to ``max_bytes`` + 1 bytes (413 beyond, without reading on)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large("bytes", max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large("bytes", max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


_ERRORS = error_responses({
    400: "The body is not a JSON array, one event object or NDJSON, or is empty",
    401: UNAUTHORIZED,
    403: "The key lacks the ingest scope",
    413: "More bytes or events than the limits",
    415: "A Content-Encoding other than gzip or identity",
    429: "The key's rate limit; Retry-After",
    503: "Kafka did not acknowledge in time; Retry-After",
})


@router.post("/v1/ingest", summary="Ingest events over HTTP", tags=["ingest"], responses=_ERRORS,
             openapi_extra={
                 "parameters": [{"name": "format", "in": "query", "required": False,
                                 "schema": {"type": "string", "enum": ["native", "trieve", "thisdata",
                                                                       "fluidtopics", "eventstore"]},
                                 "description": "format of the events that do not name theirs"}],
                 "requestBody": {"required": True, "content": {
                     # any element: one that is not an event object is rejected on its own
                     # (``rejected``, code not_an_object), the others are still accepted
                     "application/json": {"schema": {"oneOf": [{"type": "array", "items": {}},
                                                               {"type": "object"}]}},
                     "application/x-ndjson": {"schema": {"type": "string"}}}},
             })
async def ingest(request: Request) -> OrjsonResponse:
    """Publish the body's events to the raw topic; answer once Kafka acknowledged them:
    ``{"accepted": [{"index", "id"}], "rejected": [{"index", "code", "message"}]}``."""
    tenant = await request_tenant(request, "ingest")
    settings: Settings = request.app.state.settings
    limits = _limits(settings)
    raw = decode_body(await _read_body(request, limits.max_bytes), request.headers.get("content-encoding"),
                      limits.max_bytes)
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    json_declared = ctype == "application/json" or ctype.endswith("+json")
    events = split_events(raw, limits.max_events, json_declared=json_declared)
    await spend(request.app.state.rate_limiter, bearer_key(request), "ingest_events", len(events))
    accepted, rejected = check_events(events, tenant=tenant, fmt=request.query_params.get("format"),
                                      now_ms=int(time.time() * 1000), limits=limits)
    producer: AckedProducer = request.app.state.ingest_producer
    if accepted and not settings.kafka_bootstrap:
        raise ApiError(503, "unavailable", "this API process has no Kafka configured "
                       "(EVENTSTRATA_KAFKA_BOOTSTRAP)")
    try:
        await producer.send_all([a.message for a in accepted])
    except ProducerUnavailable:
        return OrjsonResponse(
            ApiError(503, "unavailable", "Kafka did not acknowledge the events; retry shortly "
                     "(events are stored once by id)").to_native(),
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    body: dict[str, Any] = {
        "accepted": [{"index": a.index, "id": a.id} for a in accepted],
        "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in rejected],
    }
    return OrjsonResponse(body)
