"""Where archive files live, behind a small Protocol.

Paths are relative to the archive root and use ``/`` (``tenant=T/date=D/x.parquet``). The
archiver writes a Parquet file to a local staging path first (``staging_path``) and hands it
to ``put_file``, which makes it visible under its final name atomically; the manifest is
replaced atomically with ``replace``. ``LocalDestination`` is the only implementation today;
an S3-compatible one would implement the same methods (``put_file`` = multipart upload, which
is atomic per object; ``replace`` = a PUT of the manifest object; ``reader_url`` =
``s3://bucket/key`` read by DuckDB's httpfs) — nothing else changes.

All methods block (file system I/O); call them from a thread in async code.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Protocol


class Destination(Protocol):
    """Storage of archive files and manifests."""

    def staging_path(self, tenant: str, name: str) -> Path:
        """A fresh local path to write a file of ``tenant`` before ``put_file`` (its directory
        exists)."""

    def clear_staging(self, tenant: str) -> int:
        """Delete leftovers of crashed writes of ``tenant``; returns how many. Call only while
        holding the tenant's archiver lease."""

    def put_file(self, rel: str, src: Path) -> int:
        """Make the fully written local file ``src`` visible at ``rel`` atomically and durably
        (a reader sees the whole file or nothing); ``src`` is consumed. Returns its size."""

    def read(self, rel: str) -> bytes | None:
        """The whole object at ``rel`` or ``None`` when absent."""

    def replace(self, rel: str, data: bytes) -> None:
        """Atomically and durably replace the object at ``rel`` with ``data``."""

    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of every object under ``prefix`` (recursive), sorted."""

    def delete(self, rel: str) -> None:
        """Remove ``rel``; absent is fine."""

    def reader_url(self, rel: str) -> str:
        """What DuckDB's ``read_parquet`` is given for ``rel``."""

    def tenants(self) -> list[str]:
        """Tenants that have a directory in the archive."""

    def sandbox_root(self) -> str:
        """The one directory (or URL prefix) the cold reader's DuckDB may read."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe_rel(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a safe relative archive path: {rel!r}")
    return rel


class LocalDestination:
    """A local directory. Staging files live in ``<root>/_staging`` (same file system, so the
    final step is a ``rename``): write → fsync file → rename → fsync directory."""

    STAGING = "_staging"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _abs(self, rel: str) -> Path:
        return self.root / _safe_rel(rel)

    def staging_path(self, tenant: str, name: str) -> Path:
        d = self.root / self.STAGING / f"tenant={tenant}"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{uuid.uuid4().hex}-{name}"

    def clear_staging(self, tenant: str) -> int:
        d = self.root / self.STAGING / f"tenant={tenant}"
        n = 0
        if d.is_dir():
            for p in d.iterdir():
                p.unlink(missing_ok=True)
                n += 1
        return n

    def put_file(self, rel: str, src: Path) -> int:
        dst = self._abs(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        os.replace(src, dst)
        _fsync_dir(dst.parent)
        return size

    def read(self, rel: str) -> bytes | None:
        try:
            return self._abs(rel).read_bytes()
        except FileNotFoundError:
            return None

    def replace(self, rel: str, data: bytes) -> None:
        dst = self._abs(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)

    def list_files(self, prefix: str) -> list[str]:
        base = self._abs(prefix)
        if not base.is_dir():
            return []
        out = [p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()]
        return sorted(out)

    def delete(self, rel: str) -> None:
        self._abs(rel).unlink(missing_ok=True)

    def reader_url(self, rel: str) -> str:
        return str(self._abs(rel))

    def sandbox_root(self) -> str:
        return str(self.root)

    def tenants(self) -> list[str]:
        return sorted(p.name[len("tenant="):] for p in self.root.glob("tenant=*") if p.is_dir())


def destination_for(uri: str) -> LocalDestination:
    """The destination of ``EVENTSTRATA_ARCHIVE_URI``. Raises ``ValueError`` for ``s3://``
    (not implemented: see docs/ARCHITECTURE.md) or another scheme."""
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        if scheme == "file":
            return LocalDestination(uri.split("://", 1)[1])
        raise ValueError(f"archive URI scheme {scheme!r} is not supported (use a local directory)")
    return LocalDestination(uri)
