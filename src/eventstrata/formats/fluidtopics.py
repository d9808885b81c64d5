"""Fluid Topics analytics events (the ``results`` items of seed 003) ⇄ the canonical event. Pure.

Mapping (input field → canonical):

=================  ===========================================================================
``id``             ``id`` (string/integer; missing → derived from the content)
``tenantId``       the tenant when no ``es-tenant`` header is given; if the header names
                   another tenant the original value is kept in ``vendor["tenantId"]``
``name``           ``type`` and ``name`` — REQUIRED non-empty string (Fluid Topics filters on
                   ``name``, the canonical ``type``)
``datetime``       ``timestamp`` — REQUIRED: epoch milliseconds (number, as in the seed's
                   example) or an ISO 8601 string
``user``           ``user`` (object or null, kept whole: ``id``, ``realm``, ``groups``,
                   ``roles``; those three must be lists, strings or null);
                   ``user_id`` = ``user.id`` (string/integer or null)
``sessionId``      ``session_id`` (string or null)
``appName``        ``source`` (string or null: "the application that sent the event")
``parameters``     ``data`` (object or null → ``{}``): "data collected by the event", so it is
                   filterable like any event's data
``appVersion``, ``contentLocale``, ``offline``, ``uiLocale``, ``userAgent``, ``userIp``
                   ``vendor[...]`` pass-through (any JSON value; ``null`` not stored)
anything else      ``vendor["extra"]``
=================  ===========================================================================

``render`` (works for an event of any format) emits every result field, ``null`` where unknown:
``datetime`` in epoch ms, ``tenantId`` = the tenant, ``name`` = the canonical ``type``,
``appName`` = ``source``, ``parameters`` = ``data``. For an event of another format ``user`` is
its user object with ``id`` = ``user_id`` added when missing.
"""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import (
    Invalid,
    event_id,
    opt_dict,
    opt_str,
    put_extra,
    req_str,
    req_ts,
    user_and_id,
    vendor_block,
)
from eventstrata.model import MAX_ID_LEN, Event, InvalidEvent, make_event

KNOWN = frozenset(
    {
        "appName", "appVersion", "contentLocale", "datetime", "id", "name", "offline", "parameters",
        "sessionId", "tenantId", "uiLocale", "user", "userAgent", "userIp",
    }
)
PASSTHROUGH = ("appVersion", "contentLocale", "offline", "uiLocale", "userAgent", "userIp")


def to_event(obj: dict[str, Any], tenant: str, store: str, now_ms: int) -> Event | InvalidEvent:
    """Map a Fluid Topics event object onto the canonical event (see module docstring).
    ``tenant``/``store`` are resolved by ``normalize``; ``received_at = now_ms``. Never raises.
    Hot path, written to the conventions of ``formats.common`` ("Speed")."""
    try:
        g = obj.get
        name = g("name")
        if type(name) is not str or not name:
            name = req_str(obj, "name")
        ts = req_ts(obj, "datetime")
        user, user_id = user_and_id(obj, lists=True)
        params = g("parameters")
        if params is None:
            params = {}
        elif type(params) is not dict:
            opt_dict(obj, "parameters")
        source = g("appName")
        if source is not None and type(source) is not str:
            opt_str(obj, "appName")
        session_id = g("sessionId")
        if session_id is not None and type(session_id) is not str:
            opt_str(obj, "sessionId")
        vendor = vendor_block(obj, PASSTHROUGH, KNOWN, "tenantId", tenant)
        eid = g("id")
        if type(eid) is not str or not 0 < len(eid) <= MAX_ID_LEN:
            eid = event_id(obj, "id", tenant, "fluidtopics", store)
        return make_event(
            eid, tenant, name, ts, now_ms, "fluidtopics", name, user_id, source, session_id,
            None, None, None, None, None, None,  # stream id, positions, transaction, request, conversion
            store, (), user, params, None, vendor,
        )
    except Invalid as exc:
        return exc.invalid()


def render(event: Event) -> dict[str, Any]:
    """``event`` (any format) as a Fluid Topics result object (see module docstring)."""
    own = event.format == "fluidtopics"
    vendor = event.vendor if own else {}
    user: Any
    if own:
        user = event.user or None
    else:
        user = dict(event.user)
        if event.user_id is not None and "id" not in user:
            user["id"] = event.user_id
        user = user or None
    out: dict[str, Any] = {
        "appName": event.source,
        "appVersion": vendor.get("appVersion"),
        "contentLocale": vendor.get("contentLocale"),
        "datetime": event.timestamp,
        "id": event.id,
        "name": event.type,
        "offline": vendor.get("offline"),
        "parameters": event.data,
        "sessionId": event.session_id,
        "tenantId": event.tenant,
        "uiLocale": vendor.get("uiLocale"),
        "user": user,
        "userAgent": vendor.get("userAgent"),
        "userIp": vendor.get("userIp"),
    }
    return put_extra(out, vendor)
