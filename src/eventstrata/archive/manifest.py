"""The per-tenant archive manifest: a pure value and its JSON form.

``<root>/tenant=<T>/_manifest.json`` lists every Parquet file readers may read, the tenant's
durable watermark W (all events with ``ts < W`` are in listed files), the recent watermark
advances (for the removal grace, see ``plan.removable_below``) and files retired by compaction
(deleted once no reader can still hold an older manifest). A file not listed is never read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from eventstrata.archive.plan import Advance

MANIFEST_NAME = "_manifest.json"
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """The manifest JSON is malformed (a bug or manual edit; the archiver refuses to run)."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One listed Parquet file. ``path`` is relative to the tenant directory
    (``date=YYYY-MM-DD/<name>.parquet``); ``min_ts``/``max_ts`` are inclusive event times."""

    path: str
    date: str
    min_ts: int
    max_ts: int
    rows: int
    bytes: int
    min_gpos: int | None
    max_gpos: int | None

    def overlaps(self, since_ms: int | None, until_ms: int | None) -> bool:
        """True when the file may hold events in ``[since_ms, until_ms)``."""
        if since_ms is not None and self.max_ts < since_ms:
            return False
        return not (until_ms is not None and self.min_ts >= until_ms)


@dataclass(frozen=True, slots=True)
class Retired:
    """A file removed from the listing at wall time ``at_ms``; deleted after the grace."""

    path: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """One published state of a tenant's archive. ``version`` increases by one per publish."""

    tenant: str
    version: int = 0
    watermark_ms: int = 0
    files: tuple[FileEntry, ...] = ()
    advances: tuple[Advance, ...] = ()
    retired: tuple[Retired, ...] = field(default=())
    stored_as: str | None = field(default=None, compare=False)
    """The stored object's version tag this manifest was read as or published as (``None``:
    none stored yet); the next publish replaces the manifest only if it is still that version
    (``Destination.replace``). Not part of the JSON."""

    # -- queries ---------------------------------------------------------------------------
    def files_between(self, since_ms: int | None, until_ms: int | None) -> tuple[FileEntry, ...]:
        return tuple(f for f in self.files if f.overlaps(since_ms, until_ms))

    def files_of_date(self, date: str) -> tuple[FileEntry, ...]:
        return tuple(f for f in self.files if f.date == date)

    def file_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.date] = out.get(f.date, 0) + 1
        return out

    @property
    def total_rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    # -- transitions (pure) ----------------------------------------------------------------
    def publish(self, added: tuple[FileEntry, ...], watermark_ms: int, wall_ms: int,
                removed: tuple[str, ...] = ()) -> Manifest:
        """The next version: ``added`` listed, ``removed`` paths unlisted and retired, the
        watermark raised to ``watermark_ms`` (never lowered) with an advance stamped ``wall_ms``."""
        gone = set(removed)
        files = tuple(f for f in self.files if f.path not in gone) + added
        wm = max(self.watermark_ms, watermark_ms)
        advances = self.advances
        if wm > self.watermark_ms:
            advances = (*advances, Advance(wm, wall_ms))
        retired = self.retired + tuple(Retired(p, wall_ms) for p in removed)
        return replace(self, version=self.version + 1, watermark_ms=wm, files=files,
                       advances=advances, retired=retired)

    def with_advances(self, advances: tuple[Advance, ...]) -> Manifest:
        return replace(self, version=self.version + 1, advances=advances)

    def without_retired(self, paths: set[str]) -> Manifest:
        return replace(self, version=self.version + 1,
                       retired=tuple(r for r in self.retired if r.path not in paths))

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "tenant": self.tenant,
            "version": self.version,
            "watermark_ms": self.watermark_ms,
            "files": [
                {"path": f.path, "date": f.date, "min_ts": f.min_ts, "max_ts": f.max_ts, "rows": f.rows,
                 "bytes": f.bytes, "min_gpos": f.min_gpos, "max_gpos": f.max_gpos}
                for f in self.files
            ],
            "advances": [{"watermark_ms": a.watermark_ms, "at_ms": a.at_ms} for a in self.advances],
            "retired": [{"path": r.path, "at_ms": r.at_ms} for r in self.retired],
        }
        return json.dumps(doc, indent=1, sort_keys=False).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes, tenant: str) -> Manifest:
        """Parse a manifest; raises ``ManifestError`` when malformed or of another tenant."""
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT_VERSION:
                raise ManifestError(f"unsupported manifest format {doc.get('format')!r}")
            if doc["tenant"] != tenant:
                raise ManifestError(f"manifest of tenant {doc['tenant']!r} found for {tenant!r}")
            files = tuple(
                FileEntry(path=str(f["path"]), date=str(f["date"]), min_ts=int(f["min_ts"]),
                          max_ts=int(f["max_ts"]), rows=int(f["rows"]), bytes=int(f["bytes"]),
                          min_gpos=_opt_int(f.get("min_gpos")), max_gpos=_opt_int(f.get("max_gpos")))
                for f in doc["files"]
            )
            advances = tuple(Advance(int(a["watermark_ms"]), int(a["at_ms"]))
                             for a in doc.get("advances", []))
            retired = tuple(Retired(str(r["path"]), int(r["at_ms"])) for r in doc.get("retired", []))
            return cls(tenant=tenant, version=int(doc["version"]), watermark_ms=int(doc["watermark_ms"]),
                       files=files, advances=advances, retired=retired)
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"malformed manifest of tenant {tenant!r}: {exc}") from None


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)
