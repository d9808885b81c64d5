"""The native JSON shape of an event: the canonical ``Event.to_dict`` with times as ISO 8601
UTC strings (``…Z``, millisecond precision) and without the internal ``vendor`` block. Pure."""

from __future__ import annotations

from typing import Any

from eventstrata.model import Event
from eventstrata.timeutil import format_ms


def native_event(e: Event) -> dict[str, Any]:
    d = e.to_dict()
    d.pop("vendor", None)
    d["timestamp"] = format_ms(e.timestamp)
    d["received_at"] = format_ms(e.received_at)
    return d
