"""The native JSON shape of an event: the canonical ``Event.to_dict`` with times as ISO 8601
UTC strings (``…Z``, millisecond precision) and without the internal ``vendor`` block. Pure."""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import iso_ms  # timeutil.format_ms, 4x faster (property-tested)
from eventstrata.model import Event


def native_event(e: Event) -> dict[str, Any]:
    d = e.to_dict()
    d.pop("vendor", None)
    d["timestamp"] = iso_ms(e.timestamp)
    d["received_at"] = iso_ms(e.received_at)
    return d
