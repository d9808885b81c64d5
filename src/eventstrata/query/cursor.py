"""Opaque, signed pagination cursors. Pure: the secret and every input are arguments.

Token = ``base64url(payload JSON) + "." + base64url(HMAC-SHA256(secret, payload)[:16])``.
The payload carries the sort position of the last event the previous page covered
(``k``: ``[ts, id]`` for sort=time, ``[gpos, id]`` for gpos, ``[spos, ts, id]`` for spos), the
watermark seen by the first page (``w``), order and sort, and a hash binding the cursor to the
tenant and the exact filter (``h``). A cursor whose signature, tenant, filter, order or sort does
not match raises ``ApiError(400, "invalid_cursor")`` — another tenant's cursor is
indistinguishable from a forged one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, fields
from typing import Any

import orjson

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.query.filters import EventFilter, Order, SortKey

SortPos = tuple[Any, ...]
_VERSION = 1
_SIG_BYTES = 16


@dataclass(frozen=True, slots=True)
class CursorState:
    """What a cursor remembers: continue strictly after ``position`` in ``order``."""

    position: SortPos
    watermark: int
    order: Order
    sort: SortKey


_FILTER_FIELDS = tuple(f.name for f in fields(EventFilter))


def filter_hash(tenant: str, flt: EventFilter) -> str:
    """Stable hash of (tenant, filter) — identical filters hash equally in every process."""
    doc: dict[str, Any] = {"tenant": tenant}
    for name in _FILTER_FIELDS:
        doc[name] = getattr(flt, name)
    raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS, default=_default)
    return hashlib.sha256(raw).hexdigest()[:24]


def _default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(type(obj).__name__)


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(secret: bytes, tenant: str, flt: EventFilter, state: CursorState) -> str:
    """Sign ``state`` for (tenant, flt). Never raises for valid positions."""
    payload = orjson.dumps({
        "v": _VERSION,
        "k": list(state.position),
        "w": state.watermark,
        "o": state.order,
        "s": state.sort,
        "h": filter_hash(tenant, flt),
    })
    sig = hmac.new(secret, payload, hashlib.sha256).digest()[:_SIG_BYTES]
    return f"{_b64e(payload)}.{_b64e(sig)}"


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_cursor", message, (ErrorDetail("cursor", message),))


def decode_cursor(secret: bytes, token: str, tenant: str, flt: EventFilter, *,
                  order: Order, sort: SortKey) -> CursorState:
    """Verify and open ``token``. Raises ``ApiError(400, "invalid_cursor")`` when it is
    malformed, its signature is wrong, or it belongs to another tenant/filter/order/sort."""
    try:
        body, sig = token.split(".")
        payload = _b64d(body)
        got = _b64d(sig)
    except (ValueError, binascii.Error):
        raise _invalid("malformed cursor") from None
    want = hmac.new(secret, payload, hashlib.sha256).digest()[:_SIG_BYTES]
    if not hmac.compare_digest(want, got):
        raise _invalid("cursor signature does not verify")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise _invalid("malformed cursor") from None
    if not isinstance(doc, dict) or doc.get("v") != _VERSION:
        raise _invalid("unsupported cursor version")
    if doc.get("h") != filter_hash(tenant, flt):
        raise _invalid("cursor belongs to a different query (filters or credentials changed)")
    if doc.get("o") != order or doc.get("s") != sort:
        raise _invalid("cursor was issued for a different order or sort")
    pos = doc.get("k")
    w = doc.get("w")
    if not isinstance(pos, list) or not isinstance(w, int):
        raise _invalid("malformed cursor")
    return CursorState(tuple(pos), w, order, sort)
