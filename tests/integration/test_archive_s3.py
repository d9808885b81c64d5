"""The archive in an S3 bucket on a real SeaweedFS, beyond what the archive-tier suite runs on
both backends: two writers racing on the manifest, the API's cold reads through the local
copies, and S3 unreachable or refusing (bad credentials): the archiver fails its pass and
holds W, the API's hot reads keep answering, cold reads answer 503 with the envelope."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from query_support import DAY_MS, QueryStack, make_events, walk

from conftest import S3Archive
from eventstrata.archive.destination import ArchiveUnavailable, PublishConflict, open_destination
from eventstrata.archive.s3 import S3Destination
from eventstrata.archive.service import run_archiver
from eventstrata.archive.store import load_manifest, save_manifest

pytestmark = pytest.mark.integration

TENANT = "tS3"


def test_two_publishers_of_one_manifest_version_one_wins(s3_archive: S3Archive, tmp_path: Path) -> None:
    def dest() -> S3Destination:
        return S3Destination(s3_archive.bucket, f"race-{uuid.uuid4().hex[:8]}", local_dir=tmp_path,
                             endpoint=s3_archive.endpoint)

    a = dest()
    b = S3Destination(a.bucket, a.prefix, local_dir=tmp_path / "b", endpoint=s3_archive.endpoint)
    first = load_manifest(a, TENANT)
    assert first.stored_as is None
    save_manifest(a, first.publish((), 1000, 1))
    with pytest.raises(PublishConflict):  # b read "none" too: creating it again loses
        save_manifest(b, first.publish((), 2000, 2))
    seen_by_a, seen_by_b = load_manifest(a, TENANT), load_manifest(b, TENANT)
    save_manifest(b, seen_by_b.publish((), 3000, 3))
    with pytest.raises(PublishConflict):  # a paused archiver publishing over the version it read
        save_manifest(a, seen_by_a.publish((), 4000, 4))
    assert load_manifest(a, TENANT).watermark_ms == 3000 and load_manifest(a, TENANT).version == 2


@pytest.fixture
def s3_stack(s3_archive: S3Archive, redis_url: str, tmp_path: Path) -> Iterator[tuple[QueryStack, str, int]]:
    """An API with 4 days of events of one tenant, 2 of them archived in S3 (read through local
    copies)."""
    stack = QueryStack(redis_url, tmp_path, archive_uri=s3_archive.uri(f"api-{uuid.uuid4().hex[:8]}"),
                       s3_endpoint=s3_archive.endpoint)
    now = int(time.time() * 1000)
    stack.write(make_events(TENANT, 400, start_ms=now - 4 * DAY_MS, span_ms=4 * DAY_MS, seed=7))
    stack.archive(now)
    stack.start()
    yield stack, stack.create_key(TENANT), now
    stack.stop()


def _all_ids(base: str, key: str) -> list[str]:
    with httpx.Client(base_url=base, timeout=30) as client:
        events, _, _ = walk(client, key, [("limit", "100")])
    return [e["id"] for e in events]


def test_api_reads_the_s3_archive_through_local_copies(s3_stack: tuple[QueryStack, str, int]) -> None:
    stack, key, _ = s3_stack
    wm = stack.watermark(TENANT)
    expected = {e.id for e in stack.snapshot(TENANT)}
    assert wm > 0 and any(e.timestamp < wm for e in stack.snapshot(TENANT))
    ids = _all_ids(stack.base_url, key)
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    dest = open_destination(stack.settings)
    assert isinstance(dest, S3Destination)
    cache = Path(stack.settings.state_dir) / "archive-local" / "cache"
    copies = [p for p in cache.rglob("*.parquet")]
    listed = load_manifest(dest, TENANT).files
    assert len(copies) == len(listed) > 0  # each listed file was read, and copied once
    assert _all_ids(stack.base_url, key) == ids  # answered again from the copies, identically


def test_s3_refusing_holds_the_watermark_and_answers_cold_reads_503(
        s3_stack: tuple[QueryStack, str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, key, now = s3_stack
    wm = stack.watermark(TENANT)
    before = {e.id for e in stack.snapshot(TENANT)}
    stack.stop()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")  # the standard chain now gives a bad key
    # the archiver's pass fails (and the loop retries it): W stays, Redis keeps everything hot
    with pytest.raises(ArchiveUnavailable):
        asyncio.run(run_archiver(stack.settings, once=True, now_ms=now + DAY_MS))
    assert stack.watermark(TENANT) == wm
    stack.start()
    auth = {"Authorization": f"Bearer {key}"}
    hot_only = {"since": wm + 1, "limit": 1000}
    r = httpx.get(stack.base_url + "/v1/events", params=hot_only, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["events"]  # hot reads need no archive
    r = httpx.get(stack.base_url + "/v1/events", params={"limit": 1000}, headers=auth, timeout=30)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "archive_unavailable" and r.headers["Retry-After"]
    ready = httpx.get(stack.base_url + "/readyz", timeout=30)
    assert ready.status_code == 503 and "archive" in ready.text
    # credentials fixed: everything is back, nothing lost
    stack.stop()
    monkeypatch.undo()
    stack.start()
    assert sorted(_all_ids(stack.base_url, key)) == sorted(before)
