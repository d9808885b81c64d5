"""Raw Kafka message (value bytes + headers) → canonical ``Event`` or ``InvalidEvent``. Pure.

The ingest hot path: no I/O, no clock (``now_ms`` is an argument), no pydantic; one
``orjson.loads`` and direct dict access. ``normalize`` never raises, whatever the bytes and
headers: bad input comes back as an ``InvalidEvent`` whose ``code`` is one of
``model.INVALID_CODES`` and whose message names the problem (and the field).

Steps, in order (the first failure wins):

1. size: ``len(value) > max_bytes`` → ``oversize``;
2. ``orjson.loads`` → ``malformed_json``; a non-object → ``not_an_object``; nesting deeper than
   ``common.MAX_DEPTH`` (64) → ``oversize``;
3. format: header ``es-format`` (``native|trieve|thisdata|fluidtopics|eventstore``, case and
   surrounding blanks ignored; anything else → ``unknown_format``), else detected from the
   shape (``detect.py``; none or ambiguous → ``unknown_format``);
4. tenant: header ``es-tenant``, else the body's own tenant field (native ``tenant``, Trieve
   ``dataset_id``, Fluid Topics ``tenantId``), else → ``bad_tenant``; it must match
   ``model.TENANT_RE`` (``bad_tenant``);
5. store: header ``es-store``, else the body's store field (event-store ``eventStoreName``,
   native ``store``), else ``"default"``; it must match ``model.STORE_RE`` (``bad_store``);
6. the format's adapter (``<format>.to_event``): ``missing_field`` / ``wrong_type`` /
   ``bad_id`` / ``bad_timestamp``;
7. the event time more than ``max_future_skew_ms`` after ``now_ms`` → ``future_timestamp``.

Headers are a mapping or a sequence of ``(name, value)`` pairs (aiokafka's form). Names are
matched case-insensitively; values are UTF-8 bytes (a ``str`` is accepted too; ``None`` means
absent); when a name repeats, the last value wins. An empty header value is not "absent": it
is validated (and fails). ``received_at`` is ``now_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from eventstrata.formats import eventstore, fluidtopics, native, thisdata, trieve
from eventstrata.formats.common import MAX_DEPTH, json_depth, json_type
from eventstrata.formats.detect import candidates
from eventstrata.model import FORMATS, STORE_RE, TENANT_RE, Event, Format, InvalidEvent

DEFAULT_MAX_BYTES = 262_144
DEFAULT_MAX_FUTURE_SKEW_MS = 86_400_000

FORMAT_HEADER = "es-format"
TENANT_HEADER = "es-tenant"
STORE_HEADER = "es-store"

Headers = Mapping[str, bytes] | Sequence[tuple[str, bytes]]
Adapter = Callable[[dict[str, Any], str, str, int], Event | InvalidEvent]

ADAPTERS: dict[Format, Adapter] = {
    "native": native.to_event,
    "trieve": trieve.to_event,
    "thisdata": thisdata.to_event,
    "fluidtopics": fluidtopics.to_event,
    "eventstore": eventstore.to_event,
}
#: The body field naming the tenant, per format (used when there is no es-tenant header).
BODY_TENANT: dict[Format, str] = {"native": "tenant", "trieve": "dataset_id", "fluidtopics": "tenantId"}
#: The body field naming the store, per format (used when there is no es-store header).
BODY_STORE: dict[Format, str] = {"native": "store", "eventstore": "eventStoreName"}

_FORMAT_BY_NAME: dict[str, Format] = {f: f for f in FORMATS}
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_tenant_ok = TENANT_RE.fullmatch  # fullmatch: '$' alone would let a trailing newline in
#: Memo of tenant ids already checked against TENANT_RE (only ever holds valid ones; bounded).
#: Pure in effect: it changes the speed of ``normalize``, never its answer.
_GOOD_TENANTS: set[str] = set()
_GOOD_TENANTS_MAX = 4096
_store_ok = STORE_RE.fullmatch


def _text(value: Any) -> str | None:
    """A header value as text; ``None`` when absent. Undecodable bytes keep a visible marker."""
    if value is None:
        return None
    if type(value) is bytes:
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.decode("utf-8", "replace")
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return repr(value)


def _careful_headers(pairs: Any) -> tuple[str | None, str | None, str | None]:
    """The three es- headers from anything iterable, skipping what is not a (str, value) pair."""
    found: dict[str, str | None] = {}
    try:
        items = list(pairs)
    except TypeError:
        items = []
    for pair in items:
        try:
            name, raw = pair
        except (TypeError, ValueError):
            continue
        if type(name) is str:
            key = name.lower()
            if key in (FORMAT_HEADER, TENANT_HEADER, STORE_HEADER):
                found[key] = _text(raw)
    return found.get(FORMAT_HEADER), found.get(TENANT_HEADER), found.get(STORE_HEADER)


def normalize(
    value: bytes,
    headers: Headers,
    *,
    now_ms: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> Event | InvalidEvent:
    """Normalize one message (see the module docstring for the rules). Never raises; pure."""
    if not value:  # b"" (or a Kafka tombstone's None)
        return InvalidEvent("malformed_json", "empty message: expected one JSON object")
    size = len(value)
    if size > max_bytes:
        return InvalidEvent("oversize", f"message is {size} bytes, more than the limit of {max_bytes}")
    try:
        obj = _loads(value)
    except _JSONDecodeError as exc:
        return InvalidEvent("malformed_json", f"not valid JSON: {exc}")
    if type(obj) is not dict:
        return InvalidEvent("not_an_object", f"expected a JSON object, got {json_type(obj)}")
    if (
        (value.count(b"{") + value.count(b"[") > MAX_DEPTH if isinstance(value, bytes | bytearray) else True)
        and json_depth(obj) > MAX_DEPTH
    ):
        return InvalidEvent("oversize", f"JSON nested deeper than {MAX_DEPTH} levels")

    h_format = h_tenant = h_store = None
    if headers:
        pairs: Any
        if type(headers) is tuple or type(headers) is list:
            pairs = headers
        elif isinstance(headers, Mapping):
            pairs = headers.items()
        else:
            pairs = headers
        try:
            for name, raw in pairs:
                if name == FORMAT_HEADER:
                    h_format = raw.decode() if type(raw) is bytes else _text(raw)
                elif name == TENANT_HEADER:
                    h_tenant = raw.decode() if type(raw) is bytes else _text(raw)
                elif name == STORE_HEADER:
                    h_store = raw.decode() if type(raw) is bytes else _text(raw)
                elif type(name) is str and name[:3].lower() == "es-":
                    key = name.lower()
                    if key == FORMAT_HEADER:
                        h_format = _text(raw)
                    elif key == TENANT_HEADER:
                        h_tenant = _text(raw)
                    elif key == STORE_HEADER:
                        h_store = _text(raw)
        except (TypeError, ValueError, AttributeError):
            # undecodable bytes, a pair that is not a pair, …: the careful path
            h_format, h_tenant, h_store = _careful_headers(pairs)

    # -- format ---------------------------------------------------------------------------------
    fmt: Format | None
    if h_format is not None:
        fmt = _FORMAT_BY_NAME.get(h_format) or _FORMAT_BY_NAME.get(h_format.strip().lower())
        if fmt is None:
            return InvalidEvent(
                "unknown_format", f"es-format header {h_format[:100]!r} is not one of {', '.join(FORMATS)}"
            )
    else:
        found = candidates(obj)
        if len(found) != 1:
            if found:
                msg = f"shape matches several formats ({', '.join(found)}); send the es-format header"
            else:
                msg = "shape matches no known format and there is no es-format header"
            return InvalidEvent("unknown_format", msg)
        fmt = found[0]

    # -- tenant ---------------------------------------------------------------------------------
    tenant: Any = h_tenant
    if tenant is None:
        field = BODY_TENANT.get(fmt)
        tenant = obj.get(field) if field is not None else None
        if tenant is None:
            extra = f" or {field!r} field" if field is not None else ""
            return InvalidEvent("bad_tenant", f"no tenant: no es-tenant header{extra}")
    if type(tenant) is not str or (tenant not in _GOOD_TENANTS and _tenant_ok(tenant) is None):
        where = "es-tenant header" if h_tenant is not None else f"field {BODY_TENANT.get(fmt)!r}"
        return InvalidEvent(
            "bad_tenant", f"{where}: tenant must be 1-64 of [A-Za-z0-9._-], got {_show(tenant)}"
        )
    if tenant not in _GOOD_TENANTS:
        if len(_GOOD_TENANTS) >= _GOOD_TENANTS_MAX:
            _GOOD_TENANTS.clear()
        _GOOD_TENANTS.add(tenant)

    # -- store ----------------------------------------------------------------------------------
    store: Any = h_store
    if store is None:
        field = BODY_STORE.get(fmt)
        store = obj.get(field) if field is not None else None
        if store is None:
            store = "default"
    if store != "default" and (type(store) is not str or _store_ok(store) is None):
        where = "es-store header" if h_store is not None else f"field {BODY_STORE.get(fmt)!r}"
        return InvalidEvent(
            "bad_store", f"{where}: store must be 1-128 of [A-Za-z0-9._-], got {_show(store)}"
        )

    # -- adapter --------------------------------------------------------------------------------
    event = ADAPTERS[fmt](obj, tenant, store, now_ms)
    if type(event) is Event and event.timestamp > now_ms + max_future_skew_ms:
        return InvalidEvent(
            "future_timestamp",
            f"event time {event.timestamp} ms is {event.timestamp - now_ms} ms after the time of "
            f"receipt (limit {max_future_skew_ms} ms)",
        )
    return event


def _show(value: Any) -> str:
    if type(value) is str:
        return repr(value[:80]) + ("…" if len(value) > 80 else "")
    return json_type(value)
