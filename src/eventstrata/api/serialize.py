"""The native JSON shape of an event: the canonical ``Event.to_dict`` with times as ISO 8601
UTC strings (``…Z``, millisecond precision) and without the internal ``vendor`` block. Pure."""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import iso_ms  # timeutil.format_ms, faster (property-tested)
from eventstrata.model import Event


def native_event(e: Event) -> dict[str, Any]:
    """``Event.to_dict`` without ``vendor``, with ISO times; built directly (no intermediate
    dict: this runs once per event of every page)."""
    return {
        "id": e.id,
        "tenant": e.tenant,
        "type": e.type,
        "name": e.name,
        "user_id": e.user_id,
        "timestamp": iso_ms(e.timestamp),
        "received_at": iso_ms(e.received_at),
        "source": e.source,
        "session_id": e.session_id,
        "stream_id": e.stream_id,
        "stream_position": e.stream_position,
        "global_position": e.global_position,
        "transaction_id": e.transaction_id,
        "request_id": e.request_id,
        "is_conversion": e.is_conversion,
        "store": e.store,
        "items": list(e.items),
        "user": e.user,
        "data": e.data,
        "metadata": e.metadata,
        "format": e.format,
    }
