"""``/v1/admin``: a tenant's own administration over HTTP — its API keys, its dead letters and
its archive — for ``eventstrata keys|dlq|archive status --api … --key …`` and the client; and
erasure of a user (``DELETE /v1/users/{user_id}``, ``GET /v1/erasures/{id}``; ``erasure``).

Every route needs a key with the ``admin`` scope (403 otherwise) and acts on the key's tenant
only: keys of other tenants are "not found", dead letters are those whose message named the
tenant (``ingest.dlq.letter_tenant``; a dead letter that names no tenant, such as malformed
JSON without an ``es-tenant`` header, is visible only to the local ``eventstrata dlq``). A
tenant's first admin key is created on the stack itself (``eventstrata keys create --scope
read,ingest,admin``); admin keys then create the others.

Dead letters are read from the DLQ topic at request time, without a consumer group: at most
``DLQ_SCAN`` of the newest offsets per partition. Kafka unreachable → 503 with
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Path, Query, Request

from eventstrata import erasure
from eventstrata.api.deps import bearer_key, request_tenant
from eventstrata.api.models import UNAUTHORIZED, error_responses
from eventstrata.api.responses import OrjsonResponse
from eventstrata.archive.service import tenant_status
from eventstrata.auth import ApiKeys, KeyInfo, lookup_of, parse_scopes
from eventstrata.config import Settings
from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.ingest.dlq_topic import read_letter, read_letters
from eventstrata.ingest.lag import read_lag
from eventstrata.timeutil import format_ms

_ERRORS = error_responses({
    400: "Invalid parameters or body",
    401: UNAUTHORIZED,
    403: "The key lacks the admin scope",
    404: "Not found in this tenant",
    503: "Kafka (dead letters) or Redis is unavailable; Retry-After",
})
router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=_ERRORS)
log = logging.getLogger("eventstrata.api")
DLQ_SCAN = 10_000
"""Newest offsets per DLQ partition that ``GET /v1/admin/dead-letters`` reads."""
KAFKA_TIMEOUT_S = 10.0
RETRY_AFTER_S = 5


def _key_json(k: KeyInfo) -> dict[str, Any]:
    return {"lookup": k.lookup, "tenant": k.tenant, "scopes": list(k.scopes),
            "created": format_ms(k.created_ms), "revoked": k.revoked}


def _kafka(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    if not settings.kafka_bootstrap:
        raise ApiError(503, "unavailable", "this API process has no Kafka configured "
                       "(EVENTSTRATA_KAFKA_BOOTSTRAP)", retry_after=RETRY_AFTER_S)
    return settings


def _kafka_down(exc: Exception) -> ApiError:
    return ApiError(503, "unavailable", f"Kafka is unreachable: {type(exc).__name__}",
                    retry_after=RETRY_AFTER_S)


@router.get("/keys", summary="List the tenant's API keys")
async def list_keys(request: Request) -> OrjsonResponse:
    """``{"keys": [{"lookup", "tenant", "scopes", "created", "revoked"}]}``, oldest first;
    never the keys themselves."""
    tenant = await request_tenant(request, "admin")
    keys: ApiKeys = request.app.state.api_keys
    return OrjsonResponse({"keys": [_key_json(k) for k in await keys.list(tenant)]})


@router.post("/keys", summary="Create an API key for the tenant", status_code=201,
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"scopes": {"type": "array", "items": {
                     "type": "string", "enum": ["read", "ingest", "admin"]}}}}}}}})
async def create_key(request: Request) -> OrjsonResponse:
    """Body ``{"scopes": ["read", "ingest"]}`` (optional; default read and ingest) → 201
    ``{"key", "lookup", "tenant", "scopes"}``: the only time the key is shown."""
    tenant = await request_tenant(request, "admin")
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_body", f"not valid JSON: {exc}") from None
    names = body.get("scopes", ["read", "ingest"]) if isinstance(body, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "invalid_body", 'expected {"scopes": ["read", "ingest", "admin"]}',
                       (ErrorDetail("scopes", "a list of scope names"),))
    try:
        scopes = parse_scopes(",".join(names))
    except ValueError as exc:
        raise ApiError(400, "invalid_body", str(exc), (ErrorDetail("scopes", str(exc)),)) from None
    keys: ApiKeys = request.app.state.api_keys
    key = await keys.create(tenant, now_ms=int(time.time() * 1000), scopes=scopes)
    return OrjsonResponse({"key": key, "lookup": lookup_of(key), "tenant": tenant, "scopes": list(scopes)},
                          status_code=201)


@router.delete("/keys/{lookup}", summary="Revoke one of the tenant's API keys")
async def revoke_key(
    request: Request, lookup: Annotated[str, Path(description="the key's lookup (8 characters)")],
) -> OrjsonResponse:
    """``{"lookup", "revoked": true}``; 404 when the tenant has no key with that lookup. The
    key stops working within ``EVENTSTRATA_API_KEY_CACHE``."""
    tenant = await request_tenant(request, "admin")
    keys: ApiKeys = request.app.state.api_keys
    if not await keys.revoke(lookup, tenant=tenant):
        raise ApiError(404, "not_found", "this tenant has no key with this lookup",
                       (ErrorDetail("lookup", lookup[:16]),))
    return OrjsonResponse({"lookup": lookup, "revoked": True})


@router.get("/dead-letters", summary="The tenant's newest dead letters")
async def dead_letters(
    request: Request,
    code: Annotated[str | None, Query(description="only this error code", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many, newest last")] = 100,
) -> OrjsonResponse:
    """``{"dead_letters": [{"partition", "offset", "code", "message", "source", "time",
    "tenant", "bytes"}], "counts": {code: n}}``: the newest ``limit`` of the tenant's dead
    letters (with ``code``: of that code), and the count per error code of all of the tenant's
    dead letters read."""
    tenant = await request_tenant(request, "admin")
    settings = _kafka(request)
    try:
        letters = await read_letters(settings.kafka_bootstrap, settings.dlq_topic, tenant=tenant,
                                     newest=DLQ_SCAN, timeout_s=KAFKA_TIMEOUT_S,
                                     security=settings.kafka_security())
    except KafkaError as exc:
        raise _kafka_down(exc) from None
    counts = Counter(x.code() for x in letters)
    chosen = sorted((x for x in letters if code is None or x.code() == code),
                    key=lambda x: (x.time_ms() or 0, x.partition, x.offset))[-limit:]
    return OrjsonResponse({"dead_letters": [x.summary() for x in chosen], "counts": dict(counts)})


@router.get("/dead-letters/{partition}/{offset}", summary="One dead letter with its original bytes")
async def dead_letter(
    request: Request,
    partition: Annotated[int, Path(ge=0, le=100_000)],
    offset: Annotated[int, Path(ge=0, le=2**62)],
) -> OrjsonResponse:
    """The dead letter's summary plus ``key``, ``headers`` and ``value`` (the original bytes as
    UTF-8 text); 404 when there is none there or it is not the tenant's."""
    tenant = await request_tenant(request, "admin")
    settings = _kafka(request)
    try:
        letter = await read_letter(settings.kafka_bootstrap, settings.dlq_topic, partition, offset,
                                   timeout_s=KAFKA_TIMEOUT_S, security=settings.kafka_security())
    except KafkaError as exc:
        raise _kafka_down(exc) from None
    if letter is None or letter.tenant != tenant:
        raise ApiError(404, "not_found", "this tenant has no dead letter at this position",
                       (ErrorDetail("offset", f"{partition}@{offset}"),))
    return OrjsonResponse(letter.detail())


@router.get("/pipeline", summary="The ingest pipeline's lag and the tenant's stored events")
async def pipeline(request: Request) -> OrjsonResponse:
    """``{"tenant", "topic", "consumer_group", "lag", "partitions": [{"partition", "committed",
    "first", "end", "lag"}], "global_position", "time_ms"}``: how many records of the raw topic
    the ingest workers' consumer group has not yet committed (the whole topic's, every tenant's:
    the topic is shared) and the tenant's last global position (the events it has stored; two
    answers' difference over their ``time_ms`` difference is its ingest rate)."""
    tenant = await request_tenant(request, "admin")
    settings = _kafka(request)
    position = await request.app.state.hot.last_position(tenant)
    now_ms = int(time.time() * 1000)
    try:
        lags = await read_lag(settings.kafka_bootstrap, settings.topic, settings.consumer_group,
                              timeout_s=KAFKA_TIMEOUT_S, security=settings.kafka_security())
    except (KafkaError, TimeoutError) as exc:
        raise _kafka_down(exc) from None
    return OrjsonResponse({
        "tenant": tenant, "topic": settings.topic, "consumer_group": settings.consumer_group,
        "lag": sum(x.lag for x in lags),
        "partitions": [{"partition": x.partition, "committed": x.committed, "first": x.first,
                        "end": x.end, "lag": x.lag} for x in lags],
        "global_position": position, "time_ms": now_ms,
    })


@router.get("/archive", summary="The tenant's archive status")
async def archive(request: Request) -> OrjsonResponse:
    """``{"tenant", "watermark", "watermark_ms", "redis_watermark_ms", "files", "bytes", "rows",
    "hot_windows"}``: the manifest's watermark (events before it are in Parquet; ``null`` when
    nothing is archived), Redis' mirror of it, the archive's files, bytes and rows, and the
    time windows still hot."""
    tenant = await request_tenant(request, "admin")
    st = await tenant_status(request.app.state.hot, request.app.state.archive_destination, tenant)
    watermark = format_ms(st.watermark_ms) if st.watermark_ms else None
    return OrjsonResponse({"tenant": tenant, "watermark": watermark,
                           "watermark_ms": st.watermark_ms, "redis_watermark_ms": st.mirror_ms,
                           "files": st.files, "bytes": st.bytes, "rows": st.rows,
                           "hot_windows": st.hot_windows})


# --------------------------------------------------------------------------- erasure
users_router = APIRouter(tags=["admin"], responses=_ERRORS)


@asynccontextmanager
async def erasure_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app lifespan hook: ``app.state.erasure_tasks`` (the jobs this process runs); those
    still running at exit are cancelled (the archiver completes them)."""
    tasks: set[asyncio.Task[Any]] = set()
    app.state.erasure_tasks = tasks
    try:
        yield
    finally:
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _run_job(app: FastAPI, tenant: str, job_id: str) -> None:
    """Run the job in this process, after the answer (``erasure.run``: it waits for the lease)."""
    settings: Settings = app.state.settings
    st = app.state
    try:
        await erasure.run(st.redis, st.layout, st.archive_destination, tenant, job_id,
                          window_ms=settings.window_ms, lease_ms=settings.archive_lease_ms)
    except Exception:  # recorded in the job; the archiver retries it
        log.exception("erasure %s of tenant %s failed; the archiver retries it", job_id, tenant)


@users_router.delete("/v1/users/{user_id:path}", status_code=202, summary="Erase a user's events")
async def erase_user(
    request: Request, user_id: Annotated[str, Path(min_length=1, max_length=1024)],
) -> OrjsonResponse:
    """Start erasing every event of ``user_id`` in the tenant from both tiers → 202 with the job
    (``GET /v1/erasures/{id}`` follows it). From this answer on, the ingest workers drop the
    user's events timed before now."""
    tenant = await request_tenant(request, "admin")
    lookup = lookup_of(bearer_key(request))
    job = await erasure.request(request.app.state.redis, request.app.state.layout, tenant, user_id,
                                by=f"key:{lookup}")
    task = asyncio.create_task(_run_job(request.app, tenant, job.id))
    tasks: set[asyncio.Task[Any]] = request.app.state.erasure_tasks
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return OrjsonResponse(job.to_dict(), status_code=202, headers={"Location": f"/v1/erasures/{job.id}"})


@users_router.get("/v1/erasures/{job_id}", summary="An erasure job's progress")
async def erasure_status(request: Request, job_id: Annotated[str, Path(max_length=64)]) -> OrjsonResponse:
    """``{"id", "tenant", "user_id", "status": "pending|running|done|failed", "requested_ms",
    "requested_by", "finished_ms", "hot_removed", "cold_removed", "files_rewritten", "error"}``;
    404 for a job this tenant does not have (or whose record expired)."""
    tenant = await request_tenant(request, "admin")
    job = await erasure.load(request.app.state.redis, request.app.state.layout, tenant, job_id)
    if job is None:
        raise ApiError(404, "not_found", "this tenant has no erasure job with this id",
                       (ErrorDetail("job_id", job_id[:64]),))
    return OrjsonResponse(job.to_dict())
