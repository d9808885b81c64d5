"""The cold tier against real Redis, real Parquet files and real DuckDB (issue 4).

Events are written with the real hot-tier writer (``RedisHotWriter``); queries split at the
watermark read once: hot = Redis zsets ``ts >= W`` (key names from ``keys.py``), cold =
``ColdReader`` ``ts < W``. Every test runs on both archive backends: a local directory and an
S3 bucket on a real SeaweedFS (read by DuckDB through an Arrow dataset, no local copies).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from ingest_util import hot_inventory, stored_ids
from pyarrow import fs as pafs
from redis.asyncio import Redis

from conftest import SMALL_USER_SETS, S3Archive
from eventstrata.archive.archiver import CRASH_STEPS, Archiver, ArchiverConfig
from eventstrata.archive.destination import LocalDestination
from eventstrata.archive.reader import ColdReader
from eventstrata.archive.s3 import S3Destination
from eventstrata.archive.service import redis_archiver, tenant_status
from eventstrata.archive.store import file_rel, load_manifest
from eventstrata.config import Settings
from eventstrata.hotstore import handoff
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.hotstore.read import Sources, scan
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.keys import KeyLayout, short_member, type_set_of
from eventstrata.model import Event

pytestmark = pytest.mark.integration

HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TENANT = "acme"
REPO = Path(__file__).resolve().parents[2]
# removal grace of the race test; ARCHIVE_TEST_GRACE_MS=0 shows the test catching the race
GRACE_MS = int(os.environ.get("ARCHIVE_TEST_GRACE_MS", "400"))


def ev(i: int, ts: int, *, tenant: str = TENANT, user: str | None = None, type_: str | None = None) -> Event:
    return Event(
        id=f"e{i:06d}", tenant=tenant, type=type_ or ("view", "click", "buy")[i % 3], timestamp=ts,
        received_at=ts, format="native", user_id=user if user is not None else f"u{i % 7}",
        data={"n": i}, user={"realm": ["r1"]},
    )


class Env:
    """One test's Redis client, key layout, archive (a directory, or ``s3``'s bucket under the
    test's key prefix) and reader."""

    def __init__(self, redis_url: str, prefix: str, root: Path, shards: int = 1,
                 s3: S3Archive | None = None) -> None:
        self.redis = Redis.from_url(redis_url)
        self.layout = KeyLayout(prefix, shards, SMALL_USER_SETS)
        self.s3 = s3
        self.dest: LocalDestination | S3Destination
        if s3 is None:
            self.dest = LocalDestination(root)
            self.archive_settings: dict[str, Any] = {"archive_uri": str(root)}
        else:
            self.dest = S3Destination(s3.bucket, prefix, local_dir=root.parent / "s3-local", endpoint=s3.endpoint,
                                      access_key=s3.access_key, secret_key=s3.secret_key, cache_bytes=0)
            self.archive_settings = {"archive_uri": s3.uri(prefix), "s3_endpoint": s3.endpoint,
                                     "archive_cache_mb": 0, "state_dir": root.parent / "state"}
        self.reader = ColdReader(self.dest)
        self.prefix = prefix
        self.redis_url = redis_url
        self.root = root

    def read_raw(self, rel: str) -> bytes:
        """The bytes of the archive object ``rel`` (not through the destination's contract)."""
        fs, path = self.dest.arrow_path(rel)
        with fs.open_input_stream(path) as f:
            data: bytes = f.read()
        return data

    def write_raw(self, rel: str, data: bytes) -> None:
        """Put ``data`` at ``rel`` directly (as a crashed or foreign writer would)."""
        fs, path = self.dest.arrow_path(rel)
        with fs.open_output_stream(path) as f:
            f.write(data)

    def exists(self, rel: str) -> bool:
        fs, path = self.dest.arrow_path(rel)
        return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)

    def writer(self, window_ms: int) -> RedisHotWriter:
        return RedisHotWriter(self.redis, self.layout, window_ms=window_ms, tail_maxlen=100_000)

    def archiver(self, window_ms: int = HOUR, retention_ms: int = DAY, grace_ms: int = 0, lease_ms: int = 5000,
                 compact_files: int = 1000, archive_retention_ms: int = 0, **kw: Any) -> Archiver:
        cfg = ArchiverConfig(retention_ms=retention_ms, window_ms=window_ms, grace_ms=grace_ms,
                             lease_ms=lease_ms, compact_files=compact_files,
                             archive_retention_ms=archive_retention_ms)
        return redis_archiver(self.redis, self.layout, self.dest, cfg, **kw)

    def settings(self, **over: Any) -> Settings:
        values: dict[str, Any] = {"redis_url": self.redis_url, "key_prefix": self.prefix,
                                  "hot_shards": self.layout.shards, **self.archive_settings}
        values.update(over)
        return Settings.from_env(env={}, **values)

    async def hot_ids(self, tenant: str, wm: int) -> list[str]:
        """Ids with ts >= wm from the tenant's sets of every event (what a hot query reads)."""
        tk = self.layout.tenant(tenant)
        out: list[str] = []
        after: tuple[int, str] | None = None
        while True:
            r = await scan(self.redis, tk, Sources("a"), lo=wm, hi=None, order="asc", after=after, limit=1000)
            out += [row.id for row in r.rows]
            if r.complete:
                return out
            after = r.boundary

    async def cold_ids(self, tenant: str, wm: int) -> list[str]:
        rows = await asyncio.to_thread(self.reader.execute, tenant, None, wm,
                                       "SELECT id FROM {source} WHERE ts < ?", [wm])
        return [r[0] for r in rows]

    async def query_all(self, tenant: str, pause: float = 0.0) -> tuple[int, list[str]]:
        """One query: read W once, then hot (ts >= W) + cold (ts < W): (count, id list).
        ``pause`` simulates a slow query between reading W and reading the tiers."""
        wm = await RedisHotStore(self.redis, self.layout).watermark(tenant)
        if pause:
            await asyncio.sleep(pause)
        h = await self.hot_ids(tenant, wm)
        c = await self.cold_ids(tenant, wm)
        return wm, h + c

    async def close(self) -> None:
        self.reader.close()
        await self.redis.aclose()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> S3Archive | None:
    """The archive backend of a test: a local directory (None) or the session's S3 bucket."""
    if request.param == "local":
        return None
    s3: S3Archive = request.getfixturevalue("s3_archive")
    return s3


@pytest.fixture
async def env(redis_url: str, key_prefix: str, tmp_path: Path, request: pytest.FixtureRequest,
              backend: S3Archive | None) -> Any:
    """A test's environment; ``@pytest.mark.parametrize("env", [3], indirect=True)`` spreads
    the tenant's hot data over 3 shards (on the one Redis: the shards are hash tags)."""
    e = Env(redis_url, key_prefix, tmp_path / "archive", getattr(request, "param", 1), backend)
    yield e
    async for k in e.redis.scan_iter(match=f"{key_prefix}:*", count=1000):
        await e.redis.unlink(k)
    await e.close()


def assert_exact(ids: list[str], expected: set[str]) -> None:
    dups = [i for i, n in Counter(ids).items() if n > 1]
    assert not dups, f"duplicates: {dups[:5]}"
    assert set(ids) == expected, (sorted(expected - set(ids))[:5], sorted(set(ids) - expected)[:5])


async def redis_keys(env: Env, tenant: str) -> dict[str, str]:
    """Every hot key of ``tenant`` → the base it is under (the tenant's or a shard's)."""
    tk = env.layout.tenant(tenant)
    return {k.decode(): base for base in tk.bases
            async for k in env.redis.scan_iter(match=f"{base}:*", count=1000)}


async def check_clean_state(env: Env, tenant: str, expected: dict[str, int], window_ms: int = HOUR) -> int:
    """After a completed pass: Redis holds exactly the events with ts >= W (bodies, zsets, ids,
    seq), the listed files exactly those with ts < W, no orphan files. Returns W."""
    tk = env.layout.tenant(tenant)
    manifest = load_manifest(env.dest, tenant)
    wm = await RedisHotStore(env.redis, env.layout).watermark(tenant)
    assert wm == manifest.watermark_ms
    hot_expected = {i for i, ts in expected.items() if ts >= wm}
    cold_expected = {i for i, ts in expected.items() if ts < wm}
    assert_exact(await env.hot_ids(tenant, 0), hot_expected)
    assert_exact(await env.cold_ids(tenant, wm), cold_expected)
    rows = await asyncio.to_thread(env.reader.execute, tenant, None, None, "SELECT count(*) FROM {source}", [])
    assert rows[0][0] == len(cold_expected)  # nothing at or above W in the archive either
    assert set(await stored_ids(env.redis, tk)) == hot_expected
    inv = await hot_inventory(env.redis, tk)
    assert sorted(inv.seq) == sorted(hot_expected) and sorted(inv.by_type) == sorted(hot_expected)
    for k, base in (await redis_keys(env, tenant)).items():
        parts = k[len(base) + 1:].split(":")
        if parts[0] in ("u", "t"):
            left = await env.redis.zrangebyscore(k, "-inf", f"({wm}")
            assert not left, f"archived members left behind in {k}: {left[:3]}"
    for w in await handoff.hot_windows(env.redis, tk):
        assert w >= wm
    listed = {file_rel(tenant, f.path) for f in manifest.files}
    on_disk = {p for p in env.dest.list_files(f"tenant={tenant}") if p.endswith(".parquet")}
    assert on_disk == listed, f"orphans: {on_disk - listed}"
    return wm


# -- 30 days, 1-day retention -----------------------------------------------------------------

@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
async def test_thirty_days_one_pass_moves_old_windows(env: Env) -> None:
    events = [ev(i, T0 + i * 17 * 60_000 + (i % 5)) for i in range(2600)]  # ~30.7 days
    await env.writer(HOUR).write(events)
    expected = {e.id: e.timestamp for e in events}
    now = T0 + 30 * DAY + 5 * HOUR + 123
    arch = env.archiver()
    seen: list[tuple[int, int, str]] = []
    try:
        reports = await arch.run_once(now, on_tenant=lambda i, n, t: seen.append((i, n, t)))
    finally:
        arch.close()
    (r,) = reports
    assert seen == [(0, 1, TENANT)]  # what `archive run-once` shows in its progress bar
    wm = await check_clean_state(env, TENANT, expected)
    assert wm == T0 + 29 * DAY + 5 * HOUR
    assert r.rows_written == sum(1 for ts in expected.values() if ts < wm) == r.removed
    assert any(ts >= wm for ts in expected.values())
    _, ids = await env.query_all(TENANT)
    assert_exact(ids, set(expected))
    # bodies come back exactly
    sample = events[10]
    got = await asyncio.to_thread(env.reader.cold_get, TENANT, sample.id, sample.timestamp)
    assert got is not None and got.id == sample.id and got.data == {"n": 10} and got.global_position
    assert await asyncio.to_thread(env.reader.cold_get, TENANT, sample.id, None) == got
    assert await asyncio.to_thread(env.reader.cold_get, TENANT, "nope", None) is None
    # files per date, rows sorted by (user_id, ts, id)
    manifest = load_manifest(env.dest, TENANT)
    assert len({f.date for f in manifest.files}) == len(manifest.files) == 30
    rows = await asyncio.to_thread(
        env.reader.execute, TENANT, None, None,
        "SELECT user_id, ts, id FROM {source} WHERE ts >= ? AND ts < ?", [T0, T0 + DAY])
    assert rows == sorted(rows)
    # a second pass at the same time does nothing
    arch = env.archiver()
    try:
        (r2,) = await arch.run_once(now)
    finally:
        arch.close()
    assert (r2.rows_written, r2.removed, r2.windows) == (0, 0, 0)
    await check_clean_state(env, TENANT, expected)


# -- late events --------------------------------------------------------------------------------

@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
async def test_late_event_queryable_after_next_pass_exactly_once(env: Env) -> None:
    events = [ev(i, T0 + i * HOUR // 4) for i in range(400)]  # ~4 days
    writer = env.writer(HOUR)
    await writer.write(events)
    now = T0 + 4 * DAY
    arch = env.archiver()
    try:
        await arch.run_once(now)
        wm = await RedisHotStore(env.redis, env.layout).watermark(TENANT)
        late = ev(9001, T0 + DAY + 7)  # its window was archived
        replay = events[5]  # an archived event redelivered (its ids entry is gone from Redis)
        assert replay.timestamp < wm and late.timestamp < wm
        await writer.write([late, replay])
        expected = {e.id for e in events}
        _, ids = await env.query_all(TENANT)
        assert_exact(ids, expected)  # the late event is not visible yet, the replay not twice
        (r,) = await arch.run_once(now)
        assert (r.rows_written, r.duplicates) == (1, 1)
        _, ids = await env.query_all(TENANT)
        assert_exact(ids, expected | {late.id})
        await check_clean_state(env, TENANT, {**{e.id: e.timestamp for e in events}, late.id: late.timestamp})
    finally:
        arch.close()


# -- the handoff race ---------------------------------------------------------------------------

@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
async def test_handoff_race_reader_always_sees_exact_set(env: Env) -> None:
    window = HOUR
    events = [ev(i, T0 + i * 90_000) for i in range(1200)]  # 30 hours, 40 per hour
    await env.writer(window).write(events)
    expected = {e.id for e in events}
    stop = asyncio.Event()
    answers: list[int] = []
    bad: list[str] = []
    watermarks: set[int] = set()

    async def reader() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            wm, ids = await env.query_all(TENANT, pause=(0, 0.005, 0.03, 0.08)[n % 4])
            watermarks.add(wm)
            answers.append(len(ids))
            if len(ids) != len(expected) or set(ids) != expected:
                bad.append(f"W={wm} n={len(ids)} missing={len(expected - set(ids))}")
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    # queries here take < 0.2 s; the grace must cover them (with grace_ms=0 this test fails)
    arch = env.archiver(window_ms=window, retention_ms=2 * HOUR, grace_ms=GRACE_MS)
    try:
        now = T0 + 2 * HOUR
        while now <= T0 + 32 * HOUR:
            await arch.run_once(now)
            await asyncio.sleep(0.05)
            now += HOUR
    finally:
        stop.set()
        await task
        arch.close()
    assert not bad, bad[:5]
    assert len(answers) > 30 and len(watermarks) > 10
    await check_clean_state(env, TENANT, {e.id: e.timestamp for e in events})


def worker_env(env: Env, **over: Any) -> dict[str, str]:
    values: dict[str, Any] = {"hot_retention_ms": 2 * HOUR, "window_ms": HOUR, "archive_grace_ms": GRACE_MS,
                              "archive_lease_ms": 1500}
    values.update(over)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTRATA_")}
    child_env.update(env.settings(**values).to_env())
    return child_env


async def run_worker(env: Env, now_ms: int, crash_after: str | None = None, *, kill_after: float | None = None,
                     **over: Any) -> tuple[int, str]:
    """``python -m eventstrata.processes.archive --once`` as a child process (the event loop keeps running, so a
    concurrent reader keeps querying); SIGKILL it after ``kill_after`` seconds if given.
    Returns (exit code, stderr)."""
    crash = ("--crash-after", crash_after) if crash_after else ()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventstrata.processes.archive", "--once", "--now", str(now_ms), *crash, cwd=REPO,
        env=worker_env(env, **over), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    if kill_after is not None:
        try:
            await asyncio.wait_for(proc.wait(), kill_after)
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")[-3000:]


class ConcurrentReader:
    """Queries the full range again and again (W read once per query, 0–80 ms pause between
    reading W and reading the tiers) and records every answer that is not the expected set."""

    def __init__(self, env: Env, expected: set[str]) -> None:
        self.env, self.expected = env, expected
        self.bad: list[str] = []
        self.answers = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            wm, ids = await self.env.query_all(TENANT, pause=(0, 0.005, 0.03, 0.08)[n % 4])
            self.answers += 1
            if len(ids) != len(self.expected) or set(ids) != self.expected:
                self.bad.append(f"W={wm} n={len(ids)} missing={len(self.expected - set(ids))}")

    def __enter__(self) -> ConcurrentReader:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    async def finish(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task
        assert not self.bad, self.bad[:5]
        assert self.answers > 0


@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
async def test_handoff_killed_after_each_step_then_repaired(env: Env) -> None:
    """The archiver process dies (exit 137, like SIGKILL) after each step in turn while a reader
    queries continuously; every answer is exact, in the broken state too, and the next run
    repairs everything."""
    events = [ev(i, T0 + i * 120_000, user=f"u{i % 3}") for i in range(30 * len(CRASH_STEPS) + 60)]
    await env.writer(HOUR).write(events)
    expected = {e.id: e.timestamp for e in events}
    now = T0 + 3 * HOUR
    steps = [s for s in CRASH_STEPS if s != "compact"]
    reader = ConcurrentReader(env, set(expected))
    with reader:
        for step in steps:
            code, err = await run_worker(env, now, step)
            assert code == 137, (step, code, err)
            _, ids = await env.query_all(TENANT)
            assert_exact(ids, set(expected))
            code, err = await run_worker(env, now)  # waits for the dead run's lease, then repairs
            assert code == 0, err
            await check_clean_state(env, TENANT, expected)
            now += HOUR
        # compaction crash: threshold 1 merges the date's files (one per pass so far)
        code, err = await run_worker(env, now, "compact", archive_compact_files=1)
        assert code == 137, err
        _, ids = await env.query_all(TENANT)
        assert_exact(ids, set(expected))
        code, err = await run_worker(env, now, archive_compact_files=1)
        assert code == 0, err
    await reader.finish()
    wm = await check_clean_state(env, TENANT, expected)
    assert wm == now - 2 * HOUR
    manifest = load_manifest(env.dest, TENANT)
    assert len(manifest.files) == 1 and "compact-" in manifest.files[0].path


async def test_repair_restarts_the_grace_when_the_mirror_was_behind(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash between publishing the manifest and mirroring W: readers still see the old W, so
    the repair run must not remove anything until the grace has passed after IT raised the
    mirror — however long ago the dead run published (deterministic, with a fake clock)."""
    events = [ev(i, T0 + i * 120_000) for i in range(120)]  # 4 hours
    await env.writer(HOUR).write(events)
    code, err = await run_worker(env, T0 + 4 * HOUR, "manifest")
    assert code == 137, err
    tk = env.layout.tenant(TENANT)
    assert load_manifest(env.dest, TENANT).watermark_ms == T0 + 2 * HOUR
    assert await RedisHotStore(env.redis, env.layout).watermark(TENANT) == 0
    await env.redis.delete(tk.lease)  # the dead run's lease
    clock = [load_manifest(env.dest, TENANT).advances[-1].at_ms + 60_000]  # long after the publish
    slept: list[float] = []
    seen_at_removal: list[tuple[int, int]] = []
    real_remove = handoff.remove_events

    async def fake_sleep(sec: float) -> None:
        slept.append(sec)
        clock[0] += int(sec * 1000) + 1

    async def spy_remove(*a: Any, **kw: Any) -> int:
        seen_at_removal.append((clock[0], await RedisHotStore(env.redis, env.layout).watermark(TENANT)))
        return await real_remove(*a, **kw)

    arch = env.archiver(retention_ms=2 * HOUR, grace_ms=5000, clock=lambda: clock[0], sleep=fake_sleep)
    start = clock[0]
    monkeypatch.setattr(handoff, "remove_events", spy_remove)
    try:
        (r,) = await arch.run_once(T0 + 4 * HOUR)
    finally:
        arch.close()
    assert r.rows_written == 0 and r.removed == 60
    assert seen_at_removal and all(t >= start + 5000 and wm == T0 + 2 * HOUR for t, wm in seen_at_removal)
    await check_clean_state(env, TENANT, {e.id: e.timestamp for e in events})


async def test_sigkill_mid_pass_then_repaired(env: Env) -> None:
    """A real SIGKILL at arbitrary points of bigger passes (not just at step boundaries) while a
    reader queries continuously."""
    events = [ev(i, T0 + i * 9_000) for i in range(6000)]  # 15 hours
    await env.writer(HOUR).write(events)
    expected = {e.id: e.timestamp for e in events}
    now = T0 + 8 * HOUR
    reader = ConcurrentReader(env, set(expected))
    with reader:
        for delay in (0.8, 1.4, 2.0, 2.6):
            code, _ = await run_worker(env, now, kill_after=delay)
            assert code in (-signal.SIGKILL, 0)
            now += HOUR
        code, err = await run_worker(env, now)
        assert code == 0, err
    await reader.finish()
    await check_clean_state(env, TENANT, expected)


# -- archive retention ----------------------------------------------------------------------------

async def test_archive_retention_deletes_whole_days_after_the_grace(env: Env) -> None:
    events = [ev(i, T0 + i * 30 * 60_000) for i in range(10 * 48)]  # 10 days, 2 an hour
    await env.writer(HOUR).write(events)
    arch = env.archiver(retention_ms=DAY, grace_ms=0, archive_retention_ms=5 * DAY)
    try:
        (r,) = await arch.run_once(T0 + 10 * DAY)  # archives days 1-9; days 1-5 ended >= 5 days ago
        assert r.expired_dates == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
        assert r.expired_rows == 5 * 48
        manifest = load_manifest(env.dest, TENANT)
        assert min(f.date for f in manifest.files) == "2026-01-06"
        assert manifest.watermark_ms == T0 + 9 * DAY  # W is untouched by retention
        kept = {e.id: e.timestamp for e in events if e.timestamp >= T0 + 5 * DAY}
        _, ids = await env.query_all(TENANT)
        assert_exact(ids, set(kept))  # exact: nothing before the cut, everything after
        await check_clean_state(env, TENANT, kept)  # the expired files are gone from storage too
        st = await tenant_status(RedisHotStore(env.redis, env.layout), env.dest, TENANT)
        assert st.oldest_date == "2026-01-06" and st.rows == 4 * 48
    finally:
        arch.close()


# -- files --------------------------------------------------------------------------------------

async def test_truncated_parquet_is_never_read_and_cleaned_up(env: Env) -> None:
    events = [ev(i, T0 + i * 60_000) for i in range(600)]  # 10 hours
    await env.writer(HOUR).write(events)
    expected = {e.id: e.timestamp for e in events}
    arch = env.archiver(retention_ms=2 * HOUR)
    try:
        await arch.run_once(T0 + 6 * HOUR)
        manifest = load_manifest(env.dest, TENANT)
        src = file_rel(TENANT, manifest.files[0].path)
        data = env.read_raw(src)
        # crash mid-write: a cut-short file in the date directory and one in staging
        cut = src.rsplit("/", 1)[0] + "/part-crashed.parquet"
        env.write_raw(cut, data[: len(data) // 2])
        staged = env.dest.staging_path(TENANT, "x.parquet")
        staged.write_bytes(data[:100])
        _, ids = await env.query_all(TENANT)
        assert_exact(ids, set(expected))
        with pytest.raises(duckdb.Error):  # the file really is unreadable
            duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [str(staged)]).fetchall()
        (r,) = await arch.run_once(T0 + 8 * HOUR)
        assert r.orphans_deleted == 2 and not env.exists(cut) and not staged.exists()
        await check_clean_state(env, TENANT, expected)
    finally:
        arch.close()


async def test_compaction_merges_small_files(env: Env) -> None:
    events = [ev(i, T0 + i * 60_000) for i in range(1440)]  # one day, one event a minute
    await env.writer(HOUR).write(events)
    expected = {e.id: e.timestamp for e in events}
    arch = env.archiver(retention_ms=HOUR, compact_files=3)
    try:
        compacted = []
        for h in range(2, 8):  # one new file per pass; the 4th file of the date triggers a merge
            (r,) = await arch.run_once(T0 + h * HOUR)
            compacted += r.compacted_dates
        assert compacted == ["2026-01-01"]
        manifest = load_manifest(env.dest, TENANT)
        assert len(manifest.files) == 3 and sum(f.rows for f in manifest.files) == 6 * 60
        assert sum("compact-" in f.path for f in manifest.files) == 1
        await check_clean_state(env, TENANT, expected)
        _, ids = await env.query_all(TENANT)
        assert_exact(ids, set(expected))
    finally:
        arch.close()


# -- lease --------------------------------------------------------------------------------------

async def test_lease_second_archiver_waits_or_takes_over(env: Env) -> None:
    await env.writer(HOUR).write([ev(i, T0 + i * 60_000) for i in range(300)])
    tk = env.layout.tenant(TENANT)
    assert await handoff.acquire_lease(env.redis, tk, "dead-archiver", 700)
    arch = env.archiver(lease_ms=700)
    try:
        (r,) = await arch.run_once(T0 + 2 * DAY, wait_for_lease=False)
        assert r.skipped and await RedisHotStore(env.redis, env.layout).watermark(TENANT) == 0
        (r,) = await arch.run_once(T0 + 2 * DAY)  # waits for the dead holder's lease to expire
        assert not r.skipped and r.rows_written == 300
        assert await env.redis.get(tk.lease) is None  # released
    finally:
        arch.close()


# -- DuckDB sandbox and parameters --------------------------------------------------------------

async def test_duckdb_cannot_read_outside_the_archive(env: Env) -> None:
    await env.writer(HOUR).write([ev(i, T0 + i * 60_000) for i in range(100)])
    arch = env.archiver()
    try:
        await arch.run_once(T0 + 3 * DAY)
    finally:
        arch.close()
    for sql in ("SELECT count(*) FROM {source}, read_csv('/etc/passwd')",
                "SELECT * FROM {source} UNION ALL SELECT * FROM read_parquet('/etc/passwd')",
                "SELECT count(*) FROM {source} WHERE id IN (SELECT content FROM read_text(?))"):
        with pytest.raises(duckdb.PermissionException):
            env.reader.execute(TENANT, None, None, sql, ["/etc/passwd"] if "?" in sql else [])
    with pytest.raises(duckdb.Error):
        env.reader.execute(TENANT, None, None, "SELECT 1 FROM {source} LIMIT 0; SET enable_external_access=true", [])
    con = env.reader._con  # the lock is on the connection itself, not just our wrapper
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error):
        con.execute("SET allowed_directories = ['/']")
    with pytest.raises(duckdb.PermissionException):
        con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    assert env.reader.execute(TENANT, None, None, "SELECT count(*) FROM {source}", [])[0][0] == 100


async def test_bound_values_are_data(env: Env) -> None:
    evil = "x' OR '1'='1"
    events = [ev(i, T0 + i * 60_000, user=evil if i % 10 == 0 else f"u{i}") for i in range(200)]
    events.append(ev(999, T0 + 5000, user="u'); DROP TABLE es_cold_empty; --", type_="a\"b"))
    await env.writer(HOUR).write(events)
    arch = env.archiver()
    try:
        await arch.run_once(T0 + 3 * DAY)
    finally:
        arch.close()
    rows = env.reader.execute(TENANT, None, None, "SELECT id FROM {source} WHERE user_id = ?", [evil])
    assert sorted(r[0] for r in rows) == sorted(e.id for e in events if e.user_id == evil)
    rows = env.reader.execute(TENANT, None, None, "SELECT id FROM {source} WHERE user_id = ? AND type = ?",
                              ["u'); DROP TABLE es_cold_empty; --", 'a"b'])
    assert rows == [("e000999",)]
    assert env.reader.execute(TENANT, None, None, "SELECT count(*) FROM {source} WHERE id = ?",
                              ["' OR 1=1 --"]) == [(0,)]
    # the relation still works for a tenant without files (the empty table was not dropped)
    assert env.reader.execute("nobody", None, None, "SELECT count(*) FROM {source}", []) == [(0,)]
    assert env.reader.cold_get(TENANT, "' OR 1=1 --", None) is None


async def test_date_pruning_reads_only_overlapping_files(env: Env) -> None:
    await env.writer(HOUR).write([ev(i, T0 + i * HOUR) for i in range(24 * 5)])
    arch = env.archiver()
    try:
        await arch.run_once(T0 + 6 * DAY)
    finally:
        arch.close()
    files = env.reader.files(TENANT, T0 + DAY + 5, T0 + 2 * DAY)
    assert [f.date for f in files] == ["2026-01-02"]
    rows = env.reader.execute(TENANT, T0 + DAY, T0 + 2 * DAY, "SELECT count(*) FROM {source}", [])
    assert rows == [(24,)]  # only that date's file is in {source}
    for rel in env.dest.list_files("tenant=acme/date=2026-01-04"):  # unread files may even vanish
        env.dest.delete(rel)
    assert env.reader.execute(TENANT, T0 + DAY, T0 + 2 * DAY, "SELECT count(*) FROM {source}", []) == [(24,)]


# -- the engine re-reads W after its hot read (archiver moving windows mid-query) -------------

class ArchiveBeforeRead:
    """A real Redis client whose ``nth`` read -- a pipeline's ``execute`` or a command sent
    with this client's own ``execute_command`` (the hot tier's read script) -- first awaits
    ``action`` (a whole archiver pass): the archiver moves a window between two reads of one
    query, deterministically. Commands sent through delegated helpers (``get``) are not
    counted."""

    def __init__(self, redis: Redis, nth: int, action: Any) -> None:
        self._redis = redis
        self._nth = nth
        self._action = action
        self.reads = 0

    async def _before_read(self) -> None:
        self.reads += 1
        if self.reads == self._nth:
            await self._action()

    def pipeline(self, transaction: bool = False) -> Any:
        pipe = self._redis.pipeline(transaction=transaction)
        execute = pipe.execute

        async def execute_after_action(*args: Any, **kw: Any) -> Any:
            await self._before_read()
            return await execute(*args, **kw)

        setattr(pipe, "execute", execute_after_action)
        return pipe

    async def execute_command(self, *args: Any, **kw: Any) -> Any:
        await self._before_read()
        return await self._redis.execute_command(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)


@dataclass
class MidQuery:
    """Window A = [T0, T0+1h) holds ``old`` (40 events), ``new`` (30) stay hot; ``engine``
    reads through an ``ArchiveBeforeRead`` client whose ``nth`` read first runs a whole
    archiver pass at ``now`` (retention 2 h, grace 0: A is archived, W -> T0 + 1 h, and A is
    removed from Redis in the same pass); ``moved`` records what that pass removed."""

    old: list[Event]
    new: list[Event]
    now: int
    engine: Any
    moved: list[int]
    client: Redis
    arch: Any

    @classmethod
    async def start(cls, env: Env, nth: int) -> MidQuery:
        from eventstrata.query.engine import QueryEngine

        old = [ev(i, T0 + i * 1000) for i in range(40)]
        new = [ev(100 + i, T0 + 3 * HOUR + i * 1000) for i in range(30)]
        await env.writer(HOUR).write(old + new)
        now = T0 + 3 * HOUR + 30 * 60_000
        arch = env.archiver(retention_ms=2 * HOUR, grace_ms=0)
        moved: list[int] = []

        async def archive() -> None:
            (r,) = await arch.run_once(now)
            moved.append(r.removed)

        client = Redis.from_url(env.redis_url)
        engine = QueryEngine(RedisHotStore(ArchiveBeforeRead(client, nth, archive), env.layout), env.reader,
                             secret=b"s" * 32)
        return cls(old, new, now, engine, moved, client, arch)

    async def close(self) -> None:
        self.arch.close()
        await self.client.aclose()


@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
@pytest.mark.parametrize("nth, dangling", [(1, 0), (2, 5)],
                         ids=["archived-before-the-first-page-call", "archived-before-a-second-read"])
async def test_query_racing_the_archiver_reads_the_cold_gap(env: Env, nth: int, dangling: int) -> None:
    """Window A is archived (grace 0: moved out of Redis in the same pass) around a page read.
    The page (newest first) starts with one call that reads W, the index and the bodies.
    nth=1: the archiver runs before it (that call's W sends A to the cold side). ``dangling``
    index members without bodies make the first round come up short, so a second round
    follows: nth=2, the archiver runs before it (A's last members are gone; the W that call
    reads after them shows the move). Every time the page is exact."""
    from eventstrata.query.filters import EventFilter

    q = await MidQuery.start(env, nth)
    tk = env.layout.tenant(TENANT)
    for j in range(dangling):  # newest members of the index, without bodies
        ts = T0 + 4 * HOUR + j
        shard = tk.shard_for("_")
        await env.redis.zadd(shard.type_set("ghost", type_set_of(ts)), {short_member(f"ghost{j}", "_"): ts})
        await env.redis.zadd(shard.types_of_hour(type_set_of(ts)), {"ghost": 0})
    try:
        page = await q.engine.page(TENANT, EventFilter(), order="desc", limit=len(q.old) + len(q.new),
                                   now_ms=q.now)
    finally:
        await q.close()
    assert q.moved == [len(q.old)], "the archiver did not run mid-query"
    assert await RedisHotStore(env.redis, env.layout).watermark(TENANT) == T0 + HOUR
    ids = [e.id for e in page.events]
    expected = sorted(q.old + q.new, key=lambda e: (e.timestamp, e.id), reverse=True)
    assert ids == [e.id for e in expected]


@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
@pytest.mark.parametrize("realms", [(), ("r1",)], ids=["index-count", "post-filtered-count"])
async def test_count_racing_the_archiver_recounts_at_the_new_watermark(env: Env, realms: tuple[str, ...]
                                                                       ) -> None:
    """Window A is archived (grace 0) before the count's first hot read. A count the index
    decides on a tenant in one slot reads W and counts the hot part at it in that one call, so
    the move is seen at once. Otherwise (a post-filtered scan, or shards) the count read W
    before: A's 40 events are gone from Redis and the hot count misses them; the W read after
    the hot count (carried by the count's last Redis call) shows the move, and the count is
    redone at the new W. Exact either way."""
    from eventstrata.query.filters import EventFilter

    q = await MidQuery.start(env, 1)
    try:
        n = await q.engine.count(TENANT, EventFilter(realms=realms), now_ms=q.now)
    finally:
        await q.close()
    assert q.moved == [len(q.old)], "the archiver did not run mid-count"
    assert n == len(q.old) + len(q.new)


@pytest.mark.parametrize("env", [1, 3], indirect=True, ids=["one-slot", "3-shards"])
async def test_a_wiped_redis_serves_the_archive_again_after_one_pass(env: Env) -> None:
    """The watermark lives in the manifest; Redis only mirrors it. After Redis lost everything
    (a new node, a lost volume) the next archiver pass -- which finds the tenant in the archive,
    not in Redis -- restores the mirror, so queries read the archived events again."""
    events = [ev(i, T0 + i * 17 * 60_000) for i in range(400)]  # ~4.7 days
    await env.writer(HOUR).write(events)
    now = T0 + 4 * DAY + 5 * HOUR
    arch = env.archiver()
    try:
        await arch.run_once(now)
        wm, _ = await env.query_all(TENANT)
        archived = {e.id for e in events if e.timestamp < wm}
        assert wm > T0 and archived
        async for k in env.redis.scan_iter(match=f"{env.prefix}:*", count=1000):
            await env.redis.unlink(k)  # the wipe: no hot data, no tenant list, no mirror of W
        assert await RedisHotStore(env.redis, env.layout).watermark(TENANT) == 0
        await arch.run_once(now)
    finally:
        arch.close()
    assert await RedisHotStore(env.redis, env.layout).watermark(TENANT) == wm
    _, ids = await env.query_all(TENANT)
    assert_exact(ids, archived)


@pytest.mark.parametrize("env", [1], indirect=True, ids=["one-slot"])
async def test_first_pages_and_counts_read_redis_once(env: Env) -> None:
    """A newest-first page, counts and per-bucket counts of a tenant in one slot each take one
    Redis call (W and the hot part together), whether nothing was archived yet (no W stored)
    or W splits the range -- and stay exact against the events written."""
    from eventstrata.query.engine import QueryEngine
    from eventstrata.query.filters import EventFilter

    events = [ev(i, T0 + i * 9 * 60_000) for i in range(300)]  # ~45 h
    await env.writer(HOUR).write(events)
    now = T0 + 2 * DAY
    client = Redis.from_url(env.redis_url)

    class Counting(ArchiveBeforeRead):
        async def get(self, *args: Any, **kw: Any) -> Any:  # the watermark's GET counts too
            await self._before_read()
            return await self._redis.get(*args, **kw)

    counting = Counting(client, 0, None)
    engine = QueryEngine(RedisHotStore(counting, env.layout), env.reader, secret=b"s" * 32)
    arch = env.archiver(retention_ms=12 * HOUR, grace_ms=0)
    flt = EventFilter(user_ids=("u3",))
    mine = sorted((e for e in events if e.user_id == "u3"), key=lambda e: (e.timestamp, e.id), reverse=True)

    async def page_ids() -> list[str]:
        return [e.id for e in (await engine.page(TENANT, flt, limit=10, now_ms=now)).events]

    try:
        await engine.count(TENANT, flt, now_ms=now)  # loads the read script (EVALSHA, then EVAL)
        for archived in (False, True):
            if archived:
                await arch.run_once(now)
                assert await RedisHotStore(env.redis, env.layout).watermark(TENANT) > T0
            for read, expected in (
                (page_ids, [e.id for e in mine[:10]]),
                (lambda: engine.count(TENANT, flt, now_ms=now), len(mine)),
                (lambda: engine.count(TENANT, EventFilter(), now_ms=now), len(events)),  # hour counts
                (lambda: engine.count(TENANT, EventFilter(since_ms=T0 + 90_000), now_ms=now),
                 sum(1 for e in events if e.timestamp >= T0 + 90_000)),
                (lambda: engine.count_buckets(TENANT, flt, bucket_ms=DAY, now_ms=now),
                 dict(sorted(Counter(e.timestamp - e.timestamp % DAY for e in mine).items()))),
            ):
                counting.reads = 0
                got = await read()
                assert counting.reads == 1, f"archived={archived}, {expected!r:.40}: {counting.reads} Redis calls"
                assert got == expected
    finally:
        arch.close()
        await client.aclose()
