"""ThisData events (the ``results`` items of ``GET /v1/events``, seed 002) ⇄ the canonical event.
Pure.

Mapping (input field → canonical):

=================  ===========================================================================
``id``             ``id`` (string/integer; missing → derived from the content)
``verb``           ``type`` — REQUIRED non-empty string (ThisData has no separate name)
``published``      ``timestamp`` — REQUIRED (ISO 8601 or epoch ms)
``user``           ``user`` (object or null, kept whole: ``name``, ``id``, …);
                   ``user_id`` = ``user.id`` (string/integer or null)
``session``        ``session_id`` = ``session.id`` when ``session`` is an object, or
                   ``session`` itself when it is a string; the original value is kept in
                   ``vendor["session"]``
``source_name``    ``source`` (string or null; the POST /events ``source.name`` that the
                   seed's ``source_name`` filter refers to)
``device``, ``location``, ``overall_score``, ``raw``
                   ``vendor[...]`` pass-through (any JSON value; ``null`` not stored)
anything else      ``vendor["extra"]``
=================  ===========================================================================

The tenant always comes from the ``es-tenant`` header (ThisData events carry none).

``render`` (works for an event of any format) emits ``published`` (ISO 8601 UTC with
milliseconds and ``Z``, as the seed), ``verb``, ``device``, ``location``, ``session``,
``overall_score``, ``id``, ``user``, ``raw`` — ``null`` where unknown — and ``source_name``
only when the event has a source. For an event of another format ``session`` is
``{"id": session_id}`` and ``user`` is ``{"id": user_id}`` (plus ``name`` when known).
"""

from __future__ import annotations

from typing import Any

from eventstrata.formats.common import (
    Invalid,
    event_id,
    iso_ms,
    json_type,
    opt_str,
    opt_user_id,
    put_extra,
    req_str,
    req_ts,
    user_and_id,
    vendor_block,
)
from eventstrata.model import MAX_ID_LEN, Event, InvalidEvent, make_event

KNOWN = frozenset(
    {"id", "published", "verb", "device", "location", "session", "overall_score", "user", "raw",
     "source_name"}
)
PASSTHROUGH = ("device", "location", "session", "overall_score", "raw")


def to_event(obj: dict[str, Any], tenant: str, store: str, now_ms: int) -> Event | InvalidEvent:
    """Map a ThisData event object onto the canonical event (see module docstring).
    ``tenant``/``store`` are resolved by ``normalize``; ``received_at = now_ms``. Never raises.
    Hot path, written to the conventions of ``formats.common`` ("Speed")."""
    try:
        g = obj.get
        etype = g("verb")
        if type(etype) is not str or not etype:
            etype = req_str(obj, "verb")
        ts = req_ts(obj, "published")
        user, user_id = user_and_id(obj, lists=False)
        session = g("session")
        session_id: Any
        if session is None or type(session) is str:
            session_id = session
        elif type(session) is dict:
            session_id = session.get("id")
            if session_id is not None and type(session_id) is not str:
                session_id = opt_user_id(session_id, "session.id")
        else:
            raise Invalid("wrong_type", f"field 'session' must be an object, a string or null, "
                                        f"got {json_type(session)}")
        source = g("source_name")
        if source is not None and type(source) is not str:
            opt_str(obj, "source_name")
        vendor = vendor_block(obj, PASSTHROUGH, KNOWN)
        eid = g("id")
        if type(eid) is not str or not 0 < len(eid) <= MAX_ID_LEN:
            eid = event_id(obj, "id", tenant, "thisdata", store)
        return make_event(
            eid, tenant, etype, ts, now_ms, "thisdata", None, user_id, source, session_id,
            None, None, None, None, None, None,  # stream id, positions, transaction, request, conversion
            store, (), user, {}, None, vendor,
        )
    except Invalid as exc:
        return exc.invalid()


def render(event: Event) -> dict[str, Any]:
    """``event`` (any format) as a ThisData event object (see module docstring)."""
    own = event.format == "thisdata"
    vendor = event.vendor if own else {}
    session: Any
    user: Any
    if own:
        session = vendor.get("session")
        user = event.user or None
    else:
        session = {"id": event.session_id} if event.session_id is not None else None
        user = None
        if event.user_id is not None:
            user = {"id": event.user_id}
            name = event.user.get("name")
            if name is not None:
                user["name"] = name
    out: dict[str, Any] = {
        "published": iso_ms(event.timestamp),
        "verb": event.type,
        "device": vendor.get("device"),
        "location": vendor.get("location"),
        "session": session,
        "overall_score": vendor.get("overall_score"),
        "id": event.id,
        "user": user,
        "raw": vendor.get("raw"),
    }
    if event.source is not None:
        out["source_name"] = event.source
    return put_extra(out, vendor)
