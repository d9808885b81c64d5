"""Values shared by the vendor request parsers. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventstrata.query.filters import EventFilter, Order, SortKey

# The deepest row any compatible endpoint lets a client page to (offset + limit). Deep offset
# paging costs O(offset) in both tiers; the native API's cursors have no such limit.
MAX_WINDOW = 10_000
# The largest page any compatible endpoint asks the query engine for.
MAX_PAGE_SIZE = 1000


class CompatError(Exception):
    """Bad input (or a refused credential) as data: HTTP ``status`` and the vendor's own error
    ``body``. Raised by the pure parsers, turned into a JSON response by the routers."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class OffsetQuery:
    """One offset-paginated read for ``QueryEngine.page_offset``."""

    flt: EventFilter
    order: Order
    sort: SortKey
    limit: int
    offset: int
    include_total: bool


def last_values(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query items → dict; a repeated single-valued parameter keeps its last value."""
    out: dict[str, str] = {}
    for k, v in params:
        out[k] = v
    return out


def all_values(params: Sequence[tuple[str, str]], *names: str) -> tuple[str, ...]:
    """Every value given for any of ``names``, in request order, empty strings dropped."""
    return tuple(v for k, v in params if k in names and v != "")


def bearer_token(authorization: str | None, *, bare_allowed: bool) -> str | None:
    """The key in an ``Authorization`` header: ``Bearer <key>`` (scheme case-insensitive), or —
    when ``bare_allowed`` — the bare ``<key>``. ``None`` when absent or empty."""
    if authorization is None:
        return None
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    if bare_allowed and value and " " not in value:
        return value
    return None


def dedupe(values: Iterable[str]) -> tuple[str, ...]:
    """Values in first-seen order without repeats."""
    return tuple(dict.fromkeys(values))
