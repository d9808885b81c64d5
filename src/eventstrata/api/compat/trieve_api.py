"""Trieve analytics (seeds 000/001): request parsing and response envelope. Pure.

``POST /api/analytics/events/all`` body ``{filter: {date_range: {gt, gte, lt, lte}, event_type,
is_conversion, metadata_filter, user_id}, page}`` → ``{events: [EventData]}``; pages are 1-based,
10 events per page, newest first (created_at desc, id as tie-breaker). Errors are
``{"message": ...}`` (the seed's ``ErrorResponseBody``). Decisions are in docs/COMPATIBILITY.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from eventstrata.api.compat.parsing import MAX_WINDOW, CompatError, OffsetQuery, bearer_token
from eventstrata.formats.common import loads_bounded
from eventstrata.model import TENANT_RE
from eventstrata.query.filters import EventFilter
from eventstrata.timeutil import parse_time_ms

PAGE_SIZE = 10
MAX_PAGE = MAX_WINDOW // PAGE_SIZE  # 1000: rows 9991..10000
EVENT_TYPES: tuple[str, ...] = ("view", "filter_clicked", "click", "add_to_cart", "purchase")
_PATH_PART = re.compile(r"^[A-Za-z0-9_$\-]+$")

UNAUTHORIZED_BODY: dict[str, Any] = {"message": "Unauthorized"}
NOT_FOUND_BODY: dict[str, Any] = {"message": "Event not found"}


def bad_request(message: str) -> CompatError:
    return CompatError(400, {"message": message})


def unauthorized() -> CompatError:
    return CompatError(401, dict(UNAUTHORIZED_BODY))


def not_found() -> CompatError:
    return CompatError(404, dict(NOT_FOUND_BODY))


def parse_auth(authorization: str | None, dataset: str | None) -> tuple[str, str]:
    """``(key, dataset)`` from the ``Authorization`` (``<key>`` or ``Bearer <key>``) and
    ``TR-Dataset`` headers. Raises ``CompatError`` 401 without a key, 400 without a valid
    dataset header. The caller must still check the key and that its tenant == dataset (401)."""
    key = bearer_token(authorization, bare_allowed=True)
    if key is None:
        raise unauthorized()
    if dataset is None or not dataset.strip():
        raise bad_request("TR-Dataset header is required")
    ds = dataset.strip()
    if not TENANT_RE.match(ds):
        raise bad_request("TR-Dataset header is not a valid dataset id")
    return key, ds


def parse_metadata_filter(text: str) -> tuple[tuple[str, ...], Any]:
    """``path.attr = "value"`` → ``(("path", "attr"), "value")``. The right side is a JSON
    literal (string, number, boolean, null, array or object). Raises ``CompatError`` 400."""
    left, sep, right = text.partition("=")
    if not sep:
        raise bad_request('metadata_filter must look like path.attribute = "value"')
    path_text = left.strip()
    parts = tuple(path_text.split(".")) if path_text else ()
    if not parts or not all(_PATH_PART.match(p) for p in parts):
        raise bad_request(f"metadata_filter has an invalid path: {path_text!r}")
    literal = right.strip()
    try:
        value = loads_bounded(literal)
    except ValueError:  # malformed, or nested deeper than formats.common.MAX_DEPTH
        raise bad_request(
            f"metadata_filter value must be a JSON literal, e.g. \"value\": {literal!r}"
        ) from None
    return parts, value


def _date_bound(date_range: dict[str, Any], key: str) -> int | None:
    raw = date_range.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise bad_request(f"date_range.{key} must be a string")
    try:
        return parse_time_ms(raw)
    except ValueError as exc:
        raise bad_request(f"date_range.{key}: {exc}") from None


def parse_filter(raw: Any) -> EventFilter:
    """The ``filter`` object (``EventAnalyticsFilter``) → ``EventFilter``. ``None`` = no filter."""
    if raw is None:
        return EventFilter()
    if not isinstance(raw, dict):
        raise bad_request("filter must be an object")
    flt = EventFilter()
    dr = raw.get("date_range")
    if dr is not None:
        if not isinstance(dr, dict):
            raise bad_request("filter.date_range must be an object")
        since: int | None = None
        until: int | None = None
        gt, gte, lt, lte = (_date_bound(dr, k) for k in ("gt", "gte", "lt", "lte"))
        for lower in (gte, None if gt is None else gt + 1):
            if lower is not None:
                since = lower if since is None else max(since, lower)
        for upper in (lt, None if lte is None else lte + 1):
            if upper is not None:
                until = upper if until is None else min(until, upper)
        flt = replace(flt, since_ms=since, until_ms=until)
    et = raw.get("event_type")
    if et is not None:
        if not isinstance(et, str) or et not in EVENT_TYPES:
            allowed = ", ".join(f"`{t}`" for t in EVENT_TYPES)
            raise bad_request(f"filter.event_type: unknown variant `{et}`, expected one of {allowed}")
        flt = replace(flt, types=(et,))
    conv = raw.get("is_conversion")
    if conv is not None:
        if not isinstance(conv, bool):
            raise bad_request("filter.is_conversion must be a boolean")
        flt = replace(flt, is_conversion=conv)
    mf = raw.get("metadata_filter")
    if mf is not None:
        if not isinstance(mf, str):
            raise bad_request("filter.metadata_filter must be a string")
        flt = replace(flt, metadata_eq=(parse_metadata_filter(mf),))
    uid = raw.get("user_id")
    if uid is not None:
        if not isinstance(uid, str):
            raise bad_request("filter.user_id must be a string")
        flt = replace(flt, user_ids=(uid,))
    return flt


def parse_page(raw: Any) -> int:
    """``page`` → 1-based page number. ``None`` and ``0`` mean page 1 (the schema allows 0)."""
    if raw is None:
        return 1
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise bad_request("page must be an integer")
    if raw < 0:
        raise bad_request("page must be >= 0")
    if raw > MAX_PAGE:
        raise bad_request(f"page must be <= {MAX_PAGE}")
    return max(raw, 1)


def parse_events_body(raw: bytes) -> OffsetQuery:
    """The raw request body of ``POST /api/analytics/events/all`` → the query to run.

    Unknown fields are ignored (as serde does). Raises ``CompatError`` 400 with ``{message}``.
    """
    try:
        body = loads_bounded(raw) if raw.strip() else None
    except ValueError as exc:  # malformed, or nested deeper than formats.common.MAX_DEPTH
        raise bad_request(f"Json deserialize error: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("Json deserialize error: expected a JSON object")
    flt = parse_filter(body.get("filter"))
    page = parse_page(body.get("page"))
    offset = (page - 1) * PAGE_SIZE
    return OffsetQuery(
        flt=flt, order="desc", sort="time", limit=PAGE_SIZE, offset=offset, include_total=False
    )


def events_response(rendered: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``GetEventsResponseBody``."""
    return {"events": list(rendered)}
