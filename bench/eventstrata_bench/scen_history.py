"""Scenarios 4 (mixed-tier reads over 90 days) and 6b (archive: Parquet bytes per event,
archive throughput). Blocking, except ``walk_and_count`` (async)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventstrata.config import Settings
from eventstrata_bench.infra import BenchError, product_argv

DAY_MS = 86_400_000


def archive_run_once(settings: Settings, workdir: Path) -> float:
    """``eventstrata archive run-once``; returns seconds. Raises ``BenchError`` on failure."""
    env = dict(os.environ)
    env.update(settings.to_env())
    t0 = time.monotonic()
    proc = subprocess.run(
        product_argv("archive", "run-once"),
        env=env,
        capture_output=True,
        timeout=1500,
        cwd=workdir,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(
            f"archive run-once failed (rc {proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}"
        )
    return time.monotonic() - t0


def parquet_bytes(root: Path, tenant: str) -> tuple[int, int]:
    """(total bytes, number) of ``*.parquet`` files under ``root/tenant=<tenant>``."""
    total = 0
    n = 0
    base = root / f"tenant={tenant}"
    for p in base.rglob("*.parquet"):
        total += p.stat().st_size
        n += 1
    return total, n


@dataclass(frozen=True, slots=True)
class MixedResult:
    page_ms: list[float]
    pages: int
    events: int
    count_ms: list[float]


async def walk_and_count(
    api: str,
    key: str,
    users: list[str],
    types: list[str],
    since_ms: int,
    *,
    max_pages: int,
    count_repeats: int,
) -> MixedResult:
    """Walk each user's history newest-first page by page (50 per page, cursor), timing every
    page; then time filtered counts over the same range. One client, sequential."""
    import httpx

    page_ms: list[float] = []
    events = 0
    pages = 0
    count_ms: list[float] = []
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30.0) as c:
        for u in users:
            cursor: str | None = None
            for _ in range(max_pages):
                params: dict[str, str | int] = {"user_id": u, "limit": 50, "since": since_ms}
                if cursor:
                    params["cursor"] = cursor
                t0 = time.perf_counter()
                r = await c.get("/v1/events", params=params)
                dt = (time.perf_counter() - t0) * 1000.0
                if r.status_code != 200:
                    raise BenchError(f"/v1/events answered {r.status_code}: {r.text[:300]}")
                body = r.json()
                page_ms.append(dt)
                pages += 1
                events += len(body.get("events") or [])
                cursor = body.get("next_cursor")
                if not cursor:
                    break
        for _ in range(count_repeats):
            queries: list[dict[str, str | int]] = [{"user_id": u, "since": since_ms} for u in users]
            queries += [{"type": t, "since": since_ms} for t in types]
            for params2 in queries:
                t0 = time.perf_counter()
                r = await c.get("/v1/events/count", params=params2)
                dt = (time.perf_counter() - t0) * 1000.0
                if r.status_code != 200:
                    raise BenchError(f"/v1/events/count answered {r.status_code}: {r.text[:300]}")
                count_ms.append(dt)
    return MixedResult(page_ms, pages, events, count_ms)


def copy_archive_to_s3(root: Path, tenant: str, dest: Any) -> int:
    """Copy ``tenant``'s local archive (files, then the manifest) under ``root`` into the S3
    destination ``dest`` (an ``S3Destination``); returns the number of objects. Blocks."""
    import shutil

    from eventstrata.archive.destination import LocalDestination

    local = LocalDestination(root)
    rels = local.list_files(f"tenant={tenant}")
    manifest = f"tenant={tenant}/_manifest.json"
    for rel in rels:
        if rel == manifest:
            continue
        staged = dest.staging_path(tenant, rel.rsplit("/", 1)[-1])
        shutil.copyfile(root / rel, staged)
        dest.put_file(rel, staged)
    found = local.read(manifest)
    if found is None:
        raise BenchError(f"no manifest for tenant {tenant} in {root}")
    current = dest.read(manifest)
    dest.replace(manifest, found[0], expect=None if current is None else current[1])
    return len(rels)

