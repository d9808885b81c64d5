"""Format detection from an object's shape, for messages without an ``es-format`` header. Pure.

Rules — only top-level keys are looked at; a format matches when the object has any of its
signature keys:

===============  ==============================================================
``trieve``       ``event_type``, ``event_name`` or ``dataset_id``
``thisdata``     ``verb`` or ``published``
``fluidtopics``  ``datetime``, ``tenantId`` or ``appName``
``eventstore``   ``streamId``, ``eventId`` or ``schemaVersion``
``native``       ``type`` together with ``timestamp`` or ``tenant``
===============  ==============================================================

Exactly one match → that format. None, or more than one (e.g. a native event that also has a
``verb`` field) → unknown (``normalize`` answers ``unknown_format`` naming the candidates):
guessing between two vendors would silently mis-map fields, so such producers must send the
``es-format`` header.
"""

from __future__ import annotations

from typing import Any

from eventstrata.model import Format


def candidates(obj: dict[str, Any]) -> list[Format]:
    """Every format whose signature matches ``obj``, in the table's order."""
    found: list[Format] = []
    if "event_type" in obj or "event_name" in obj or "dataset_id" in obj:
        found.append("trieve")
    if "verb" in obj or "published" in obj:
        found.append("thisdata")
    if "datetime" in obj or "tenantId" in obj or "appName" in obj:
        found.append("fluidtopics")
    if "streamId" in obj or "eventId" in obj or "schemaVersion" in obj:
        found.append("eventstore")
    if "type" in obj and ("timestamp" in obj or "tenant" in obj):
        found.append("native")
    return found


def detect_format(obj: dict[str, Any]) -> Format | None:
    """The one format matching ``obj``'s shape, or ``None`` when none or several match."""
    found = candidates(obj)
    return found[0] if len(found) == 1 else None
