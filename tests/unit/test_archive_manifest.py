"""The manifest value, its JSON form, and local files: atomic put/replace, Parquet layout."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eventstrata.archive.destination import LocalDestination, PublishConflict, open_destination
from eventstrata.archive.manifest import FileEntry, Manifest, ManifestError
from eventstrata.archive.parquet_writer import events_table, write_table
from eventstrata.archive.plan import Advance
from eventstrata.archive.s3 import S3Destination, parse_s3_uri
from eventstrata.archive.schema import SCHEMA
from eventstrata.archive.store import load_manifest, save_manifest
from eventstrata.config import ConfigError, Settings
from eventstrata.model import Event

H = 3_600_000


def entry(path: str, date: str, lo: int, hi: int) -> FileEntry:
    return FileEntry(path=path, date=date, min_ts=lo, max_ts=hi, rows=3, bytes=100, min_gpos=1, max_gpos=3)


def test_publish_lists_files_raises_watermark_and_retires() -> None:
    m = Manifest("t")
    a = entry("date=2026-01-01/a.parquet", "2026-01-01", 0, 10)
    m1 = m.publish((a,), 5 * H, wall_ms=111)
    assert (m1.version, m1.watermark_ms, m1.files, m1.advances) == (1, 5 * H, (a,), (Advance(5 * H, 111),))
    m2 = m1.publish((), 3 * H, wall_ms=222)  # never lowered, no new advance
    assert m2.watermark_ms == 5 * H and m2.advances == m1.advances and m2.version == 2
    b = entry("date=2026-01-01/b.parquet", "2026-01-01", 0, 10)
    m3 = m2.publish((b,), 5 * H, 333, removed=(a.path,))
    assert m3.files == (b,) and [r.path for r in m3.retired] == [a.path]
    assert m3.without_retired({a.path}).retired == ()


def test_json_roundtrip_and_errors() -> None:
    m = Manifest("t").publish((entry("date=2026-01-01/a.parquet", "2026-01-01", 5, 9),), H, 7)
    assert Manifest.from_json(m.to_json(), "t") == m
    with pytest.raises(ManifestError):
        Manifest.from_json(m.to_json(), "other")
    with pytest.raises(ManifestError):
        Manifest.from_json(b"{not json", "t")
    with pytest.raises(ManifestError):
        Manifest.from_json(b'{"format": 1, "tenant": "t", "version": 1}', "t")


def test_overlap_pruning() -> None:
    f = entry("x", "d", 100, 200)
    assert f.overlaps(None, None) and f.overlaps(200, None) and f.overlaps(None, 101)
    assert not f.overlaps(201, None) and not f.overlaps(None, 100)
    m = Manifest("t", files=(f, entry("y", "e", 300, 400)))
    assert [x.path for x in m.files_between(150, 350)] == ["x", "y"]
    assert [x.path for x in m.files_between(250, 300)] == []
    assert m.file_counts() == {"d": 1, "e": 1} and m.total_rows == 6


def test_local_destination_atomic_put_replace_list_delete(tmp_path: Path) -> None:
    d = LocalDestination(tmp_path / "arch")
    src = d.staging_path("t", "f.parquet")
    src.write_bytes(b"abc")
    assert d.put_file("tenant=t/date=2026-01-01/f.parquet", src) == 3
    assert not src.exists()
    v1 = d.replace("tenant=t/_manifest.json", b"1", expect=None)
    with pytest.raises(PublishConflict):
        d.replace("tenant=t/_manifest.json", b"x", expect=None)  # exists already
    v2 = d.replace("tenant=t/_manifest.json", b"22", expect=v1)
    with pytest.raises(PublishConflict):
        d.replace("tenant=t/_manifest.json", b"333", expect=v1)  # someone published v2 meanwhile
    assert d.read("tenant=t/_manifest.json") == (b"22", v2)
    assert d.read("tenant=t/missing") is None
    assert d.list_files("tenant=t") == ["tenant=t/_manifest.json", "tenant=t/date=2026-01-01/f.parquet"]
    assert d.tenants() == ["t"]
    leftover = d.staging_path("t", "g.parquet")
    leftover.write_bytes(b"x")
    assert d.clear_staging("t") == 1 and not leftover.exists()
    d.delete("tenant=t/date=2026-01-01/f.parquet")
    d.delete("tenant=t/date=2026-01-01/f.parquet")
    assert d.list_files("tenant=t") == ["tenant=t/_manifest.json"]
    for bad in ("../x", "/etc/passwd", "tenant=t/../../x", "a//b"):
        with pytest.raises(ValueError):
            d.read(bad)
    assert not [p for p in os.listdir(tmp_path / "arch" / "tenant=t") if p.endswith(".tmp")]


def test_open_destination_by_scheme(tmp_path: Path) -> None:
    def dest(uri: str) -> object:
        return open_destination(Settings.from_env(env={}, archive_uri=uri, state_dir=tmp_path / "state"))

    local = dest(str(tmp_path))
    assert isinstance(local, LocalDestination) and local.root == tmp_path.resolve()
    assert isinstance(dest(f"file://{tmp_path}"), LocalDestination)
    s3 = dest("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Destination) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.describe() == "s3://bucket/some/prefix"
    with pytest.raises(ValueError, match="not supported"):
        dest("gs://bucket/prefix")
    with pytest.raises(ConfigError):
        Settings.from_env(env={"EVENTSTRATA_ARCHIVE_URI": "s3:///prefix"})


def test_s3_uri_parsing() -> None:
    assert parse_s3_uri("s3://b") == ("b", "")
    assert parse_s3_uri("s3://b/p/q/") == ("b", "p/q")
    for bad in ("s3:///x", "http://b/x"):
        with pytest.raises(ValueError):
            parse_s3_uri(bad)


def test_store_load_save(tmp_path: Path) -> None:
    d = LocalDestination(tmp_path)
    assert load_manifest(d, "t") == Manifest("t")
    m = Manifest("t").publish((), H, 1)
    saved = save_manifest(d, m)
    assert saved == m and saved.stored_as is not None
    loaded = load_manifest(d, "t")
    assert loaded == m and loaded.stored_as == saved.stored_as
    save_manifest(d, loaded.publish((), 2 * H, 2))
    with pytest.raises(PublishConflict):  # derived from a version that is no longer current
        save_manifest(d, saved.publish((), 3 * H, 3))
    assert load_manifest(d, "t").watermark_ms == 2 * H


def test_parquet_file_sorted_zstd_small_row_groups(tmp_path: Path) -> None:
    evs = [Event(id=f"e{i}", tenant="t", type="v", timestamp=1000 + (i * 7919) % 20000, received_at=0,
                 format="native", user_id=None if i % 11 == 0 else f"u{i % 13}", global_position=i + 1)
           for i in range(20000)]
    info = write_table(events_table(evs), tmp_path / "f.parquet", row_group_rows=4096)
    assert (info.rows, info.min_gpos, info.max_gpos) == (20000, 1, 20000)
    assert info.min_ts == min(e.timestamp for e in evs) and info.max_ts == max(e.timestamp for e in evs)
    pf = pq.ParquetFile(tmp_path / "f.parquet")
    assert pf.schema_arrow.equals(SCHEMA)
    md = pf.metadata
    assert md.num_row_groups == 5
    col = md.row_group(0).column(0)
    assert col.compression == "ZSTD" and col.statistics is not None and col.statistics.has_min_max
    t = pf.read(columns=["user_id", "ts", "id"]).to_pylist()
    keys = [(r["user_id"] is None, r["user_id"] or "", r["ts"], r["id"]) for r in t]
    assert keys == sorted(keys)  # (user_id, ts, id), nulls last
    with pytest.raises(ValueError):
        write_table(events_table([]), tmp_path / "empty.parquet")
