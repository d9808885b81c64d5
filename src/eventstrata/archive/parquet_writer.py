"""Writing archive Parquet files with pyarrow. Blocking (CPU + local disk).

Rows are sorted by ``(user_id, ts, id)`` (nulls last), compressed with zstd, in row groups of
``ROW_GROUP_ROWS`` rows with statistics, so DuckDB prunes row groups by user and time. See
docs/ARCHITECTURE.md for the measurements behind these choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from eventstrata.archive.schema import SCHEMA, SORT_KEYS, event_row
from eventstrata.model import Event

ROW_GROUP_ROWS = 8192
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """Facts about a file written by ``write_table``."""

    rows: int
    min_ts: int
    max_ts: int
    min_gpos: int | None
    max_gpos: int | None


def events_table(events: Iterable[Event]) -> pa.Table:
    """An Arrow table of ``events`` in ``SCHEMA`` (unsorted)."""
    rows = [event_row(e) for e in events]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def sort_table(table: pa.Table, keys: Sequence[str] = SORT_KEYS) -> pa.Table:
    """``table`` sorted ascending by ``keys``, nulls last."""
    return table.sort_by([(k, "ascending", "at_end") for k in keys])


def write_table(table: pa.Table, path: Path, *, sort: bool = True, bloom_on_id: bool = False,
                row_group_rows: int = ROW_GROUP_ROWS) -> WrittenFile:
    """Write ``table`` (must be non-empty, ``SCHEMA``) to ``path``. Raises ``ValueError`` when
    empty, ``OSError`` on disk failures. Does not fsync (``Destination.put_file`` does)."""
    if table.num_rows == 0:
        raise ValueError("refusing to write an empty archive file")
    if sort:
        table = sort_table(table)
    opts: dict[str, Any] = {}
    if bloom_on_id:
        opts["bloom_filter_options"] = {"id": {"ndv": max(table.num_rows, 1024), "fpp": 0.01}}
    pq.write_table(
        table,
        path,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        row_group_size=row_group_rows,
        write_statistics=True,
        sorting_columns=pq.SortingColumn.from_ordering(SCHEMA, [(k, "ascending") for k in SORT_KEYS],
                                                       null_placement="at_end") if sort else None,
        **opts,
    )
    ts = table.column("ts")
    gp = table.column("global_position")
    ts_mm = pc.min_max(ts).as_py()
    gp_mm = pc.min_max(gp).as_py()
    return WrittenFile(rows=table.num_rows, min_ts=int(ts_mm["min"]), max_ts=int(ts_mm["max"]),
                       min_gpos=gp_mm["min"], max_gpos=gp_mm["max"])


def read_tables(files: Sequence[tuple[pafs.FileSystem, str]]) -> pa.Table:
    """Concatenate the given archive files (file system, path; for compaction) into one
    table in ``SCHEMA``."""
    tables = [pq.read_table(p, schema=SCHEMA, filesystem=fs) for fs, p in files]
    return pa.concat_tables(tables)
