"""Event store ``GET /api/event-stores/{eventStoreName}/events`` (seed 004). Pure.

Query parameters are strings (as the seed declares them) validated like the service's own
schema validator: every problem is reported at once as ``{"error": "Invalid request body",
"details": [{"code", "message", "path"}]}`` (400). The store name is a namespace inside the
tenant (``EventFilter.store``). ``phase`` selects the storage tier (``all`` | ``hot`` |
``archived``) and ``includeArchived=false`` is the same as ``phase=hot``; see
docs/COMPATIBILITY.md for every default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from eventstrata.api.compat.parsing import (
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    CompatError,
    OffsetQuery,
    all_values,
    dedupe,
    last_values,
)
from eventstrata.model import STORE_RE
from eventstrata.query.filters import EventFilter, Order, SortKey
from eventstrata.timeutil import parse_time_ms

Phase = Literal["all", "hot", "archived"]
PHASES: tuple[Phase, ...] = ("all", "hot", "archived")
SORT_BY: dict[str, SortKey] = {"globalPosition": "gpos", "createdAt": "time", "streamPosition": "spos"}
DEFAULT_LIMIT = 100
MAX_LIMIT = MAX_PAGE_SIZE

UNAUTHORIZED_BODY: dict[str, Any] = {
    "error": "UNAUTHORIZED",
    "message": "Unauthorized: Organization ID not found in authentication context",
}


def unauthorized() -> CompatError:
    return CompatError(401, dict(UNAUTHORIZED_BODY))


@dataclass(frozen=True, slots=True)
class Issue:
    code: str
    message: str
    path: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "path": list(self.path)}


def invalid(issues: Sequence[Issue]) -> CompatError:
    return CompatError(400, {"error": "Invalid request body", "details": [i.to_dict() for i in issues]})


@dataclass(frozen=True, slots=True)
class EsQuery:
    """A parsed request: the engine query plus the tier selection applied with the watermark."""

    query: OffsetQuery
    phase: Phase

    def for_watermark(self, watermark_ms: int) -> OffsetQuery | None:
        """The query restricted to the selected tier given archive watermark W (events with
        time < W are archived). ``None`` when the selection is empty (nothing archived yet)."""
        flt = self.query.flt
        if self.phase == "hot":
            since = watermark_ms if flt.since_ms is None else max(flt.since_ms, watermark_ms)
            flt = replace(flt, since_ms=since)
        elif self.phase == "archived":
            if watermark_ms <= 0:
                return None
            until = watermark_ms if flt.until_ms is None else min(flt.until_ms, watermark_ms)
            flt = replace(flt, until_ms=until)
        if flt.since_ms is not None and flt.until_ms is not None and flt.until_ms <= flt.since_ms:
            return None
        return replace(self.query, flt=flt)


class _Collector:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.issues: list[Issue] = []

    def string(self, name: str) -> str | None:
        raw = self.values.get(name)
        return None if raw is None or raw == "" else raw

    def integer(self, name: str, default: int | None, lo: int, hi: int | None) -> int | None:
        raw = self.string(name)
        if raw is None:
            return default
        try:
            n = int(raw.strip())
        except ValueError:
            self.issues.append(Issue("invalid_type", "Expected number, received nan", (name,)))
            return default
        if n < lo:
            self.issues.append(
                Issue("too_small", f"Number must be greater than or equal to {lo}", (name,))
            )
            return default
        if hi is not None and n > hi:
            self.issues.append(Issue("too_big", f"Number must be less than or equal to {hi}", (name,)))
            return default
        return n

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.string(name)
        if raw is None:
            return default
        low = raw.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        self.issues.append(
            Issue(
                "invalid_enum_value",
                f"Invalid enum value. Expected 'true' | 'false', received '{raw}'",
                (name,),
            )
        )
        return default

    def enum(self, name: str, allowed: Sequence[str], default: str) -> str:
        raw = self.string(name)
        if raw is None:
            return default
        if raw not in allowed:
            expected = " | ".join(f"'{a}'" for a in allowed)
            self.issues.append(
                Issue("invalid_enum_value", f"Invalid enum value. Expected {expected}, received '{raw}'",
                      (name,))
            )
            return default
        return raw

    def datetime(self, name: str) -> int | None:
        raw = self.string(name)
        if raw is None:
            return None
        try:
            return parse_time_ms(raw)
        except ValueError:
            self.issues.append(Issue("invalid_string", "Invalid datetime", (name,)))
            return None


def parse_query(store: str, params: Sequence[tuple[str, str]]) -> EsQuery:
    """Path store name + query items → ``EsQuery``. Raises ``CompatError`` 400 listing every
    invalid parameter."""
    c = _Collector(last_values(params))
    if not STORE_RE.match(store):
        c.issues.append(Issue("invalid_string", "Invalid event store name", ("eventStoreName",)))
    limit = c.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = c.integer("offset", 0, 0, MAX_WINDOW - 1)
    from_pos = c.integer("fromPosition", None, 0, None)
    to_pos = c.integer("toPosition", None, 0, None)
    from_date = c.datetime("fromDate")
    to_date = c.datetime("toDate")
    sort_by = c.enum("sortBy", tuple(SORT_BY), "globalPosition")
    direction = c.enum("sortDirection", ("asc", "desc"), "asc")
    include_count = c.boolean("includeCount", False)
    include_archived = c.boolean("includeArchived", True)
    phase_raw = c.enum("phase", PHASES, "all")
    assert limit is not None and offset is not None  # defaults are ints
    if offset + limit > MAX_WINDOW and not any(i.path in (("limit",), ("offset",)) for i in c.issues):
        c.issues.append(
            Issue("too_big", f"offset + limit must be less than or equal to {MAX_WINDOW}", ("offset",))
        )
    if from_pos is not None and to_pos is not None and from_pos > to_pos:
        c.issues.append(
            Issue("custom", "fromPosition must not be greater than toPosition", ("fromPosition",))
        )
    if from_date is not None and to_date is not None and from_date > to_date:
        c.issues.append(Issue("custom", "fromDate must not be later than toDate", ("fromDate",)))
    phase: Phase = "hot" if phase_raw == "hot" else "archived" if phase_raw == "archived" else "all"
    if not include_archived:
        if phase == "archived":
            c.issues.append(Issue("custom", "phase=archived contradicts includeArchived=false", ("phase",)))
        phase = "hot"
    if c.issues:
        raise invalid(c.issues)
    flt = EventFilter(
        store=store,
        stream_id=c.string("streamId"),
        types=dedupe(all_values(params, "type", "type[]")),
        ids=dedupe(all_values(params, "eventId")),
        transaction_id=c.string("transactionId"),
        min_gpos=from_pos,
        max_gpos=to_pos,
        since_ms=from_date,
        until_ms=None if to_date is None else to_date + 1,
    )
    order: Order = "desc" if direction == "desc" else "asc"
    query = OffsetQuery(
        flt=flt, order=order, sort=SORT_BY[sort_by], limit=limit, offset=offset, include_total=include_count
    )
    return EsQuery(query=query, phase=phase)


def events_response(
    q: OffsetQuery, rendered: Sequence[dict[str, Any]], *, total: int | None, has_more: bool
) -> dict[str, Any]:
    """``{events, pagination {limit, offset, total (only with includeCount), hasMore}}``."""
    pagination: dict[str, Any] = {"limit": q.limit, "offset": q.offset}
    if q.include_total:
        pagination["total"] = total
    pagination["hasMore"] = has_more
    return {"events": list(rendered), "pagination": pagination}
