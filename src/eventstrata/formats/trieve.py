"""Trieve analytics ``EventData`` (seeds 000/001) ⇄ the canonical event. Pure.

Mapping (input field → canonical):

==================  ==========================================================================
``id``              ``id`` (string/integer; missing → derived from the content)
``dataset_id``      the tenant when no ``es-tenant`` header is given; if the header names
                    another tenant the original value is kept in ``vendor["dataset_id"]``
``event_type``      ``type`` — REQUIRED non-empty string
``event_name``      ``name`` (optional string; rendered as ``event_type`` when absent)
``created_at``      ``timestamp`` — REQUIRED (ISO 8601 or epoch ms)
``updated_at``      ``vendor["updated_at"]`` (epoch ms) only when it differs from ``created_at``
``items``           ``items`` (list of strings)
``is_conversion``   ``is_conversion`` (boolean or null)
``metadata``        ``metadata`` (any JSON value; the seed example uses a string)
``request_id``      ``request_id`` (string or null)
``request_type``    ``vendor["request_type"]`` (pass-through)
``user_id``         ``user_id`` (string/integer or null)
anything else       ``vendor["extra"]``
==================  ==========================================================================

Trieve has no source, session, user object or data: those stay empty.

``render`` (works for an event of any format) emits every ``EventData`` field: ``dataset_id`` is
the tenant, ``created_at``/``updated_at`` are ISO 8601 UTC with ``Z`` in the seed's style
(``2021-08-10T00:00:00Z``; milliseconds only when non-zero), ``event_name`` falls back to the
type, absent nullable fields are ``null``.
"""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import (
    Invalid,
    all_str,
    event_id,
    extras,
    opt_bool,
    opt_str,
    opt_user_id,
    put_extra,
    req_str,
    req_ts,
    str_items,
    ts_value,
    vendor_time,
)
from eventstrata.model import MAX_ID_LEN, Event, InvalidEvent, make_event

KNOWN = frozenset(
    {
        "id", "event_type", "event_name", "items", "dataset_id", "created_at", "updated_at",
        "is_conversion", "metadata", "request_id", "request_type", "user_id",
    }
)


def to_event(obj: dict[str, Any], tenant: str, store: str, now_ms: int) -> Event | InvalidEvent:
    """Map a Trieve ``EventData`` object onto the canonical event (see module docstring).
    ``tenant``/``store`` are resolved by ``normalize``; ``received_at = now_ms``. Never raises.
    Hot path, written to the conventions of ``formats.common`` ("Speed")."""
    try:
        g = obj.get
        etype = g("event_type")
        if type(etype) is not str or not etype:
            etype = req_str(obj, "event_type")
        created = g("created_at")
        ts = req_ts(obj, "created_at")
        vendor: dict[str, Any] = {}
        updated = g("updated_at")
        if updated is not None and updated != created:
            updated_ms = ts_value(updated, "updated_at")
            if updated_ms != ts:
                vendor["updated_at"] = updated_ms
        request_type = g("request_type")
        if request_type is not None:
            if type(request_type) is not str:
                opt_str(obj, "request_type")
            vendor["request_type"] = request_type
        dataset = g("dataset_id")
        if dataset is not None and dataset != tenant:
            vendor["dataset_id"] = dataset
        extra = extras(obj, KNOWN)
        if extra:
            vendor["extra"] = extra
        eid = g("id")
        if type(eid) is not str or not 0 < len(eid) <= MAX_ID_LEN:
            eid = event_id(obj, "id", tenant, "trieve", store)
        name = g("event_name")
        if name is not None and type(name) is not str:
            opt_str(obj, "event_name")
        user_id = g("user_id")
        if user_id is not None and (type(user_id) is not str or not 0 < len(user_id) <= MAX_ID_LEN):
            user_id = opt_user_id(user_id, "user_id")
        request_id = g("request_id")
        if request_id is not None and type(request_id) is not str:
            opt_str(obj, "request_id")
        conv = g("is_conversion")
        if conv is not None and conv is not True and conv is not False:
            opt_bool(obj, "is_conversion")
        items = g("items")
        items = tuple(items) if type(items) is list and all_str(items) else str_items(obj, "items")
        return make_event(
            eid, tenant, etype, ts, now_ms, "trieve", name, user_id,
            None, None, None, None, None, None,  # source, session/stream ids, positions, transaction
            request_id, conv, store, items, {}, {}, g("metadata"), vendor,
        )
    except Invalid as exc:
        return exc.invalid()


def render(event: Event) -> dict[str, Any]:
    """``event`` (any format) as a Trieve ``EventData`` object (see module docstring)."""
    vendor = event.vendor if event.format == "trieve" else {}
    out: dict[str, Any] = {
        "created_at": vendor_time(event.timestamp),
        "dataset_id": event.tenant,
        "event_name": event.name if event.name is not None else event.type,
        "event_type": event.type,
        "id": event.id,
        "is_conversion": event.is_conversion,
        "items": list(event.items),
        "metadata": event.metadata,
        "request_id": event.request_id,
        "request_type": vendor.get("request_type"),
        "updated_at": vendor_time(vendor.get("updated_at", event.timestamp)),
        "user_id": event.user_id,
    }
    return put_extra(out, vendor)
