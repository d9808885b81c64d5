"""Query planning. Pure: takes the filter, the watermark ``W`` and ``now_ms``; does no I/O.

- The time range ``[since, until)`` is split at ``W``: the hot part covers ``ts >= W`` (Redis),
  the cold part ``ts < W`` (Parquet).
- Position order (``sort`` ``gpos`` or ``spos``: ``plan_for``) reads the hot part unclamped,
  from ``since`` instead of ``W``: a late event (its time below ``W``, stored after its window
  was archived) lives only in Redis until the next archive pass, and a reader that keeps its
  place by position (the live tail's catch-up, an event-store client) would otherwise pass its
  position for good. An event in both tiers (archived, not yet removed from Redis) is merged
  once by id. Time order and counts keep the split: they show a late event after that pass.
- Hot: the most selective index family is chosen (``keys`` has the layout) — the users' sets
  filtered by type per (user, type) combination when both are given and there are at most
  ``MAX_COMBINATIONS`` of them, else the users' sets, else the types' sets, else the tenant's
  sets of every event. The sources of one family are disjoint per event, so their union is a
  plain merge. Every other condition is a post-filter (``EventFilter.matches`` on the body).
- Cold: one parameterised SQL query over ``{source}`` (the tenant's manifest files overlapping the
  range by date): indexed columns in ``WHERE`` with ``?`` parameters, plus a necessary-condition
  pre-filter on ``body`` for simple ``data``/``metadata`` paths (``json_extract_string`` with a
  JSON-pointer parameter). Rows are always post-filtered with ``EventFilter.matches``, so the SQL
  only has to be a superset; user-supplied paths that are not plain identifiers are never sent
  to SQL at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from eventstrata.hotstore.read import Sources
from eventstrata.keys import encode_part
from eventstrata.query.filters import EventFilter, Order, SortKey

MAX_COMBINATIONS = 20
IndexKind = Literal["user_type", "user", "type", "all"]
_SIMPLE_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")


@dataclass(frozen=True, slots=True)
class HotPlan:
    """Hot part: scores in ``[lo, hi)`` (``hi`` None = unbounded) of the chosen key family."""

    lo: int
    hi: int | None
    kind: IndexKind
    combos: tuple[tuple[str, ...], ...]  # (user, type) / (user,) / (type,) / ()
    post_filter: bool  # False when the index and score range alone decide membership

    def sources(self) -> Sources:
        """The index family and encoded key parts to read (``hotstore.read``)."""
        if self.kind == "user_type":
            return Sources("ut", tuple((encode_part(u), encode_part(t)) for u, t in self.combos))
        if self.kind == "user":
            return Sources("u", tuple((encode_part(c[0]),) for c in self.combos))
        if self.kind == "type":
            return Sources("t", tuple((encode_part(c[0]),) for c in self.combos))
        return Sources("a")


@dataclass(frozen=True, slots=True)
class ColdPlan:
    """Cold part: ``ts`` in ``[since, until)``; ``where``/``params`` hold every SQL condition
    except the range and the cursor (added by ``cold_sql``)."""

    since: int | None
    until: int
    where: tuple[str, ...]
    params: tuple[Any, ...]
    exact: bool  # True when the SQL conditions alone decide membership (COUNT(*) is exact)


@dataclass(frozen=True, slots=True)
class Plan:
    hot: HotPlan | None
    cold: ColdPlan | None
    watermark: int


def plan_query(flt: EventFilter, *, watermark: int, now_ms: int) -> Plan:
    """Split ``flt``'s time range at ``watermark`` and plan both parts (``now_ms`` is accepted
    for future clock-relative defaults; the plan does not depend on it today)."""
    del now_ms
    since, until = flt.since_ms, flt.until_ms
    hot: HotPlan | None = None
    lo = max(since or 0, watermark)
    if until is None or lo < until:
        hot = plan_hot(flt, lo, until)
    cold: ColdPlan | None = None
    if watermark > 0 and (since is None or since < watermark):
        c_until = watermark if until is None else min(until, watermark)
        if since is None or since < c_until:
            cold = plan_cold(flt, since, c_until)
    return Plan(hot, cold, watermark)


def plan_for(flt: EventFilter, *, sort: SortKey, watermark: int, now_ms: int) -> Plan:
    """``plan_query``, with the hot part unclamped at ``watermark`` for the position orders
    (``gpos``, ``spos``: see the module docstring); the cold part is the same."""
    plan = plan_query(flt, watermark=watermark, now_ms=now_ms)
    if sort == "time" or watermark <= (flt.since_ms or 0):
        return plan
    return Plan(plan_query(flt, watermark=0, now_ms=now_ms).hot, plan.cold, watermark)


def plan_hot(flt: EventFilter, lo: int, hi: int | None) -> HotPlan:
    users, types = flt.user_ids, flt.types
    kind: IndexKind
    combos: tuple[tuple[str, ...], ...]
    if users and types and len(users) * len(types) <= MAX_COMBINATIONS:
        kind, combos = "user_type", tuple((u, t) for u in users for t in types)
    elif users:
        kind, combos = "user", tuple((u,) for u in users)
    elif types:
        kind, combos = "type", tuple((t,) for t in types)
    else:
        kind, combos = "all", ()
    covered = {
        "user_type": {"user_ids", "types"},
        "user": {"user_ids"},
        "type": {"types"},
        "all": set(),
    }[kind]
    residual = _residual_fields(flt) - covered
    return HotPlan(lo, hi, kind, combos, post_filter=bool(residual))


def _residual_fields(flt: EventFilter) -> set[str]:
    out: set[str] = set()
    for name in ("user_ids", "types", "exclude_types", "names", "ids", "realms", "groups", "roles",
                 "data_eq", "metadata_eq"):
        if getattr(flt, name):
            out.add(name)
    for name in ("source", "session_id", "stream_id", "transaction_id", "store", "is_conversion",
                 "min_gpos", "max_gpos"):
        if getattr(flt, name) is not None:
            out.add(name)
    return out


def json_pointer(root: str, path: tuple[str, ...]) -> str | None:
    """``/root/a/b`` for simple identifier parts; None when a part is not a plain identifier
    (such paths are evaluated only in Python)."""
    if not all(_SIMPLE_PART.match(p) for p in path):
        return None
    return "/" + "/".join((root, *path))


def plan_cold(flt: EventFilter, since: int | None, until: int) -> ColdPlan:
    where: list[str] = []
    params: list[Any] = []
    exact = True

    def add_in(column: str, values: tuple[str, ...], negate: bool = False) -> None:
        if values:
            marks = ", ".join("?" for _ in values)
            where.append(f"{column} {'NOT IN' if negate else 'IN'} ({marks})")
            params.extend(values)

    add_in("user_id", flt.user_ids)
    add_in("type", flt.types)
    add_in("type", flt.exclude_types, negate=True)
    add_in("name", flt.names)
    add_in("id", flt.ids)
    for column in ("source", "session_id", "stream_id", "transaction_id", "store"):
        value = getattr(flt, column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if flt.is_conversion is not None:
        where.append("is_conversion = ?")
        params.append(flt.is_conversion)
    for column, values in (("realm", flt.realms), ("groups", flt.groups), ("roles", flt.roles)):
        if values:
            where.append(f"list_has_any({column}, ?::VARCHAR[])")
            params.append(list(values))
    if flt.min_gpos is not None:
        where.append("global_position >= ?")
        params.append(flt.min_gpos)
    if flt.max_gpos is not None:
        where.append("global_position <= ?")
        params.append(flt.max_gpos)
    for root, eqs in (("data", flt.data_eq), ("metadata", flt.metadata_eq)):
        for path, value in eqs:
            exact = False
            pointer = json_pointer(root, path)
            if pointer is None:
                continue
            if isinstance(value, bool):
                where.append("json_extract_string(body, ?) = ?")
                params.extend([pointer, "true" if value else "false"])
            elif isinstance(value, int | float):
                where.append("TRY_CAST(json_extract_string(body, ?) AS DOUBLE) = ?")
                params.extend([pointer, float(value)])
            elif isinstance(value, str):
                where.append("json_extract_string(body, ?) = ?")
                params.extend([pointer, value])
    return ColdPlan(since, until, tuple(where), tuple(params), exact)


_ORDER_COLUMNS: dict[str, tuple[str, ...]] = {
    "time": ("ts", "id"),
    "gpos": ("COALESCE(global_position, -1)", "id"),
    "spos": ("COALESCE(stream_position, -1)", "ts", "id"),
}


def cold_sql(plan: ColdPlan, *, sort: SortKey, order: Order, after: tuple[Any, ...] | None,
             limit: int, columns: str = "body") -> tuple[str, list[Any]]:
    """The page query: ``SELECT columns FROM {source} WHERE … ORDER BY … LIMIT ?``.

    ``after`` (a sort position) adds a strict lexicographic "after the cursor" condition."""
    where = list(plan.where)
    params: list[Any] = list(plan.params)
    if plan.since is not None:
        where.insert(0, "ts >= ?")
        params.insert(0, plan.since)
    where.insert(0, "ts < ?")
    params.insert(0, plan.until)
    cols = _ORDER_COLUMNS[sort]
    if after is not None:
        cond, cparams = _lex_after(cols, after, order)
        where.append(cond)
        params.extend(cparams)
    direction = "DESC" if order == "desc" else "ASC"
    order_by = ", ".join(f"{c} {direction}" for c in cols)
    sql = f"SELECT {columns} FROM {{source}} WHERE {' AND '.join(where)} ORDER BY {order_by} LIMIT ?"
    params.append(limit)
    return sql, params


def cold_count_sql(plan: ColdPlan, *, bucket_ms: int | None = None) -> tuple[str, list[Any]]:
    """``COUNT(*)`` (optionally grouped by ``ts`` bucket) over the plan's SQL conditions."""
    where = list(plan.where)
    params: list[Any] = list(plan.params)
    if plan.since is not None:
        where.insert(0, "ts >= ?")
        params.insert(0, plan.since)
    where.insert(0, "ts < ?")
    params.insert(0, plan.until)
    if bucket_ms is None:
        return f"SELECT COUNT(*) FROM {{source}} WHERE {' AND '.join(where)}", params
    sql = (f"SELECT ts - ts % ?, COUNT(*) FROM {{source}} WHERE {' AND '.join(where)} "
           "GROUP BY 1 ORDER BY 1")
    return sql, [bucket_ms, *params]


def _lex_after(cols: tuple[str, ...], pos: tuple[Any, ...], order: Order) -> tuple[str, list[Any]]:
    op = ">" if order == "asc" else "<"
    terms: list[str] = []
    params: list[Any] = []
    for i, col in enumerate(cols):
        eqs = [f"{c} = ?" for c in cols[:i]]
        terms.append("(" + " AND ".join([*eqs, f"{col} {op} ?"]) + ")")
        params.extend([*pos[:i], pos[i]])
    return "(" + " OR ".join(terms) + ")", params


