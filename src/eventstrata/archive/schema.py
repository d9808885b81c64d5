"""Columns of the Parquet archive. Pure.

Files live at ``<root>/tenant=<T>/date=<YYYY-MM-DD>/<name>.parquet`` and are listed in the
tenant's manifest (``<root>/tenant=<T>/_manifest.json``); a file not in the manifest is never
read. Rows are sorted by ``(user_id, ts, id)``. ``body`` is the canonical JSON
(``Event.to_json``) so that any event can be rebuilt exactly; the other columns exist for
filtering and pruning.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from eventstrata.model import Event

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("ts", pa.int64()),  # event time, epoch ms
        ("user_id", pa.string()),
        ("type", pa.string()),
        ("name", pa.string()),
        ("source", pa.string()),
        ("session_id", pa.string()),
        ("stream_id", pa.string()),
        ("stream_position", pa.int64()),
        ("global_position", pa.int64()),
        ("transaction_id", pa.string()),
        ("request_id", pa.string()),
        ("is_conversion", pa.bool_()),
        ("store", pa.string()),
        ("format", pa.string()),
        ("realm", pa.list_(pa.string())),
        ("groups", pa.list_(pa.string())),
        ("roles", pa.list_(pa.string())),
        ("received_at", pa.int64()),
        ("body", pa.string()),
    ]
)

SORT_KEYS = ("user_id", "ts", "id")

# How the columns map to ``Event``'s fields (tests/unit/test_event_shape.py holds every field of
# ``Event`` and every column of ``SCHEMA`` to this): a field has the column of its own name,
# except those named here.
COLUMN_OF_FIELD: dict[str, str] = {"timestamp": "ts"}
"""Fields whose column has another name."""
BODY_ONLY_FIELDS = frozenset({"tenant", "items", "user", "data", "metadata", "vendor"})
"""Fields without a column of their own, only in ``body``: the tenant is the file's partition
(``tenant=<T>``), the others are not filtered or pruned on by a column."""
DERIVED_COLUMNS: dict[str, str] = {
    "realm": "Event.realms (from user.realm)",
    "groups": "Event.groups (from user.groups)",
    "roles": "Event.roles (from user.roles)",
    "body": "Event.to_json: the whole event",
}
"""Columns that are not a field: what each holds."""


def event_row(event: Event) -> dict[str, Any]:
    """One archive row of ``event``."""
    return {
        "id": event.id,
        "ts": event.timestamp,
        "user_id": event.user_id,
        "type": event.type,
        "name": event.name,
        "source": event.source,
        "session_id": event.session_id,
        "stream_id": event.stream_id,
        "stream_position": event.stream_position,
        "global_position": event.global_position,
        "transaction_id": event.transaction_id,
        "request_id": event.request_id,
        "is_conversion": event.is_conversion,
        "store": event.store,
        "format": event.format,
        "realm": list(event.realms),
        "groups": list(event.groups),
        "roles": list(event.roles),
        "received_at": event.received_at,
        "body": event.to_json().decode("utf-8"),
    }
