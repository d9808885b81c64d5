"""``POST /v1/ingest``: a request body → the messages to publish and the rejected events. Pure.

The body is a JSON array of events or NDJSON (one event per line; blank lines are skipped),
optionally gzip-compressed (``Content-Encoding: gzip``). Each event is an object of any of the
five input formats, or an envelope ``{"format": F, "event": {...}}`` naming its format; the
request's ``format`` (query parameter) names the format of the others; an event that names
none has its format detected from its shape, as the ingest worker does.

Every event is checked here exactly as the ingest worker will normalize it
(``formats.normalize``, with the key's tenant in the ``es-tenant`` header), so the answer says
which events will be stored and, for the others, the same error codes the dead-letter topic
uses. An event whose body names another tenant than the key's (native ``tenant``, Trieve
``dataset_id``, Fluid Topics ``tenantId``) fails the whole request (400 ``tenant_mismatch``):
a key only ever writes its own tenant.

Published messages carry the event's bytes (an NDJSON line as sent; an array element or an
envelope's event as ``orjson`` writes it), the headers ``es-format`` (the resolved format) and
``es-tenant``, and the key ``<tenant>:<user id>`` (per-user ordering, like ``eventstrata
produce``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.formats.common import MAX_DEPTH
from eventstrata.formats.normalize import BODY_TENANT, normalize
from eventstrata.model import FORMATS, Event, InvalidEvent
from eventstrata.produce import HEADER_FORMAT, HEADER_TENANT, Outgoing

ENVELOPE_KEYS = frozenset({"format", "event"})


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event that will be stored: its index in the request, its id, the message to send."""

    index: int
    id: str
    message: Outgoing


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that will not be stored: its index, the dead-letter code and message."""

    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Limits:
    """``max_bytes``: the body after decompression; ``max_events`` per request;
    ``max_event_bytes`` and ``max_future_skew_ms`` as the worker applies them."""

    max_bytes: int
    max_events: int
    max_event_bytes: int
    max_future_skew_ms: int


def too_large(what: str, limit: int) -> ApiError:
    """The 413 of a request holding more than ``limit`` ``what`` (bytes, events)."""
    return ApiError(413, "payload_too_large", f"the request holds more than {limit:,} {what}",
                    (ErrorDetail("body", f"at most {limit:,} {what}"),))


def _bad_body(message: str) -> ApiError:
    return ApiError(400, "invalid_body", message, (ErrorDetail("body", message),))


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The request's bytes, gunzipped when ``content_encoding`` is ``gzip``. Raises
    ``ApiError`` 413 beyond ``max_bytes`` (compressed or not; decompression stops there),
    400 for a corrupt gzip stream, 415 for another encoding."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > max_bytes:
            raise too_large("bytes", max_bytes)
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported",
                       (ErrorDetail("Content-Encoding", "use gzip or none"),))
    if len(body) > max_bytes:
        raise too_large("bytes", max_bytes)
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, max_bytes + 1)
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise too_large("bytes once decompressed", max_bytes)
        if not inflater.eof:
            raise _bad_body("the gzip stream ends early")
    except zlib.error as exc:
        raise _bad_body(f"corrupt gzip body: {exc}") from None
    return out


TOO_DEEP = object()
"""The ``parsed`` of an event nested too deep to serialize again (rejected as ``oversize``)."""


def _dumped(value: Any) -> bytes | None:
    """``value`` as JSON bytes; None when it is nested deeper than orjson serializes (255)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return None


def split_events(raw: bytes, max_events: int, *, json_declared: bool = False) -> list[tuple[bytes, Any]]:
    """The events of a body: ``(bytes, parsed)`` per event; ``parsed`` is the object of an
    array element and ``None`` for an NDJSON line (parsed later, where a bad line becomes a
    rejected event). ``json_declared`` (a ``Content-Type`` of JSON): the body must be JSON, a
    JSON array of events or one event object (NDJSON is ``application/x-ndjson``). Raises
    ``ApiError`` 400 for an unparseable array, a JSON-declared body that is neither, or an
    empty body; 413 beyond ``max_events``."""
    text = raw.lstrip()
    if text[:1] == b"[" or json_declared:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _bad_body(f"the body is not JSON (NDJSON is sent as application/x-ndjson): {exc}") from None
        if isinstance(parsed, dict):
            parsed = [parsed]  # one event object
        elif not isinstance(parsed, list):
            raise _bad_body("the body is neither a JSON array of events nor one event object")
        items: list[Any] = parsed
        if len(items) > max_events:
            raise too_large("events", max_events)
        out: list[tuple[bytes, Any]] = []
        for item in items:
            value = _dumped(item)
            out.append((b"", TOO_DEEP) if value is None else (value, item))
        return out
    lines = [line.strip() for line in raw.split(b"\n")]
    events: list[tuple[bytes, Any]] = [(line, None) for line in lines if line]
    if len(events) > max_events:
        raise too_large("events", max_events)
    if not events:
        raise _bad_body("no events: send a JSON array or one JSON object per line")
    return events


def _envelope(value: bytes, parsed: Any) -> tuple[bytes, Any, str | None]:
    """``(event bytes, parsed event, format)`` of an envelope, else the input with no format
    (``TOO_DEEP`` as it came, or for an envelope whose event is too deep)."""
    if parsed is TOO_DEEP:
        return value, parsed, None
    if parsed is None:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value, None, None
    if isinstance(parsed, dict) and parsed.keys() == ENVELOPE_KEYS and isinstance(parsed["event"], dict):
        fmt = parsed["format"]
        event = _dumped(parsed["event"])
        if event is None:
            return b"", TOO_DEEP, None
        return event, parsed["event"], fmt if isinstance(fmt, str) else ""
    return value, parsed, None


def check_events(events: list[tuple[bytes, Any]], *, tenant: str, fmt: str | None, now_ms: int,
                 limits: Limits) -> tuple[list[Accepted], list[Rejected]]:
    """Normalize every event as the worker will (``now_ms`` is the clock); accepted ones become
    messages. Raises ``ApiError`` 400 ``tenant_mismatch`` when an event's body names another
    tenant, 400 for an unknown request ``fmt``."""
    if fmt is not None and fmt.strip().lower() not in FORMATS:
        raise ApiError(400, "invalid_parameter", f"unknown format {fmt!r}",
                       (ErrorDetail("format", f"one of {', '.join(FORMATS)}"),))
    tenant_header = (HEADER_TENANT, tenant.encode())
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    for index, (value0, parsed0) in enumerate(events):
        value, parsed, own = _envelope(value0, parsed0)
        if parsed is TOO_DEEP:
            rejected.append(Rejected(index, "oversize", f"JSON nested deeper than {MAX_DEPTH} levels"))
            continue
        name = own if own is not None else fmt
        headers = [tenant_header] if name is None else [tenant_header, (HEADER_FORMAT, name.encode())]
        ev = normalize(value, headers, now_ms=now_ms, max_bytes=limits.max_event_bytes,
                       max_future_skew_ms=limits.max_future_skew_ms)
        if isinstance(ev, InvalidEvent):
            rejected.append(Rejected(index, ev.code, ev.message))
            continue
        _check_tenant(ev, parsed, tenant, index)
        key = None if ev.user_id is None else f"{tenant}:{ev.user_id}".encode()
        message = Outgoing(value, (tenant_header, (HEADER_FORMAT, ev.format.encode())), key)
        accepted.append(Accepted(index, ev.id, message))
    return accepted, rejected


def _check_tenant(ev: Event, parsed: Any, tenant: str, index: int) -> None:
    field = BODY_TENANT.get(ev.format)
    named = parsed.get(field) if field is not None and isinstance(parsed, dict) else None
    if named is not None and named != tenant:
        raise ApiError(400, "tenant_mismatch", f"event {index} names another tenant than the key's",
                       (ErrorDetail(f"[{index}].{field}", "must be the key's tenant or absent"),))
