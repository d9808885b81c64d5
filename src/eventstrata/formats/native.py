"""The native format: eventstrata's own event JSON. Pure.

Input (one JSON object; every field not listed as required may be absent or ``null``)::

    {
      "id": "7f3c…",                 # optional string (or integer → its decimal string),
                                     #   1..512 chars; missing → derived from the content
      "tenant": "acme",              # required unless the es-tenant header is set (header wins)
      "type": "purchase",            # REQUIRED non-empty string
      "timestamp": "2024-05-01T12:00:00.123Z",   # REQUIRED: ISO 8601 (offset optional, none = UTC)
                                     #   or epoch milliseconds (number or digit string)
      "name": "Purchased", "user_id": "u1", "source": "web", "session_id": "s1",
      "stream_id": "order-1", "transaction_id": "tx1", "request_id": "r1",  # strings
      "is_conversion": true,         # boolean
      "store": "default",            # event-store namespace; the es-store header wins
      "items": ["sku-1"],            # list of strings
      "user": {"realm": [], "groups": [], "roles": []},   # object (realm/groups/roles: lists)
      "data": {…},                   # object
      "metadata": …                  # any JSON value
    }

``user_id`` may be a string or an integer (→ string). The service-assigned fields that
``render`` emits — ``received_at``, ``timestamp_ms``, ``global_position``, ``stream_position``
and ``format`` — are accepted and ignored, so a rendered native event can be published again
unchanged (its positions are the product's, never the producer's). Any other unknown field is
kept in ``Event.vendor["extra"]`` (stored, not shown by ``render``).

Output (``render``, the native API's JSON): ``Event.to_dict()`` without ``vendor``, with
``timestamp`` and ``received_at`` as ISO 8601 UTC strings with milliseconds and ``Z``
(``timeutil.format_ms``) and ``timestamp_ms`` = the event time in epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import (
    Invalid,
    all_str,
    event_id,
    extras,
    iso_ms,
    opt_bool,
    opt_dict,
    opt_str,
    opt_user_id,
    req_str,
    req_ts,
    str_items,
    user_list_fields,
)
from eventstrata.model import EVENT_FIELDS, MAX_ID_LEN, Event, InvalidEvent, make_event

SERVICE_ASSIGNED = frozenset({"received_at", "timestamp_ms", "global_position", "stream_position", "format"})
"""Fields ``render`` emits that the service assigns: accepted on input and ignored."""
KNOWN = frozenset(f for f in EVENT_FIELDS if f != "vendor") | SERVICE_ASSIGNED
"""Every field of the native shape: ``Event``'s but ``vendor``, and ``timestamp_ms``."""
_OPT_STR = ("name", "source", "session_id", "stream_id", "transaction_id", "request_id")


def to_event(obj: dict[str, Any], tenant: str, store: str, now_ms: int) -> Event | InvalidEvent:
    """Map a native object onto the canonical event. ``tenant``/``store`` are already resolved
    and validated by ``normalize``; ``received_at = now_ms``. Never raises.
    Hot path, written to the conventions of ``formats.common`` ("Speed")."""
    try:
        g = obj.get
        etype = g("type")
        if type(etype) is not str or not etype:
            etype = req_str(obj, "type")
        ts = req_ts(obj, "timestamp")
        user = g("user")
        if user is None:
            user = {}
        elif type(user) is dict:
            if user:
                user_list_fields(user, "user")
        else:
            opt_dict(obj, "user")
        data = g("data")
        if data is None:
            data = {}
        elif type(data) is not dict:
            opt_dict(obj, "data")
        for key in _OPT_STR:
            v = g(key)
            if v is not None and type(v) is not str:
                opt_str(obj, key)
        eid = g("id")
        if type(eid) is not str or not 0 < len(eid) <= MAX_ID_LEN:
            eid = event_id(obj, "id", tenant, "native", store)
        user_id = g("user_id")
        if user_id is not None and (type(user_id) is not str or not 0 < len(user_id) <= MAX_ID_LEN):
            user_id = opt_user_id(user_id, "user_id")
        conv = g("is_conversion")
        if conv is not None and conv is not True and conv is not False:
            opt_bool(obj, "is_conversion")
        items = g("items")
        items = tuple(items) if type(items) is list and all_str(items) else str_items(obj, "items")
        extra = extras(obj, KNOWN)
        return make_event(
            eid, tenant, etype, ts, now_ms, "native", g("name"), user_id, g("source"), g("session_id"),
            g("stream_id"), None, None, g("transaction_id"), g("request_id"), conv, store, items,
            user, data, g("metadata"), {"extra": extra} if extra else {},
        )
    except Invalid as exc:
        return exc.invalid()


def render(event: Event) -> dict[str, Any]:
    """The native API's JSON for ``event`` (any format): see the module docstring."""
    ts = event.timestamp
    return {
        "id": event.id,
        "tenant": event.tenant,
        "type": event.type,
        "name": event.name,
        "user_id": event.user_id,
        "timestamp": iso_ms(ts),
        "timestamp_ms": ts,
        "received_at": iso_ms(event.received_at),
        "source": event.source,
        "session_id": event.session_id,
        "stream_id": event.stream_id,
        "stream_position": event.stream_position,
        "global_position": event.global_position,
        "transaction_id": event.transaction_id,
        "request_id": event.request_id,
        "is_conversion": event.is_conversion,
        "store": event.store,
        "items": list(event.items),
        "user": event.user,
        "data": event.data,
        "metadata": event.metadata,
        "format": event.format,
    }
