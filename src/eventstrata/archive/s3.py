"""The archive in an S3 bucket (AWS S3 or an S3-compatible store such as SeaweedFS or MinIO).

Object keys are ``<prefix>/<rel>`` (``rel`` as in ``destination``). How each guarantee of the
local archive holds on object-store semantics:

- **A file is visible only once complete**: an object appears when its single PUT or its
  multipart upload completes, never before; an upload cut short by a crash leaves no object
  (its parts are aborted by ``clear_staging`` at the next pass).
- **The manifest is published atomically, never by a read-modify-write race**: ``replace`` is
  a conditional PUT, ``If-Match: <ETag read>`` (or ``If-None-Match: *`` for the first one).
  Of two archivers that read the same version, only one publishes; the other gets 412 and
  stops its pass (``PublishConflict``), even if it still believed it held the lease. The store
  must support conditional writes (AWS S3, SeaweedFS, MinIO do).
- **Readers never trust a stale manifest**: the manifest is read afresh (one GET) by every
  cold query, and S3 reads are strongly consistent after a write, so a reader that read the
  watermark W from Redis after the manifest that holds W was published reads that manifest or
  a newer one (``archive.reader`` checks it and refuses an older one).

Cold reads: DuckDB has no network access (``reader.open_restricted``). With a cache
(``EVENTSTRATA_ARCHIVE_CACHE_MB`` > 0) a file is downloaded whole at its first read into the
local cache (``filecache``) and DuckDB reads the copy (files never change, so a copy never
goes stale); without, DuckDB scans an Arrow dataset over pyarrow's S3 file system, which reads
only the footers and the row groups a query needs.

Credentials and region come from the standard AWS chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_REGION``, a profile, an instance or pod role), for boto3 and
pyarrow alike. Every method blocks; network failures and refusals (bad credentials, a missing
bucket) raise ``ArchiveUnavailable`` after boto3's retries.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from pyarrow import fs as pafs

from eventstrata.archive.destination import ArchiveUnavailable, PublishConflict, safe_rel
from eventstrata.archive.filecache import FileCache

if TYPE_CHECKING:
    from eventstrata.config import Settings

MULTIPART_BYTES = 64 * 1024 * 1024
"""Files above this are uploaded in parts (each part 64 MiB)."""
_CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=5, read_timeout=30, retries={"max_attempts": 4, "mode": "standard"},
    s3={"addressing_style": "path"})


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")`` (prefix without slashes at
    either end; may be empty). Raises ``ValueError``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, prefix.strip("/")


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Map boto3's failures (unreachable, timed out, refused) to ``ArchiveUnavailable``."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise ArchiveUnavailable(f"S3 refused {what}: {code}") from exc
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        raise ArchiveUnavailable(f"S3 unreachable during {what}: {type(exc).__name__}") from exc


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Destination:
    """An archive under ``s3://bucket/prefix``. ``local_dir`` holds the staging files and the
    read cache (``cache_bytes`` = 0: no cache)."""

    def __init__(self, bucket: str, prefix: str, *, local_dir: Path, endpoint: str = "",
                 region: str | None = None, cache_bytes: int = 1 << 30,
                 access_key: str | None = None, secret_key: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self._region = region
        self._creds = (access_key, secret_key)
        self._staging = Path(local_dir) / "staging"
        self._staging.mkdir(parents=True, exist_ok=True)
        cache_root = Path(local_dir) / "cache"
        cache_root.mkdir(parents=True, exist_ok=True)
        self._cache_root = cache_root
        self._cache = FileCache(cache_root, cache_bytes) if cache_bytes > 0 else None

    @functools.cached_property
    def _s3(self) -> Any:
        """The boto3 client, made at first use (nothing connects before)."""
        access_key, secret_key = self._creds
        creds: dict[str, Any] = {}
        if access_key is not None:
            creds = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint or None,
                                              region_name=self._region, config=_CLIENT_CONFIG, **creds)

    @functools.cached_property
    def _arrow(self) -> pafs.S3FileSystem:
        """pyarrow's S3 file system for the same bucket, made at first use."""
        access_key, secret_key = self._creds
        opts: dict[str, Any] = {"region": self._region or self._s3.meta.region_name or "us-east-1"}
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            opts.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
        if access_key is not None:
            opts.update(access_key=access_key, secret_key=secret_key)
        return pafs.S3FileSystem(**opts, connect_timeout=5, request_timeout=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Destination:
        bucket, prefix = parse_s3_uri(settings.archive_uri)
        return cls(bucket, prefix, local_dir=Path(settings.state_dir) / "archive-local",
                   endpoint=settings.s3_endpoint, cache_bytes=settings.archive_cache_mb * 1024 * 1024)

    # -- keys ------------------------------------------------------------------------------
    def _key(self, rel: str) -> str:
        safe_rel(rel)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key

    # -- Destination -----------------------------------------------------------------------
    def staging_path(self, tenant: str, name: str) -> Path:
        d = self._staging / f"tenant={tenant}"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{uuid.uuid4().hex}-{name}"

    def clear_staging(self, tenant: str) -> int:
        n = 0
        d = self._staging / f"tenant={tenant}"
        if d.is_dir():
            for p in d.iterdir():
                p.unlink(missing_ok=True)
                n += 1
        prefix = self._key(f"tenant={tenant}") + "/"
        with s3_errors("listing unfinished uploads"):
            uploads = self._s3.get_paginator("list_multipart_uploads")
            for page in uploads.paginate(Bucket=self.bucket, Prefix=prefix):
                for up in page.get("Uploads", []):
                    self._s3.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"],
                                                    UploadId=up["UploadId"])
                    n += 1
        return n

    def put_file(self, rel: str, src: Path) -> int:
        size = src.stat().st_size
        cfg = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES,
                             use_threads=False)
        with s3_errors(f"upload of {rel}"):
            self._s3.upload_file(str(src), self.bucket, self._key(rel), Config=cfg)
        src.unlink(missing_ok=True)
        return size

    def read(self, rel: str) -> tuple[bytes, str] | None:
        with s3_errors(f"read of {rel}"):
            try:
                obj = self._s3.get_object(Bucket=self.bucket, Key=self._key(rel))
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 404:
                    return None
                raise
            data: bytes = obj["Body"].read()
        return data, str(obj["ETag"])

    def replace(self, rel: str, data: bytes, *, expect: str | None) -> str:
        cond = {"IfNoneMatch": "*"} if expect is None else {"IfMatch": expect}
        with s3_errors(f"publish of {rel}"):
            try:
                out = self._s3.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data,
                                          ContentType="application/json", **cond)
            except botocore.exceptions.ClientError as exc:
                if _status(exc) in (409, 412):  # 409: a concurrent conditional write (AWS)
                    raise PublishConflict(f"{rel} changed since version {expect} was read") from None
                raise
        return str(out["ETag"])

    def list_files(self, prefix: str) -> list[str]:
        out: list[str] = []
        with s3_errors(f"listing of {prefix}"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix) + "/")
            for page in pages:
                out.extend(self._rel(o["Key"]) for o in page.get("Contents", []))
        return sorted(out)

    def delete(self, rel: str) -> None:
        with s3_errors(f"delete of {rel}"):
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(rel))

    def arrow_path(self, rel: str) -> tuple[pafs.FileSystem, str]:
        return self._arrow, f"{self.bucket}/{self._key(rel)}"

    def duckdb_paths(self, rels: Sequence[str]) -> list[str] | None:
        cache = self._cache
        if cache is None:
            return None
        return [str(cache.get(rel, self._download)) for rel in rels]

    def _download(self, rel: str, dst: Path) -> None:
        with s3_errors(f"download of {rel}"):
            try:
                self._s3.download_file(self.bucket, self._key(rel), str(dst))
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 404:  # deleted by compaction meanwhile: the reader retries
                    raise FileNotFoundError(rel) from None
                raise

    def tenants(self) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        out: list[str] = []
        with s3_errors("listing tenants"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + "tenant=", Delimiter="/")
            for page in pages:
                for cp in page.get("CommonPrefixes", []):
                    out.append(cp["Prefix"][len(base) + len("tenant="):].rstrip("/"))
        return sorted(out)

    def sandbox_root(self) -> str:
        return str(self._cache_root)

    def create_bucket(self) -> None:
        """Create the bucket unless it exists (``eventstrata init --create-bucket``). Raises
        ``ArchiveUnavailable``."""
        with s3_errors("bucket creation"):
            try:
                self._s3.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _status(exc) != 404:
                    raise
                self._s3.create_bucket(Bucket=self.bucket)

    def check(self) -> None:
        with s3_errors("bucket check"):
            self._s3.head_bucket(Bucket=self.bucket)

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"
