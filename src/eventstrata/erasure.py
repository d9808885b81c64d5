"""Erasing a user's events from every tier, as a resumable job.

Order (each step idempotent, so a job killed anywhere completes when run again):

1. ``request`` records the user's **tombstone** (``hotstore.user_erase``) before anything else: from
   then on the ingest workers drop every event of that user timed before the erasure, however
   it arrives (a replay of the topic from offset 0, a producer sending old events again). Then
   it records the job (status ``pending``) and returns it.
2. ``run`` takes the tenant's **archive lease** (the same one an archive pass holds, so no pass
   runs in between and the two never race), marks the job ``running`` and
   a. removes the user's events from the **hot tier** (``hotstore.user_erase.erase_user``);
   b. writes the archive files that hold any of the user's rows again without them and
      publishes the manifest once (``archive.user_rewrite``); the old files are retired and deleted
      after the archive grace period, as after a compaction;
   c. removes from the hot tier what a write already in flight when the tombstone was recorded
      may have stored meanwhile;
   then marks the job ``done`` with the counts per tier, logs one audit line (tenant, job,
   requester, counts; never the user id or any event) and releases the lease.
3. The archiver runs every unfinished job of a tenant at the start of its pass (so a job whose
   process died is completed within one archive interval), and drops tombstones and finished
   jobs older than ``EVENTSTRATA_ERASURE_TOMBSTONE``.

Counts are added as each step completes: after a crash inside a step, what that step removed
before the crash is not counted. Coroutines doing I/O; they raise ``redis.RedisError``,
``OSError`` and ``ManifestError``; ``run`` raises ``LeaseBusy`` when the lease stays taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from eventstrata.archive.destination import Destination
from eventstrata.archive.store import load_manifest, save_manifest
from eventstrata.archive.user_rewrite import rewrite_without_user
from eventstrata.hotstore import handoff
from eventstrata.hotstore.user_erase import drop_tombstones, erase_user, record_tombstone, tombstones
from eventstrata.keys import KeyLayout, TenantKeys
from eventstrata.redisconn import RedisClient, reply

log = logging.getLogger("eventstrata.erasure")
audit = logging.getLogger("eventstrata.audit")

Status = Literal["pending", "running", "done", "failed"]
_STATUSES: dict[str, Status] = {s: s for s in get_args(Status)}
JOB_ID_PREFIX = "er_"


class LeaseBusy(RuntimeError):
    """The tenant's archive lease stayed taken (an archive pass or another erasure runs)."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """One erasure job as recorded in Redis (``TenantKeys.erasure``)."""

    id: str
    tenant: str
    user_id: str
    status: Status
    requested_ms: int
    requested_by: str
    finished_ms: int = 0
    hot_removed: int = 0
    cold_removed: int = 0
    files_rewritten: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def user_ref(user_id: str) -> str:
    """What logs say instead of a user id: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]


async def request(redis: RedisClient, layout: KeyLayout, tenant: str, user_id: str, *, by: str,
                  now_ms: int | None = None) -> Erasure:
    """Record the tombstone, then a ``pending`` job; returns it (see the module docstring)."""
    tk = layout.tenant(tenant)
    now = _wall_ms() if now_ms is None else now_ms
    await record_tombstone(redis, tk, user_id, now)
    job = Erasure(f"{JOB_ID_PREFIX}{uuid.uuid4().hex[:20]}", tenant, user_id, "pending", now, by)
    n: Any = await reply(redis.hset(tk.erasure(job.id), mapping={
        k: str(v) for k, v in job.to_dict().items() if k not in ("id", "tenant")}))
    n = await reply(redis.zadd(tk.erasures, {job.id: now}))
    del n
    return job


async def load(redis: RedisClient, layout: KeyLayout, tenant: str, job_id: str) -> Erasure | None:
    """The job ``job_id`` of ``tenant``; None when there is none (or it expired)."""
    if not job_id.startswith(JOB_ID_PREFIX) or not job_id[len(JOB_ID_PREFIX):].isalnum():
        return None
    raw: Any = await reply(redis.hgetall(layout.tenant(tenant).erasure(job_id)))
    if not raw:
        return None
    f = {_s(k): _s(v) for k, v in raw.items()}
    ints = ("requested_ms", "finished_ms", "hot_removed", "cold_removed", "files_rewritten")
    return Erasure(job_id, tenant, f["user_id"], _STATUSES.get(f["status"], "failed"),
                   requested_by=f.get("requested_by", ""), error=f.get("error", ""),
                   **{k: int(f.get(k, "0")) for k in ints})


async def unfinished(redis: RedisClient, layout: KeyLayout, tenant: str) -> list[str]:
    """Ids of the tenant's jobs not ``done``, oldest first."""
    tk = layout.tenant(tenant)
    ids: Any = await reply(redis.zrange(tk.erasures, 0, -1))
    out = []
    for raw in ids:
        status: Any = await reply(redis.hget(tk.erasure(_s(raw)), "status"))
        if status is not None and _s(status) != "done":
            out.append(_s(raw))
    return out


async def _set(redis: RedisClient, tk: TenantKeys, job_id: str, **fields: Any) -> None:
    n: Any = await reply(redis.hset(tk.erasure(job_id), mapping={k: str(v) for k, v in fields.items()}))
    del n


async def _add(redis: RedisClient, tk: TenantKeys, job_id: str, field: str, n: int) -> None:
    if n:
        v: Any = await reply(redis.hincrby(tk.erasure(job_id), field, n))
        del v


async def execute(redis: RedisClient, layout: KeyLayout, dest: Destination, tenant: str, job_id: str, *,
                  window_ms: int, renew: Callable[[], Awaitable[None]],
                  clock: Callable[[], int] = _wall_ms) -> Erasure | None:
    """Steps 2a-2c of job ``job_id`` while the caller holds the tenant's archive lease;
    ``renew()`` renews it (raises when it was lost). A ``done`` job is returned as it is; a
    missing one as None."""
    job = await load(redis, layout, tenant, job_id)
    if job is None or job.status == "done":
        return job
    tk = layout.tenant(tenant)
    await _set(redis, tk, job_id, status="running", error="")
    try:
        await _add(redis, tk, job_id, "hot_removed", await erase_user(redis, tk, job.user_id, window_ms))
        await renew()
        manifest = await asyncio.to_thread(load_manifest, dest, tenant)
        rw = await asyncio.to_thread(rewrite_without_user, dest, manifest, job.user_id, now_ms=clock())
        if rw.removed:
            await renew()
            manifest = manifest.publish(rw.added, manifest.watermark_ms, clock(), removed=rw.removed)
            manifest = await asyncio.to_thread(save_manifest, dest, manifest)
            await _add(redis, tk, job_id, "cold_removed", rw.rows_removed)
            await _add(redis, tk, job_id, "files_rewritten", len(rw.removed))
        await _add(redis, tk, job_id, "hot_removed", await erase_user(redis, tk, job.user_id, window_ms))
        await _set(redis, tk, job_id, status="done", finished_ms=clock())
    except Exception as exc:
        await _set(redis, tk, job_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    done = await load(redis, layout, tenant, job_id)
    assert done is not None
    audit.info("erasure done", extra={
        "tenant": tenant, "erasure": job_id, "requested_by": done.requested_by,
        "user_ref": user_ref(done.user_id), "requested_ms": done.requested_ms,
        "finished_ms": done.finished_ms, "hot_removed": done.hot_removed,
        "cold_removed": done.cold_removed, "files_rewritten": done.files_rewritten})
    return done


class RedisErasureJobs:
    """The erasure jobs of a deployment on Redis, as the archiver runs them
    (``archive.archiver.ErasureJobs``): ``unfinished``, ``execute`` and ``prune`` of this module."""

    def __init__(self, redis: RedisClient, layout: KeyLayout, dest: Destination) -> None:
        self._redis = redis
        self._layout = layout
        self._dest = dest

    async def unfinished(self, tenant: str) -> list[str]:
        return await unfinished(self._redis, self._layout, tenant)

    async def execute(self, tenant: str, job_id: str, *, window_ms: int,
                      renew: Callable[[], Awaitable[None]]) -> Erasure | None:
        return await execute(self._redis, self._layout, self._dest, tenant, job_id, window_ms=window_ms,
                             renew=renew)

    async def prune(self, tenant: str, *, now_ms: int, lifetime_ms: int) -> int:
        return await prune(self._redis, self._layout, tenant, now_ms=now_ms, lifetime_ms=lifetime_ms)


async def run(redis: RedisClient, layout: KeyLayout, dest: Destination, tenant: str, job_id: str, *,
              window_ms: int, lease_ms: int, holder: str | None = None) -> Erasure | None:
    """``execute`` under the tenant's archive lease, waited for up to one lease period (then
    ``LeaseBusy``); the lease is released at the end."""
    tk = layout.tenant(tenant)
    me = holder or f"erasure-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + lease_ms / 1000 + 1
    while not await handoff.acquire_lease(redis, tk, me, lease_ms):
        if time.monotonic() > deadline:
            raise LeaseBusy(f"the archive lease of tenant {tenant} stayed taken")
        await asyncio.sleep(0.2)

    async def renew() -> None:
        if not await handoff.renew_lease(redis, tk, me, lease_ms):
            raise LeaseBusy(f"lost the archive lease of tenant {tenant}")

    try:
        return await execute(redis, layout, dest, tenant, job_id, window_ms=window_ms, renew=renew)
    finally:
        await handoff.release_lease(redis, tk, me)


async def prune(redis: RedisClient, layout: KeyLayout, tenant: str, *, now_ms: int, lifetime_ms: int) -> int:
    """Drop the tenant's tombstones and finished jobs older than ``lifetime_ms``; returns how
    many tombstones were dropped."""
    tk = layout.tenant(tenant)
    old = [u for u, at in (await tombstones(redis, tk)).items() if at + lifetime_ms <= now_ms]
    ids: Any = await reply(redis.zrange(tk.erasures, 0, now_ms - lifetime_ms, byscore=True))
    for raw in ids:
        job = await load(redis, layout, tenant, _s(raw))
        if job is None or job.status == "done":
            n: Any = await reply(redis.delete(tk.erasure(_s(raw))))
            n = await reply(redis.zrem(tk.erasures, _s(raw)))
            del n
    return await drop_tombstones(redis, tk, old)
