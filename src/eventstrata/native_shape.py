"""The native JSON shape of an event (docs/API.md): the canonical ``Event.to_dict`` with times as ISO
8601 UTC strings (``…Z``, millisecond precision), without the internal ``vendor`` block, and
with the two positions last. Pure.

The positions come last because the hot tier stores each body's native part without them
(they are assigned inside the atomic write, after the body was encoded) and a read appends them
to those bytes (``hotstore.codec.BodyCodec.native_json``): both ways give the same bytes.
"""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import iso_ms  # timeutil.format_ms, faster (property-tested)
from eventstrata.model import Event


def native_fields(e: Event) -> dict[str, Any]:
    """The native shape of ``e`` without ``stream_position`` and ``global_position``: what the
    hot tier stores as a body's native part. Built directly (no intermediate dict)."""
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


def native_event(e: Event) -> dict[str, Any]:
    """The native shape of ``e``: ``native_fields`` then ``stream_position``, ``global_position``."""
    d = native_fields(e)
    d["stream_position"] = e.stream_position
    d["global_position"] = e.global_position
    return d

