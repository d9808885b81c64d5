"""The archive's side of erasing a user: the listed Parquet files that hold any of the user's
rows are written again without them, and the manifest lists the new files instead of the old
ones in one publish (the old ones are retired: readers that listed them keep them for the
archive grace period, then the archiver deletes them, as after a compaction).

A file whose row-group statistics exclude the user (files are sorted by ``user_id``) is not
read; otherwise its ``user_id`` column is, and only a file with matches is rewritten. A file
left with no rows is dropped without a replacement.

Blocking (file I/O): run it in a thread. The caller holds the tenant's archive lease, so no
archive pass publishes in between. Raises ``OSError``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventstrata.archive.destination import Destination
from eventstrata.archive.manifest import FileEntry, Manifest
from eventstrata.archive.parquet_writer import write_table
from eventstrata.archive.schema import SCHEMA
from eventstrata.archive.store import file_rel


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What erasing a user from the archive changes: files to list instead of ``removed``."""

    added: tuple[FileEntry, ...]
    removed: tuple[str, ...]
    rows_removed: int


def _may_hold(meta: pq.FileMetaData, user_id: str) -> bool:
    col = meta.schema.names.index("user_id")
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(col).statistics
        if st is None or not st.has_min_max or st.min <= user_id <= st.max:
            return True
    return False


def _keep(table: pa.Table, user_id: str) -> pa.Array:
    return pc.fill_null(pc.not_equal(table.column("user_id"), user_id), True)


def rewrite_without_user(dest: Destination, manifest: Manifest, user_id: str, *, now_ms: int) -> Rewrite:
    """The files of ``manifest`` written again without ``user_id``'s rows (see the module
    docstring); nothing is published here."""
    added: list[FileEntry] = []
    removed: list[str] = []
    rows = 0
    for f in manifest.files:
        fs, path = dest.arrow_path(file_rel(manifest.tenant, f.path))
        with fs.open_input_file(path) as fh:
            if not _may_hold(pq.ParquetFile(fh).metadata, user_id):
                continue
        users = pq.read_table(path, columns=["user_id"], filesystem=fs)
        hits = users.num_rows - int(pc.sum(_keep(users, user_id)).as_py() or 0)
        if hits == 0:
            continue
        table = pq.read_table(path, schema=SCHEMA, filesystem=fs)
        kept = table.filter(_keep(table, user_id))
        rows += hits
        removed.append(f.path)
        if kept.num_rows == 0:
            continue
        name = f"erased-{now_ms}-{uuid.uuid4().hex[:12]}.parquet"
        staging = dest.staging_path(manifest.tenant, name)
        info = write_table(kept, staging, sort=False, bloom_on_id=True)
        path = f"date={f.date}/{name}"
        size = dest.put_file(file_rel(manifest.tenant, path), staging)
        added.append(FileEntry(path=path, date=f.date, min_ts=info.min_ts, max_ts=info.max_ts, rows=info.rows,
                               bytes=size, min_gpos=info.min_gpos, max_gpos=info.max_gpos))
    return Rewrite(tuple(added), tuple(removed), rows)
