"""The cold-tier reader: DuckDB in-process over the Parquet files a tenant's manifest lists.

One DuckDB connection per reader, guarded by a lock (DuckDB parallelises a single query over
``threads``). At construction the connection is restricted: ``allowed_directories`` = the
archive root, ``enable_external_access=false`` (so no other file, URL or extension can be
read), memory and thread limits, then ``lock_configuration=true`` so SQL cannot undo it.

Contract used by the query engine (call through ``asyncio.to_thread``; every method blocks):
``execute(tenant, since_ms, until_ms, sql, params)`` runs ``sql`` in which the literal
``{source}`` names a relation over exactly the manifest files of ``tenant`` that may hold
events in ``[since_ms, until_ms)`` (pruned by each file's date and min/max event time). All
values must be bound as ``?`` parameters in ``params``. The relation has the columns of
``archive.schema.SCHEMA``. It does NOT apply the watermark: the caller adds ``ts < W``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from eventstrata.archive.destination import ArchiveUnavailable, Destination
from eventstrata.archive.manifest import FileEntry, Manifest
from eventstrata.archive.schema import SCHEMA
from eventstrata.archive.store import file_rel, load_manifest
from eventstrata.model import Event

SOURCE = "{source}"
_VIEW = "es_cold_src"
_EMPTY = "es_cold_empty"

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.list_(pa.string()): "VARCHAR[]",
}


def _empty_ddl() -> str:
    cols = ", ".join(f'"{f.name}" {_DUCK_TYPES[f.type]}' for f in SCHEMA)
    return f"CREATE TEMP TABLE {_EMPTY} ({cols})"


def open_restricted(root: str, *, threads: int = 2, memory_limit: str = "512MB") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that can read files under ``root`` only, with its
    configuration locked. Raises ``duckdb.Error`` if DuckDB refuses a setting."""
    con = duckdb.connect(":memory:", config={"threads": threads, "memory_limit": memory_limit})
    con.execute("SET allowed_directories = ?", [[root]])
    con.execute("SET enable_external_access = false")
    con.execute("SET parquet_metadata_cache = true")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute(_empty_ddl())
    con.execute("SET lock_configuration = true")
    return con


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Reading the archive's storage: a vanished file (``FileNotFoundError``: compaction deleted
    it after the manifest was read) passes through for the caller to retry; any other I/O
    failure (pyarrow's S3 errors are ``OSError``) is ``ArchiveUnavailable``."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ArchiveUnavailable(f"archive storage failed: {exc}") from exc


class ColdReader:
    """Queries one archive (all tenants). Thread-safe; calls are serialised by a lock."""

    def __init__(self, dest: Destination, *, threads: int = 2, memory_limit: str = "512MB") -> None:
        self._dest = dest
        self._lock = threading.Lock()
        self._con = open_restricted(dest.sandbox_root(), threads=threads, memory_limit=memory_limit)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def manifest(self, tenant: str) -> Manifest:
        """The tenant's current manifest (read fresh each call). Raises ``ManifestError``."""
        return load_manifest(self._dest, tenant)

    def files(self, tenant: str, since_ms: int | None, until_ms: int | None) -> tuple[FileEntry, ...]:
        """The listed files that may hold events in ``[since_ms, until_ms)``. ``until_ms`` is at
        most the watermark the caller read from Redis, and Redis' mirror never passes the
        published manifest's, so a manifest below ``until_ms`` is a stale read (an object store
        or proxy serving an older version): read again once, then raise
        ``ArchiveUnavailable`` rather than answer without the newest files."""
        manifest = self.manifest(tenant)
        if until_ms is not None and manifest.watermark_ms < until_ms:
            manifest = self.manifest(tenant)
            if manifest.watermark_ms < until_ms:
                raise ArchiveUnavailable(
                    f"the archive's manifest of {tenant} is older than the watermark read")
        return manifest.files_between(since_ms, until_ms)

    def _bind_source(self, tenant: str, files: Sequence[FileEntry]) -> str:
        """Bind the view over ``files``: DuckDB reads local files (the archive directory, or
        copies in the S3 read cache) itself; otherwise it scans an Arrow dataset over the
        object store (filters and projections pushed down: only the footers and the row
        groups the query needs are fetched)."""
        if not files:
            return _EMPTY
        rels = [file_rel(tenant, f.path) for f in files]
        with storage_errors():
            paths = self._dest.duckdb_paths(rels)
            if paths is not None:
                rel = self._con.read_parquet(paths, hive_partitioning=False)
            else:
                located = [self._dest.arrow_path(r) for r in rels]
                data = pads.dataset([path for _, path in located], schema=SCHEMA, format="parquet",
                                    filesystem=located[0][0])
                rel = self._con.from_arrow(data)
        rel.create_view(_VIEW, replace=True)
        return _VIEW

    def execute(self, tenant: str, since_ms: int | None, until_ms: int | None, sql: str,
                params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (with ``{source}``) over the tenant's files overlapping the range.
        Raises ``ValueError`` when ``sql`` lacks ``{source}``, ``duckdb.Error`` on SQL errors,
        ``ManifestError`` on a malformed manifest."""
        if SOURCE not in sql:
            raise ValueError("cold SQL must reference {source}")
        files = self.files(tenant, since_ms, until_ms)
        with self._lock:
            name = self._bind_source(tenant, files)
            return self._con.execute(sql.replace(SOURCE, name), list(params)).fetchall()

    def cold_get(self, tenant: str, event_id: str, ts_hint: int | None = None) -> Event | None:
        """The archived event ``event_id`` or ``None``. With ``ts_hint`` (the event's time, e.g.
        from a cursor) only files whose time range holds it are read; without, every listed
        file is (row groups are pruned by the id bloom filter / statistics)."""
        manifest = self.manifest(tenant)
        if ts_hint is None:
            files = manifest.files
        else:
            files = tuple(f for f in manifest.files if f.min_ts <= ts_hint <= f.max_ts)
        if not files:
            return None
        with self._lock:
            name = self._bind_source(tenant, files)
            rows = self._con.execute(f"SELECT body FROM {name} WHERE id = ? LIMIT 1", [event_id]).fetchall()
        return Event.from_json(rows[0][0]) if rows else None

    def ids_present(self, tenant: str, files: Sequence[FileEntry], ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are already stored in ``files`` (anti-join input of the archiver)."""
        if not files or not ids:
            return set()
        cand = pa.table({"id": pa.array(list(ids), pa.string())})
        with self._lock:
            name = self._bind_source(tenant, files)
            self._con.register("es_cand", cand)
            try:
                rows = self._con.execute(
                    f"SELECT DISTINCT s.id FROM {name} s SEMI JOIN es_cand c ON s.id = c.id").fetchall()
            finally:
                self._con.unregister("es_cand")
        return {r[0] for r in rows}
