"""The filter model shared by every read path (native API, compatible endpoints, live tail).

Pure values. ``EventFilter.matches`` is the reference semantics: every executor (Redis
post-filter, DuckDB SQL, tail fan-out) must agree with it, and the oracle tests compare
against it.

Semantics: all given fields must hold (AND). Within a tuple field, any value matches (OR):
``user_ids``, ``types``, ``names``, ``ids``; ``exclude_types`` removes any of its values;
``realms``/``groups``/``roles`` match when the event's user has at least one of the listed
values. ``data_eq``/``metadata_eq`` are equalities on nested paths (``("a", "b")`` means
``data["a"]["b"]``), comparing JSON values exactly (``1`` ≠ ``"1"``, ``true`` ≠ ``1``).
``since_ms`` is inclusive, ``until_ms`` exclusive. ``min_gpos``/``max_gpos`` bound the
global position (both inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eventstrata.model import Event

Order = Literal["desc", "asc"]
SortKey = Literal["time", "gpos", "spos"]
PathEq = tuple[tuple[str, ...], Any]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class EventFilter:
    user_ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    source: str | None = None
    session_id: str | None = None
    stream_id: str | None = None
    transaction_id: str | None = None
    store: str | None = None
    is_conversion: bool | None = None
    realms: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    data_eq: tuple[PathEq, ...] = ()
    metadata_eq: tuple[PathEq, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    min_gpos: int | None = None
    max_gpos: int | None = None

    def matches(self, e: Event) -> bool:
        """True when ``e`` satisfies every condition of this filter."""
        if self.since_ms is not None and e.timestamp < self.since_ms:
            return False
        if self.until_ms is not None and e.timestamp >= self.until_ms:
            return False
        if self.user_ids and e.user_id not in self.user_ids:
            return False
        if self.types and e.type not in self.types:
            return False
        if self.exclude_types and e.type in self.exclude_types:
            return False
        if self.names and e.name not in self.names:
            return False
        if self.ids and e.id not in self.ids:
            return False
        for want, have in (
            (self.source, e.source),
            (self.session_id, e.session_id),
            (self.stream_id, e.stream_id),
            (self.transaction_id, e.transaction_id),
            (self.store, e.store),
        ):
            if want is not None and have != want:
                return False
        if self.is_conversion is not None and e.is_conversion is not self.is_conversion:
            return False
        if self.realms and not set(self.realms) & set(e.realms):
            return False
        if self.groups and not set(self.groups) & set(e.groups):
            return False
        if self.roles and not set(self.roles) & set(e.roles):
            return False
        gpos = e.global_position
        if self.min_gpos is not None and (gpos is None or gpos < self.min_gpos):
            return False
        if self.max_gpos is not None and (gpos is None or gpos > self.max_gpos):
            return False
        for path, value in self.data_eq:
            if not json_equal(lookup_path(e.data, path), value):
                return False
        return all(json_equal(lookup_path(e.metadata, path), value) for path, value in self.metadata_eq)


def lookup_path(obj: Any, path: tuple[str, ...]) -> Any:
    """``obj[p0][p1]…`` through dicts (and list indexes given as digits); ``_MISSING`` if absent."""
    cur = obj
    for part in path:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: types must agree (bool is not a number; 1 == 1.0)."""
    if a is _MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    return bool(a == b)
