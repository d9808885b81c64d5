"""Loading and publishing a tenant's manifest through a ``Destination``. Blocking."""

from __future__ import annotations

from dataclasses import replace

from eventstrata.archive.destination import Destination
from eventstrata.archive.manifest import MANIFEST_NAME, Manifest


def tenant_dir(tenant: str) -> str:
    return f"tenant={tenant}"


def manifest_rel(tenant: str) -> str:
    return f"{tenant_dir(tenant)}/{MANIFEST_NAME}"


def file_rel(tenant: str, path: str) -> str:
    """Root-relative path of a manifest entry path (which is tenant-relative)."""
    return f"{tenant_dir(tenant)}/{path}"


def load_manifest(dest: Destination, tenant: str) -> Manifest:
    """The tenant's published manifest; an empty one (version 0, W = 0) when none exists.
    Raises ``ManifestError`` when it is malformed."""
    found = dest.read(manifest_rel(tenant))
    if found is None:
        return Manifest(tenant=tenant)
    raw, tag = found
    return replace(Manifest.from_json(raw, tenant), stored_as=tag)


def save_manifest(dest: Destination, manifest: Manifest) -> Manifest:
    """Atomically replace the tenant's manifest (readers see the old or the new one), only if
    the stored one is still the version ``manifest`` was derived from (``stored_as``); returns
    ``manifest`` stamped with its new version. Raises ``PublishConflict`` when another writer
    published meanwhile."""
    tag = dest.replace(manifest_rel(manifest.tenant), manifest.to_json(), expect=manifest.stored_as)
    return replace(manifest, stored_as=tag)
