"""A bounded local cache of immutable archive files (copies of S3 objects for DuckDB).

Archive files never change once written (every name is unique), so a copy is valid for as
long as it exists: there is no invalidation, only eviction. A copy appears atomically
(download to a temporary name, then rename), so two processes sharing the directory never
read half a file. Each use touches the copy's mtime; when the total passes ``max_bytes`` the
least recently used copies are deleted, except those used within ``IN_USE_S`` (a query may
still be reading them: the bound is exceeded rather than break a running query).

Thread-safe within a process (one lock around bookkeeping; downloads run outside it). Every
method blocks.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from eventstrata.archive.destination import safe_rel

IN_USE_S = 120.0
"""A copy used less than this long ago is never evicted."""


class FileCache:
    """Copies of archive files under ``root`` (path = the file's archive-relative path)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total = sum(p.stat().st_size for p in self._copies())
        self.hits = 0
        self.misses = 0

    def _copies(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".")]

    def get(self, rel: str, fetch: Callable[[str, Path], None]) -> Path:
        """The local copy of ``rel``, calling ``fetch(rel, tmp_path)`` to make it when absent.
        Raises whatever ``fetch`` raises (nothing is left behind)."""
        path = self.root / safe_rel(rel)
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)  # a hit: the copy is now the most recently used
            self.hits += 1
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
        try:
            fetch(rel, tmp)
            size = tmp.stat().st_size
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        with self._lock:
            self.misses += 1
            self._total += size
            if self._total > self.max_bytes:
                self._evict(keep=path)
        return path

    def _evict(self, keep: Path) -> None:
        now = time.time()
        stats: list[tuple[float, int, Path]] = []
        for p in self._copies():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            stats.append((st.st_mtime, st.st_size, p))
        self._total = sum(s for _, s, _ in stats)
        for mtime, size, p in sorted(stats):
            if self._total <= self.max_bytes:
                break
            if p == keep or now - mtime < IN_USE_S:
                continue
            p.unlink(missing_ok=True)
            self._total -= size

    @property
    def total_bytes(self) -> int:
        return self._total
