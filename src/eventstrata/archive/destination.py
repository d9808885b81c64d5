"""Where archive files live, behind a small Protocol: a local directory or an S3-compatible bucket.

Paths are relative to the archive root and use ``/`` (``tenant=T/date=D/x.parquet``). The
archiver writes a Parquet file to a local staging path first (``staging_path``) and hands it
to ``put_file``, which makes it visible under its final name atomically; the manifest is
published with ``replace``, a compare-and-swap on the version the publisher read (``read``
returns it): two writers that both read version N cannot both publish over it, whatever the
lease says (a paused archiver whose lease expired loses with ``PublishConflict``).

Readers never see a file before it is complete: a local file is renamed into place after
fsync; an S3 object (single PUT or multipart upload) appears only when the upload completes.
Files are immutable once written (every name is unique), so caching them is always safe; the
manifest is never cached.

``LocalDestination`` is a directory (``s3.S3Destination`` is the bucket). ``open_destination``
picks one from the settings. Every method blocks (file system or network I/O); call them from
a thread in async code.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pyarrow import fs as pafs

if TYPE_CHECKING:
    from eventstrata.config import Settings


class PublishConflict(RuntimeError):
    """``replace`` found another version than the one the caller read: someone else published
    in between. The caller's pass must stop (reload and start over later)."""


class ArchiveUnavailable(RuntimeError):
    """The archive's storage cannot be reached or refused the request (network, credentials,
    a missing bucket). Transient from the product's point of view: retried, answered 503."""


class Destination(Protocol):
    """Storage of archive files and manifests."""

    def staging_path(self, tenant: str, name: str) -> Path:
        """A fresh local path to write a file of ``tenant`` before ``put_file`` (its directory
        exists)."""

    def clear_staging(self, tenant: str) -> int:
        """Delete leftovers of crashed writes of ``tenant`` (local staging files, unfinished
        uploads); returns how many. Call only while holding the tenant's archiver lease."""

    def put_file(self, rel: str, src: Path) -> int:
        """Make the fully written local file ``src`` visible at ``rel`` atomically and durably
        (a reader sees the whole file or nothing); ``src`` is consumed. Returns its size."""

    def read(self, rel: str) -> tuple[bytes, str] | None:
        """The whole object at ``rel`` and its version tag, or ``None`` when absent."""

    def replace(self, rel: str, data: bytes, *, expect: str | None) -> str:
        """Atomically and durably replace the object at ``rel`` with ``data`` if its version
        is still ``expect`` (``None``: if it does not exist yet). Returns the new version tag;
        raises ``PublishConflict`` otherwise."""

    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of every object under ``prefix`` (recursive), sorted."""

    def delete(self, rel: str) -> None:
        """Remove ``rel``; absent is fine."""

    def arrow_path(self, rel: str) -> tuple[pafs.FileSystem, str]:
        """The pyarrow file system and path that open ``rel`` (compaction and erasure read
        files through it)."""

    def duckdb_paths(self, rels: Sequence[str]) -> list[str] | None:
        """Local paths DuckDB's ``read_parquet`` can read for ``rels`` (the files themselves,
        or copies in a local cache), or ``None`` when the files must be scanned through
        ``arrow_path`` (an Arrow dataset)."""

    def tenants(self) -> list[str]:
        """Tenants that have a directory in the archive."""

    def sandbox_root(self) -> str:
        """The one local directory the cold reader's DuckDB may read."""

    def check(self) -> None:
        """Raise ``ArchiveUnavailable`` when the storage cannot be read (readiness probe)."""

    def describe(self) -> str:
        """Where the archive is, for logs and status (no credentials)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_rel(rel: str) -> str:
    """``rel`` when it is a relative path without empty, ``.`` or ``..`` parts. Raises
    ``ValueError``."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a safe relative archive path: {rel!r}")
    return rel


def content_tag(data: bytes) -> str:
    """The version tag of a local object: a digest of its bytes."""
    return hashlib.sha256(data).hexdigest()[:32]


class LocalDestination:
    """A local directory. Staging files live in ``<root>/_staging`` (same file system, so the
    final step is a ``rename``): write → fsync file → rename → fsync directory. A manifest's
    compare-and-swap holds an exclusive ``flock`` on ``<root>/_locks/<dir>.lock`` while it
    compares the current bytes' digest and renames the new file into place (one machine; on
    a network file system use S3 instead)."""

    STAGING = "_staging"
    LOCKS = "_locks"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _abs(self, rel: str) -> Path:
        return self.root / safe_rel(rel)

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

    def read(self, rel: str) -> tuple[bytes, str] | None:
        try:
            data = self._abs(rel).read_bytes()
        except FileNotFoundError:
            return None
        return data, content_tag(data)

    def replace(self, rel: str, data: bytes, *, expect: str | None) -> str:
        dst = self._abs(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        locks = self.root / self.LOCKS
        locks.mkdir(exist_ok=True)
        lock_name = hashlib.sha256(rel.encode()).hexdigest()[:24] + ".lock"
        with open(locks / lock_name, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read(rel)
            found = None if current is None else current[1]
            if found != expect:
                raise PublishConflict(f"{rel} is at version {found}, expected {expect}")
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
        return content_tag(data)

    def list_files(self, prefix: str) -> list[str]:
        base = self._abs(prefix)
        if not base.is_dir():
            return []
        out = [p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()]
        return sorted(out)

    def delete(self, rel: str) -> None:
        self._abs(rel).unlink(missing_ok=True)

    def arrow_path(self, rel: str) -> tuple[pafs.FileSystem, str]:
        return pafs.LocalFileSystem(), str(self._abs(rel))

    def duckdb_paths(self, rels: Sequence[str]) -> list[str] | None:
        return [str(self._abs(r)) for r in rels]

    def sandbox_root(self) -> str:
        return str(self.root)

    def tenants(self) -> list[str]:
        return sorted(p.name[len("tenant="):] for p in self.root.glob("tenant=*") if p.is_dir())

    def check(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.R_OK | os.X_OK)):
            raise ArchiveUnavailable(f"archive directory {self.root} is not readable")

    def describe(self) -> str:
        return str(self.root)


def open_destination(settings: Settings) -> Destination:
    """The destination of ``EVENTSTRATA_ARCHIVE_URI``: ``s3://bucket[/prefix]`` (with
    ``EVENTSTRATA_S3_ENDPOINT`` for S3-compatible stores and the standard AWS credential chain),
    ``file://dir`` or a plain directory. Raises ``ValueError`` for another scheme."""
    uri = settings.archive_uri
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        if scheme == "s3":
            from eventstrata.archive.s3 import S3Destination

            return S3Destination.from_settings(settings)
        if scheme == "file":
            return LocalDestination(rest)
        raise ValueError(f"archive URI scheme {scheme!r} is not supported "
                         "(use s3://bucket/prefix or a directory)")
    return LocalDestination(uri)
