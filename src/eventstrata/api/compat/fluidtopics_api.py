"""Fluid Topics ``POST /analytics/api/v1/events`` and ``…/events/count`` (seed 003). Pure.

Body ``{startDate (required, inclusive, within the past year), endDate (exclusive, default now,
later than startDate), filters {name[], user {id[], realm[], group[], role[]}}, paging {page,
perPage} (both required when paging is present), sortOrder (latestFirst | oldestFirst,
case-insensitive)}``. Dates are ``YYYY-mm-dd``, ``YYYY-mm-ddTHH:MM`` or ``YYYY-mm-ddTHH:MM:SS``,
UTC. Response ``{startDate, endDate, paging {page, perPage, totalCount, lastPage}, results}``.
Errors are ``{"status", "error", "message"}``; decisions in docs/COMPATIBILITY.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventstrata.api.compat.parsing import MAX_PAGE_SIZE, MAX_WINDOW, CompatError, OffsetQuery, dedupe
from eventstrata.formats.common import loads_bounded
from eventstrata.query.filters import EventFilter, Order

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_PER_PAGE = MAX_PAGE_SIZE  # when no paging object is sent
MAX_PER_PAGE = MAX_PAGE_SIZE

UNAUTHORIZED_BODY: dict[str, Any] = {
    "status": 401,
    "error": "Unauthorized",
    "message": "The authorization header was not provided or is invalid.",
}


def bad_request(message: str) -> CompatError:
    return CompatError(400, {"status": 400, "error": "Bad Request", "message": message})


def unauthorized() -> CompatError:
    return CompatError(401, dict(UNAUTHORIZED_BODY))


@dataclass(frozen=True, slots=True)
class FtQuery:
    """A parsed events (or count) request. ``start_ms``/``end_ms`` = ``[startDate, endDate)``."""

    start_ms: int
    end_ms: int
    flt: EventFilter
    order: Order
    page: int
    per_page: int

    def offset_query(self, *, include_total: bool = True) -> OffsetQuery:
        return OffsetQuery(
            flt=self.flt,
            order=self.order,
            sort="time",
            limit=self.per_page,
            offset=(self.page - 1) * self.per_page,
            include_total=include_total,
        )


def _ms(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def format_date(ms: int) -> str:
    """Epoch ms → ``YYYY-mm-ddTHH:MM:SS`` (UTC, no zone), as the seed's response shows."""
    return _from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S")


def parse_date(raw: Any, name: str) -> int:
    """One of the three documented date formats (UTC) → epoch ms. Raises ``CompatError`` 400."""
    if not isinstance(raw, str) or not _DATE.match(raw):
        raise bad_request(f"{name} must be formatted as YYYY-mm-dd, YYYY-mm-ddTHH:MM or YYYY-mm-ddTHH:MM:SS")
    try:
        dt = datetime.fromisoformat(raw).replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"{name} is not a valid date: {raw!r}") from None
    return _ms(dt)


def one_year_before(now_ms: int) -> int:
    """The same calendar instant one year earlier (29 February → 28 February)."""
    now = _from_ms(now_ms)
    try:
        then = now.replace(year=now.year - 1)
    except ValueError:
        then = now.replace(year=now.year - 1, day=28)
    return _ms(then)


def _str_list(raw: Any, name: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise bad_request(f"{name} must be an array of strings")
    return dedupe(raw)


def parse_filters(raw: Any) -> EventFilter:
    """``filters {name[], user {id[], realm[], group[], role[]}}`` → ``EventFilter``."""
    if raw is None:
        return EventFilter()
    if not isinstance(raw, dict):
        raise bad_request("filters must be an object")
    user = raw.get("user")
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise bad_request("filters.user must be an object")
    return EventFilter(
        names=_str_list(raw.get("name"), "filters.name"),
        user_ids=_str_list(user.get("id"), "filters.user.id"),
        realms=_str_list(user.get("realm"), "filters.user.realm"),
        groups=_str_list(user.get("group"), "filters.user.group"),
        roles=_str_list(user.get("role"), "filters.user.role"),
    )


def _positive_int(raw: Any, name: str, hi: int) -> int:
    if raw is None:
        raise bad_request(f"{name} is required when paging is set")
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise bad_request(f"{name} must be an integer")
    if raw < 1:
        raise bad_request(f"{name} must be >= 1")
    if raw > hi:
        raise bad_request(f"{name} must be <= {hi}")
    return raw


def parse_sort_order(raw: Any) -> Order:
    if raw is None:
        return "desc"
    if not isinstance(raw, str):
        raise bad_request("sortOrder must be LatestFirst or OldestFirst")
    value = raw.strip().lower()
    if value == "latestfirst":
        return "desc"
    if value == "oldestfirst":
        return "asc"
    raise bad_request(f"sortOrder must be LatestFirst or OldestFirst, not {raw!r}")


def _load(raw: bytes) -> dict[str, Any]:
    try:
        body = loads_bounded(raw) if raw.strip() else None
    except ValueError as exc:  # malformed, or nested deeper than formats.common.MAX_DEPTH
        raise bad_request(f"Malformed JSON request body: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def parse_body(raw: bytes, *, now_ms: int, paging_allowed: bool = True) -> FtQuery:
    """The raw body of ``POST /analytics/api/v1/events`` (or ``…/count`` with
    ``paging_allowed=False``: paging and sortOrder are then ignored) → ``FtQuery``.

    Raises ``CompatError`` 400 when a required parameter is missing or malformed.
    """
    body = _load(raw)
    if body.get("startDate") is None:
        raise bad_request("startDate is required")
    start = parse_date(body["startDate"], "startDate")
    if start < one_year_before(now_ms) or start > now_ms:
        raise bad_request("startDate must be in the past year")
    end = now_ms if body.get("endDate") is None else parse_date(body["endDate"], "endDate")
    if end <= start:
        raise bad_request("endDate must be later than startDate")
    flt = parse_filters(body.get("filters"))
    flt = EventFilter(
        names=flt.names, user_ids=flt.user_ids, realms=flt.realms, groups=flt.groups, roles=flt.roles,
        since_ms=start, until_ms=end,
    )
    order: Order = "desc"
    page, per_page = 1, DEFAULT_PER_PAGE
    if paging_allowed:
        order = parse_sort_order(body.get("sortOrder"))
        paging = body.get("paging")
        if paging is not None:
            if not isinstance(paging, dict):
                raise bad_request("paging must be an object")
            page = _positive_int(paging.get("page"), "paging.page", MAX_WINDOW)
            per_page = _positive_int(paging.get("perPage"), "paging.perPage", MAX_PER_PAGE)
            if (page - 1) * per_page + per_page > MAX_WINDOW:
                raise bad_request(f"paging reaches past result {MAX_WINDOW}; narrow the period instead")
    return FtQuery(start_ms=start, end_ms=end, flt=flt, order=order, page=page, per_page=per_page)


def events_response(q: FtQuery, total: int, rendered: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{startDate, endDate, paging {page, perPage, totalCount, lastPage}, results}``."""
    return {
        "startDate": format_date(q.start_ms),
        "endDate": format_date(q.end_ms),
        "paging": {
            "page": q.page,
            "perPage": q.per_page,
            "totalCount": total,
            "lastPage": q.page * q.per_page >= total,
        },
        "results": list(rendered),
    }


def count_response(q: FtQuery, count: int) -> dict[str, Any]:
    """Events count service: ``{startDate, endDate, count}``."""
    return {"startDate": format_date(q.start_ms), "endDate": format_date(q.end_ms), "count": count}
