"""The local cache of immutable archive files (copies of S3 objects): hits, misses, eviction of
the least recently used copies above the bound, never of a copy in use. No network."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from eventstrata.archive import filecache
from eventstrata.archive.filecache import FileCache


def test_copies_are_fetched_once_then_hit(tmp_path: Path) -> None:
    fetched: list[str] = []

    def fetch(rel: str, dst: Path) -> None:
        fetched.append(rel)
        dst.write_bytes(rel.encode() * 10)

    cache = FileCache(tmp_path / "c", max_bytes=10_000)
    a = cache.get("tenant=t/date=2026-01-01/a.parquet", fetch)
    assert a.read_bytes() == b"tenant=t/date=2026-01-01/a.parquet" * 10
    assert cache.get("tenant=t/date=2026-01-01/a.parquet", fetch) == a
    assert fetched == ["tenant=t/date=2026-01-01/a.parquet"] and (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError):
        cache.get("../escape", fetch)
    # a failed fetch leaves nothing behind
    def broken(rel: str, dst: Path) -> None:
        dst.write_bytes(b"half")
        raise OSError("connection reset")

    with pytest.raises(OSError):
        cache.get("tenant=t/b.parquet", broken)
    assert sorted(p.name for p in (tmp_path / "c").rglob("*") if p.is_file()) == ["a.parquet"]
    # a second process's cache over the same directory counts what is there
    assert FileCache(tmp_path / "c", max_bytes=10_000).total_bytes == a.stat().st_size


def test_least_recently_used_copies_go_first_never_one_in_use(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def fetch(rel: str, dst: Path) -> None:
        dst.write_bytes(b"x" * 400)

    cache = FileCache(tmp_path / "c", max_bytes=1000)
    old = time.time() - 3600
    for name, age in (("b", 0), ("a", 10)):  # both last used over IN_USE_S ago, b before a
        os.utime(cache.get(f"{name}.parquet", fetch), (old + age, old + age))
    cache.get("c.parquet", fetch)  # 1,200 B > 1,000: b, the least recently used, goes
    left = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert left == ["a.parquet", "c.parquet"] and cache.total_bytes == 800
    # copies used within IN_USE_S are kept even above the bound (a query may be reading them)
    monkeypatch.setattr(filecache, "IN_USE_S", 10_000.0)
    cache.get("d.parquet", fetch)
    cache.get("e.parquet", fetch)
    assert len(list((tmp_path / "c").iterdir())) == 4 and cache.total_bytes == 1600
