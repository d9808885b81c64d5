"""Event-store events (the ``events`` items of seed 004) ⇄ the canonical event. Pure.

Mapping (input field → canonical):

==================  ==========================================================================
``eventId``         ``id`` (string/integer; missing → derived from the content)
``type``            ``type`` — REQUIRED non-empty string
``streamId``        ``stream_id`` — REQUIRED non-empty string (stream positions need it)
``createdAt``       ``timestamp`` — REQUIRED (ISO 8601 or epoch ms)
``data``            ``data`` (object or null → ``{}``)
``metadata``        ``metadata`` (object or null)
``transactionId``   ``transaction_id`` (string or null)
``eventStoreName``  the store when no ``es-store`` header is given (``normalize`` resolves it;
                    default ``"default"``); if the header names another store the original
                    value is kept in ``vendor["eventStoreName"]``. Not rendered back: the
                    store is the ``{eventStoreName}`` of the endpoint's path
``schemaVersion``   ``vendor["schemaVersion"]`` (pass-through)
``streamPosition``, ``globalPosition``
                    NOT trusted as ours: kept as the producer's originals in
                    ``vendor["streamPosition"]`` / ``vendor["globalPosition"]``
anything else       ``vendor["extra"]``
==================  ==========================================================================

``user_id`` is taken from the payload, since event-store events have no user field:
``metadata.userId`` if it is a string or integer, else ``data.userId`` if it is one, else
``None`` (a ``userId`` of any other type is left alone, not an error: ``data`` is free-form).
The tenant comes from the ``es-tenant`` header.

``render`` (works for an event of any format) emits every field of the seed's event object:
``streamPosition``/``globalPosition`` are OUR positions (``Event.stream_position`` /
``global_position``, assigned by the hot store) once the event has a global position; before
that (an event not stored yet) the producer's originals for an event-store event, else ``null``.
``createdAt`` is ISO 8601 UTC with ``Z`` in the seed's style (milliseconds only when non-zero).
``schemaVersion`` defaults to ``"1.0.0"`` when the event has none. ``metadata`` is the
canonical metadata as it is (for other formats it may be a non-object, e.g. Trieve's string).
"""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import (
    Invalid,
    event_id,
    json_type,
    opt_dict,
    opt_str,
    put_extra,
    req_str,
    req_ts,
    vendor_block,
    vendor_time,
)
from eventstrata.model import MAX_ID_LEN, Event, InvalidEvent, make_event

KNOWN = frozenset(
    {
        "streamId", "streamPosition", "globalPosition", "eventId", "type", "data", "metadata",
        "schemaVersion", "transactionId", "createdAt", "eventStoreName",
    }
)
PASSTHROUGH = ("schemaVersion", "streamPosition", "globalPosition")
DEFAULT_SCHEMA_VERSION = "1.0.0"


def _user_id(container: dict[str, Any] | None) -> str | None:
    if container:
        v = container.get("userId")
        if type(v) is str:
            return v if v else None
        if type(v) is int:
            return str(v)
    return None


def to_event(obj: dict[str, Any], tenant: str, store: str, now_ms: int) -> Event | InvalidEvent:
    """Map an event-store event object onto the canonical event (see module docstring).
    ``tenant``/``store`` are resolved by ``normalize``; ``received_at = now_ms``. Never raises.
    Hot path, written to the conventions of ``formats.common`` ("Speed")."""
    try:
        g = obj.get
        etype = g("type")
        if type(etype) is not str or not etype:
            etype = req_str(obj, "type")
        stream_id = g("streamId")
        if type(stream_id) is not str or not stream_id:
            stream_id = req_str(obj, "streamId")
        ts = req_ts(obj, "createdAt")
        data = g("data")
        if data is None:
            data = {}
        elif type(data) is not dict:
            opt_dict(obj, "data")
        metadata = g("metadata")
        if metadata is not None and type(metadata) is not dict:
            raise Invalid(
                "wrong_type", f"field 'metadata' must be an object or null, got {json_type(metadata)}"
            )
        user_id = _user_id(metadata) or _user_id(data)
        transaction_id = g("transactionId")
        if transaction_id is not None and type(transaction_id) is not str:
            opt_str(obj, "transactionId")
        vendor = vendor_block(obj, PASSTHROUGH, KNOWN, "eventStoreName", store)
        eid = g("eventId")
        if type(eid) is not str or not 0 < len(eid) <= MAX_ID_LEN:
            eid = event_id(obj, "eventId", tenant, "eventstore", store)
        return make_event(
            eid, tenant, etype, ts, now_ms, "eventstore", None, user_id, None, None, stream_id,
            None, None, transaction_id, None, None, store, (), {}, data, metadata, vendor,
        )
    except Invalid as exc:
        return exc.invalid()


def render(event: Event) -> dict[str, Any]:
    """``event`` (any format) as an event-store event object (see module docstring)."""
    vendor = event.vendor if event.format == "eventstore" else {}
    if event.global_position is not None:  # stored: both positions are ours
        spos: Any = event.stream_position
        gpos: Any = event.global_position
    else:
        spos = vendor.get("streamPosition")
        gpos = vendor.get("globalPosition")
    out: dict[str, Any] = {
        "streamId": event.stream_id,
        "streamPosition": spos,
        "globalPosition": gpos,
        "eventId": event.id,
        "type": event.type,
        "data": event.data,
        "metadata": event.metadata,
        "schemaVersion": vendor.get("schemaVersion", DEFAULT_SCHEMA_VERSION),
        "transactionId": event.transaction_id,
        "createdAt": vendor_time(event.timestamp),
    }
    return put_extra(out, vendor)
