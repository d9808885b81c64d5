"""Quick measurements of the cold tier (not a test): ``python -m eventstrata_bench.archive_measure``.

1. archive throughput: events written to Redis with the real hot writer, then one archiver
   pass moves them to Parquet (needs ``EVENTSTRATA_REDIS_URL``; uses a throw-away key prefix
   and deletes its keys afterwards);
2. bytes per event on disk vs the canonical JSON body;
3. cold query latency over 90 days of daily files (written directly with the archive writer):
   one user's newest 50, count for a user, one type over one day, get-by-id — for several
   layouts (sort order, row-group size, bloom filter on ``id``).

Prints one JSON document. Blocking; takes a minute or two with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from eventstrata.archive.archiver import ArchiverConfig
from eventstrata.archive.destination import LocalDestination
from eventstrata.archive.manifest import FileEntry, Manifest
from eventstrata.archive.parquet_writer import events_table, write_table
from eventstrata.archive.reader import ColdReader
from eventstrata.archive.service import redis_archiver
from eventstrata.archive.store import file_rel, save_manifest
from eventstrata.model import Event
from eventstrata.timeutil import day_of_ms

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


def make_events(n: int, days: int, users: int, tenant: str, seed: int = 7, *,
                positions: bool = True) -> list[Event]:
    """``n`` realistic-looking events over ``days`` days (Zipf-ish users, 12 types, ~500 B JSON)."""
    rnd = random.Random(seed)
    types = ["page_view", "click", "search", "login", "logout", "purchase", "add_to_cart", "share",
             "download", "signup", "comment", "like"]
    out = []
    for i in range(n):
        ts = T0 + rnd.randrange(days * DAY)
        u = int(users * rnd.random() ** 2)
        out.append(Event(
            id=uuid.UUID(int=rnd.getrandbits(128)).hex, tenant=tenant, type=types[i % len(types)],
            timestamp=ts,
            received_at=ts + rnd.randrange(2000), format="native", name=f"n{i % 50}", user_id=f"user-{u:06d}",
            source="web", session_id=f"s{u}-{ts // 3_600_000}", global_position=i + 1 if positions else None,
            user={"realm": ["eu"], "groups": [f"g{u % 20}"], "roles": ["member"]},
            data={"url": f"https://example.com/p/{rnd.randrange(10_000)}", "ref": "campaign-x",
                  "ms": rnd.randrange(10_000), "q": "lorem ipsum dolor" if i % 3 == 0 else None},
            metadata={"ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "ip": "203.0.113.7"},
        ))
    return out


def _p50(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


async def measure_archive(redis_url: str, n: int) -> dict[str, Any]:
    """Hot write of ``n`` events over 30 days, then one archiver pass (retention 1 day)."""
    from eventstrata.hotstore.writer import RedisHotWriter
    from eventstrata.keys import KeyLayout

    prefix = "m" + uuid.uuid4().hex[:8]
    layout = KeyLayout(prefix)
    redis = Redis.from_url(redis_url)
    root = Path(tempfile.mkdtemp(prefix="es-measure-"))
    events = make_events(n, 30, 2000, "bench", positions=False)
    try:
        writer = RedisHotWriter(redis, layout, window_ms=3_600_000, tail_maxlen=1000)
        for i in range(0, n, 5000):
            await writer.write(events[i:i + 5000])
        dest = LocalDestination(root)
        arch = redis_archiver(redis, layout, dest, ArchiverConfig(DAY, 3_600_000, 0, 60_000))
        t = time.perf_counter()
        (report,) = await arch.run_once(T0 + 31 * DAY)
        elapsed = time.perf_counter() - t
        arch.close()
        json_bytes = sum(len(e.to_json()) for e in events)
        return {
            "events": n, "archived": report.rows_written, "removed": report.removed,
            "seconds": round(elapsed, 2), "events_per_s": round(report.rows_written / elapsed),
            "parquet_bytes_per_event": round(report.bytes_written / report.rows_written, 1),
            "json_bytes_per_event": round(json_bytes / n, 1),
        }
    finally:
        async for k in redis.scan_iter(match=f"{prefix}:*", count=1000):
            await redis.unlink(k)
        await redis.aclose()
        shutil.rmtree(root, ignore_errors=True)


def build_layout(root: Path, events_by_day: dict[str, list[Event]], tenant: str, *, sort: tuple[str, ...],
                 row_group: int, bloom: bool) -> tuple[LocalDestination, int]:
    from eventstrata.archive.parquet_writer import sort_table

    dest = LocalDestination(root)
    entries: list[FileEntry] = []
    total = 0
    for day, evs in sorted(events_by_day.items()):
        table = sort_table(events_table(evs), sort)
        path = f"date={day}/part.parquet"
        tmp = dest.staging_path(tenant, "x.parquet")
        info = write_table(table, tmp, sort=False, bloom_on_id=bloom, row_group_rows=row_group)
        size = dest.put_file(file_rel(tenant, path), tmp)
        total += size
        entries.append(FileEntry(path, day, info.min_ts, info.max_ts, info.rows, size,
                                 info.min_gpos, info.max_gpos))
    save_manifest(dest, Manifest(tenant).publish(tuple(entries), T0 + 90 * DAY, 0))
    return dest, total


def _time_queries(reader: ColdReader, tenant: str, users: list[str], ids: list[str],
                  repeat: int) -> dict[str, float]:
    wm = T0 + 90 * DAY
    d0, d1 = T0 + 40 * DAY, T0 + 41 * DAY
    q_newest = "SELECT body FROM {source} WHERE user_id = ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT 50"
    q_count = "SELECT count(*) FROM {source} WHERE user_id = ? AND ts < ?"
    q_type = "SELECT id FROM {source} WHERE type = ? AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 50"
    for u in users[:3]:  # warm the metadata cache / page cache
        reader.execute(tenant, None, wm, q_newest, [u, wm])
    res: dict[str, float] = {}
    for label in ("user_newest_50_90d", "count_user_90d", "type_1_day", "get_by_id", "get_by_id_missing"):
        samples = []
        for i in range(repeat):
            t = time.perf_counter()
            if label == "user_newest_50_90d":
                reader.execute(tenant, None, wm, q_newest, [users[i], wm])
            elif label == "count_user_90d":
                reader.execute(tenant, None, wm, q_count, [users[i], wm])
            elif label == "type_1_day":
                reader.execute(tenant, d0, d1, q_type, ["purchase", d0, d1])
            elif label == "get_by_id":
                assert reader.cold_get(tenant, ids[i], None) is not None
            else:
                assert reader.cold_get(tenant, f"missing-{i}", None) is None
            samples.append(time.perf_counter() - t)
        res[label + "_p50_ms"] = _p50(samples)
    return res


def measure_queries(n: int, repeat: int) -> dict[str, Any]:
    tenant = "bench"
    events = make_events(n, 90, 20_000, tenant, seed=11)
    by_day: dict[str, list[Event]] = {}
    for e in events:
        by_day.setdefault(day_of_ms(e.timestamp), []).append(e)
    rnd = random.Random(3)
    users = [f"user-{int(20_000 * rnd.random() ** 2):06d}" for _ in range(repeat)]
    ids = [rnd.choice(events).id for _ in range(repeat)]
    layouts = {
        "user_ts_8k": (("user_id", "ts", "id"), 8192, False),
        "user_ts_8k_bloom_id": (("user_id", "ts", "id"), 8192, True),
        "user_ts_one_group": (("user_id", "ts", "id"), 1 << 30, False),
        "ts_user_8k": (("ts", "user_id", "id"), 8192, False),
    }
    out: dict[str, Any] = {"events": n, "files": len(by_day)}
    for name, (sort, rg, bloom) in layouts.items():
        root = Path(tempfile.mkdtemp(prefix="es-cold-"))
        try:
            dest, size = build_layout(root, by_day, tenant, sort=sort, row_group=rg, bloom=bloom)
            reader = ColdReader(dest, threads=2)
            res = _time_queries(reader, tenant, users, ids, repeat)
            reader.close()
            out[name] = {"bytes_per_event": round(size / n, 1), **res}
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--redis-url", default="", help="Redis for the archive-throughput part (skipped if empty)")
    p.add_argument("--archive-events", type=int, default=200_000)
    p.add_argument("--query-events", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args()
    result: dict[str, Any] = {}
    if args.redis_url:
        result["archive"] = asyncio.run(measure_archive(args.redis_url, args.archive_events))
    if args.query_events:
        result["cold_queries"] = measure_queries(args.query_events, args.repeat)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
