"""ThisData ``GET /v1/events`` (seed 002): query-string parsing and response envelope. Pure.

Parameters: ``api_key`` (checked by the router), ``user_id``, ``after`` (inclusive; default 30
days before now; at most 90 days back), ``before`` (inclusive), ``verb``, ``verbs[]``,
``exclude_verb`` (default ``page-view``), ``exclude_verbs[]``, ``source_name``, ``limit``
(default 50, max 200), ``offset`` (default 0). Response ``{total, results}``, newest first.
Errors are ``{"error": message}``; the choices are in docs/COMPATIBILITY.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstrata.api.compat.parsing import (
    MAX_WINDOW,
    CompatError,
    OffsetQuery,
    all_values,
    dedupe,
    last_values,
)
from eventstrata.query.filters import EventFilter
from eventstrata.timeutil import parse_time_ms

DAY_MS = 86_400_000
DEFAULT_AFTER_DAYS = 30
MAX_AFTER_DAYS = 90
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_EXCLUDE_VERB = "page-view"

UNAUTHORIZED_BODY: dict[str, Any] = {"error": "Unauthorized: invalid or missing api_key"}


def bad_request(message: str) -> CompatError:
    return CompatError(400, {"error": message})


def unauthorized() -> CompatError:
    return CompatError(401, dict(UNAUTHORIZED_BODY))


def api_key(params: Sequence[tuple[str, str]]) -> str:
    """The ``api_key`` query parameter. Raises ``CompatError`` 401 when absent or empty."""
    key = last_values(params).get("api_key", "").strip()
    if not key:
        raise unauthorized()
    return key


def _int(values: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = values.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        n = int(raw.strip())
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if n < lo:
        raise bad_request(f"{name} must be >= {lo}")
    if n > hi:
        raise bad_request(f"{name} must be <= {hi}")
    return n


def _time(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse_time_ms(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}") from None


def parse_query(params: Sequence[tuple[str, str]], *, now_ms: int) -> OffsetQuery:
    """Query items (repeats kept, in order) → the query to run. Raises ``CompatError`` 400.

    ``verb`` and ``verbs[]`` (also accepted as ``verbs``) combine into one OR-set. The default
    ``exclude_verb=page-view`` applies only when ``exclude_verb`` is absent and ``page-view`` is
    not asked for in ``verb``/``verbs[]``; ``exclude_verb=`` (empty) disables it.
    """
    values = last_values(params)
    after = _time(values, "after")
    oldest = now_ms - MAX_AFTER_DAYS * DAY_MS
    if after is None:
        after = now_ms - DEFAULT_AFTER_DAYS * DAY_MS
    elif after < oldest:
        raise bad_request(f"after must be at most {MAX_AFTER_DAYS} days ago")
    before = _time(values, "before")
    until = None if before is None else before + 1
    if until is not None and until <= after:
        raise bad_request("before must not be earlier than after")
    verbs = dedupe(all_values(params, "verb", "verbs[]", "verbs"))
    excludes = list(all_values(params, "exclude_verbs[]", "exclude_verbs"))
    if "exclude_verb" in values:
        if values["exclude_verb"] != "":
            excludes.append(values["exclude_verb"])
    elif DEFAULT_EXCLUDE_VERB not in verbs:
        excludes.append(DEFAULT_EXCLUDE_VERB)
    user_id = values.get("user_id") or None
    source = values.get("source_name") or None
    limit = _int(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(values, "offset", 0, 0, MAX_WINDOW - 1)
    if offset + limit > MAX_WINDOW:
        raise bad_request(f"offset + limit must be <= {MAX_WINDOW}")
    flt = EventFilter(
        user_ids=() if user_id is None else (user_id,),
        types=verbs,
        exclude_types=dedupe(excludes),
        source=source,
        since_ms=after,
        until_ms=until,
    )
    return OffsetQuery(flt=flt, order="desc", sort="time", limit=limit, offset=offset, include_total=True)


def events_response(total: int, rendered: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{total, results}``."""
    return {"total": total, "results": list(rendered)}
