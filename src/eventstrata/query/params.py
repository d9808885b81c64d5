"""Parsing and validating native query parameters (docs/API.md). Pure: no I/O, no clock.

Two inputs map onto one ``QueryRequest``:

- the query string of ``GET /v1/events`` / ``GET /v1/events/count`` (``parse_query_items``), given
  as ``(name, value)`` pairs so repeatable parameters keep all their values;
- the JSON body of ``POST /v1/events/query`` (``parse_query_body``).

Path filters: ``data.<p1>.<p2>=<value>`` and ``metadata.<p>=<value>`` compare the value at that
nested path for JSON equality (``EventFilter.matches``). In the query string the value is
decoded as a JSON literal when it parses as one (``5`` → number, ``true`` → boolean, ``null``,
``"5"`` → the string ``5``, ``{"a":1}`` → object), otherwise it is taken as a plain string
(``pro`` → ``"pro"``). In the JSON body, ``"data": {"p1.p2": <value>}`` takes the value as
given (no string decoding). Path parts are separated by ``.``; digits index arrays.

Every error raises ``ApiError(400, code, message, details)`` with one ``ErrorDetail`` per bad
parameter; nothing here raises anything else for any input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.formats.common import json_depth
from eventstrata.query.filters import EventFilter, Order, PathEq, SortKey
from eventstrata.timeutil import parse_time_ms

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_VALUES_PER_FILTER = 100
MAX_PATH_FILTERS = 20
MAX_PATH_DEPTH = 10
MAX_PATH_PART_LEN = 128
MAX_VALUE_LEN = 1024
MAX_VALUE_DEPTH = 16
"""Deepest JSON value a ``data``/``metadata`` path filter takes (an array or object is 1)."""
MAX_OFFSET = 10_000
MAX_RANGE_MS = 400 * 86_400_000
MAX_CURSOR_LEN = 2048

Bucket = Literal["1m", "1h", "1d"]
BUCKET_MS: dict[str, int] = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
MAX_BUCKETS = 10_000

_REPEATABLE = {
    "user_id": "user_ids",
    "type": "types",
    "exclude_type": "exclude_types",
    "name": "names",
    "id": "ids",
    "realm": "realms",
    "group": "groups",
    "role": "roles",
}
_SINGLE = ("source", "session_id", "stream_id", "transaction_id", "store")
_CONTROL = ("order", "limit", "cursor", "include_total", "offset", "sort", "since", "until",
            "is_conversion", "bucket")
_PATH_RE = re.compile(r"^(data|metadata)\.(.+)$")


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """A validated native query: filter plus paging controls."""

    filter: EventFilter
    order: Order = "desc"
    sort: SortKey = "time"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    offset: int | None = None
    include_total: bool = False
    bucket: str | None = None


class _Errors:
    def __init__(self) -> None:
        self.details: list[ErrorDetail] = []

    def add(self, path: str, message: str) -> None:
        self.details.append(ErrorDetail(path, message))

    def raise_if_any(self) -> None:
        if self.details:
            first = self.details[0]
            msg = f"invalid parameter {first.path!r}: {first.message}"
            if len(self.details) > 1:
                msg += f" (and {len(self.details) - 1} more)"
            raise ApiError(400, "invalid_parameter", msg, tuple(self.details))


def parse_query_items(items: Iterable[tuple[str, str]], *, allow_bucket: bool = False) -> QueryRequest:
    """Validate query-string pairs. Unknown parameter names are rejected (typos would
    otherwise silently widen a query). Raises ``ApiError`` (400)."""
    errs = _Errors()
    multi: dict[str, list[str]] = {}
    for name, value in items:
        multi.setdefault(name, []).append(value)
    raw: dict[str, Any] = {}
    paths: list[tuple[str, str, Any]] = []
    for name, values in multi.items():
        m = _PATH_RE.match(name)
        if m:
            for v in values:
                paths.append((m.group(1), m.group(2), _json_or_string(v)))
        elif name in _REPEATABLE:
            # Also accept comma-free repeated params only; commas are part of values.
            raw[name] = values
        elif name in _SINGLE or name in _CONTROL:
            if len(values) > 1:
                errs.add(name, "given more than once")
                continue
            raw[name] = values[0]
        else:
            errs.add(name, "unknown parameter")
    if "bucket" in raw and not allow_bucket:
        errs.add("bucket", "unknown parameter")
    return _build(raw, paths, errs, from_json=False)


def parse_query_body(body: Any) -> QueryRequest:
    """Validate the JSON body of ``POST /v1/events/query``. Repeatable filters take a string or
    a list of strings; ``data``/``metadata`` take an object of dotted path → JSON value.
    Raises ``ApiError`` (400)."""
    errs = _Errors()
    if not isinstance(body, Mapping):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object",
                       (ErrorDetail("", "expected a JSON object"),))
    raw: dict[str, Any] = {}
    paths: list[tuple[str, str, Any]] = []
    for name, value in body.items():
        if name in ("data", "metadata"):
            if not isinstance(value, Mapping):
                errs.add(name, "expected an object of path → value")
                continue
            for p, v in value.items():
                paths.append((name, str(p), v))
        elif name in _REPEATABLE:
            if isinstance(value, str):
                raw[name] = [value]
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                raw[name] = list(value)
            else:
                errs.add(name, "expected a string or a list of strings")
        elif name in _SINGLE or name in _CONTROL:
            if value is None:
                continue
            raw[name] = value
        else:
            errs.add(name, "unknown field")
    if "bucket" in raw:
        errs.add("bucket", "unknown field")
    return _build(raw, paths, errs, from_json=True)


def _json_or_string(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _str_value(errs: _Errors, path: str, value: Any) -> str | None:
    if not isinstance(value, str):
        errs.add(path, "expected a string")
        return None
    if value == "":
        errs.add(path, "must not be empty")
        return None
    if len(value) > MAX_VALUE_LEN:
        errs.add(path, f"longer than {MAX_VALUE_LEN} characters")
        return None
    if "\x00" in value:
        errs.add(path, "must not contain NUL")
        return None
    return value


def _int_value(errs: _Errors, path: str, value: Any, *, lo: int, hi: int, from_json: bool) -> int | None:
    if from_json:
        if isinstance(value, bool) or not isinstance(value, int):
            errs.add(path, "expected an integer")
            return None
        n = value
    else:
        if not isinstance(value, str) or not re.fullmatch(r"\d{1,9}", value.strip()):
            errs.add(path, "expected a non-negative integer")
            return None
        n = int(value.strip())
    if not lo <= n <= hi:
        errs.add(path, f"must be between {lo} and {hi}")
        return None
    return n


def _bool_value(errs: _Errors, path: str, value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    errs.add(path, "expected true or false")
    return None


def _time_value(errs: _Errors, path: str, value: Any) -> int | None:
    if isinstance(value, float) and not math.isfinite(value):
        errs.add(path, "not a finite number")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        errs.add(path, "expected an ISO 8601 timestamp or epoch milliseconds")
        return None
    try:
        return parse_time_ms(value)
    except ValueError as exc:
        errs.add(path, str(exc))
        return None
    except OverflowError:
        errs.add(path, "timestamp out of range")
        return None


def parse_path(errs: _Errors, root: str, dotted: str) -> tuple[str, ...] | None:
    """``a.b.0`` → ``("a", "b", "0")``; validates depth, part length and characters."""
    label = f"{root}.{dotted}"
    parts = tuple(dotted.split("."))
    if not dotted or any(p == "" for p in parts):
        errs.add(label, "empty path segment")
        return None
    if len(parts) > MAX_PATH_DEPTH:
        errs.add(label, f"deeper than {MAX_PATH_DEPTH} segments")
        return None
    if any(p.isdigit() and not p.isascii() for p in parts):
        errs.add(label, "numeric segments must use ASCII digits")
        return None
    if any(len(p) > MAX_PATH_PART_LEN or "\x00" in p for p in parts):
        errs.add(label, f"segments must be 1..{MAX_PATH_PART_LEN} characters without NUL")
        return None
    return parts


def _build(raw: Mapping[str, Any], paths: Sequence[tuple[str, str, Any]], errs: _Errors,
           *, from_json: bool) -> QueryRequest:
    lists: dict[str, tuple[str, ...]] = {}
    for name, attr in _REPEATABLE.items():
        values = raw.get(name)
        if values is None:
            continue
        if len(values) > MAX_VALUES_PER_FILTER:
            errs.add(name, f"more than {MAX_VALUES_PER_FILTER} values")
            continue
        good: list[str] = []
        for i, v in enumerate(values):
            s = _str_value(errs, f"{name}[{i}]" if len(values) > 1 else name, v)
            if s is not None and s not in good:
                good.append(s)
        lists[attr] = tuple(good)
    singles: dict[str, str | None] = {}
    for name in _SINGLE:
        if name in raw:
            singles[name] = _str_value(errs, name, raw[name])
    is_conv = _bool_value(errs, "is_conversion", raw["is_conversion"]) if "is_conversion" in raw else None
    since = _time_value(errs, "since", raw["since"]) if "since" in raw else None
    until = _time_value(errs, "until", raw["until"]) if "until" in raw else None
    if since is not None and until is not None:
        if until <= since:
            errs.add("until", "must be after since")
        elif until - since > MAX_RANGE_MS:
            errs.add("until", f"time range longer than {MAX_RANGE_MS // 86_400_000} days")
    data_eq: list[PathEq] = []
    meta_eq: list[PathEq] = []
    if len(paths) > MAX_PATH_FILTERS:
        errs.add("data", f"more than {MAX_PATH_FILTERS} data/metadata path filters")
    else:
        for root, dotted, value in paths:
            parsed = parse_path(errs, root, dotted)
            if parsed is None:
                continue
            if json_depth(value) > MAX_VALUE_DEPTH:  # before anything walks it recursively
                errs.add(f"{root}.{dotted}", f"value nested deeper than {MAX_VALUE_DEPTH} levels")
                continue
            if _contains_nul(value):
                errs.add(f"{root}.{dotted}", "value must not contain NUL")
                continue
            if len(orjson.dumps(value)) > MAX_VALUE_LEN if _json_ok(value) else True:
                errs.add(f"{root}.{dotted}", f"value must be JSON and at most {MAX_VALUE_LEN} bytes")
                continue
            (data_eq if root == "data" else meta_eq).append((parsed, value))
    order: Order = "desc"
    if "order" in raw:
        o = raw["order"]
        if o == "asc":
            order = "asc"
        elif o != "desc":
            errs.add("order", "expected desc or asc")
    sort: SortKey = "time"
    if "sort" in raw:
        s = raw["sort"]
        if s in ("gpos", "spos"):
            sort = "gpos" if s == "gpos" else "spos"
        elif s != "time":
            errs.add("sort", "expected time, gpos or spos")
    limit = DEFAULT_LIMIT
    if "limit" in raw:
        n = _int_value(errs, "limit", raw["limit"], lo=1, hi=MAX_LIMIT, from_json=from_json)
        limit = n if n is not None else DEFAULT_LIMIT
    offset = None
    if "offset" in raw:
        offset = _int_value(errs, "offset", raw["offset"], lo=0, hi=MAX_OFFSET, from_json=from_json)
    cursor = None
    if "cursor" in raw:
        c = raw["cursor"]
        if not isinstance(c, str) or not c or len(c) > MAX_CURSOR_LEN:
            errs.add("cursor", "expected a cursor string from next_cursor")
        else:
            cursor = c
    if cursor is not None and offset is not None:
        errs.add("offset", "use either cursor or offset, not both")
    include_total = False
    if "include_total" in raw:
        b = _bool_value(errs, "include_total", raw["include_total"])
        include_total = bool(b)
    bucket = None
    if "bucket" in raw:
        if isinstance(raw["bucket"], str) and raw["bucket"] in BUCKET_MS:
            bucket = str(raw["bucket"])
        else:
            errs.add("bucket", "expected one of " + ", ".join(BUCKET_MS))
    errs.raise_if_any()
    flt = EventFilter(
        user_ids=lists.get("user_ids", ()),
        types=lists.get("types", ()),
        exclude_types=lists.get("exclude_types", ()),
        names=lists.get("names", ()),
        ids=lists.get("ids", ()),
        source=singles.get("source"),
        session_id=singles.get("session_id"),
        stream_id=singles.get("stream_id"),
        transaction_id=singles.get("transaction_id"),
        store=singles.get("store"),
        is_conversion=is_conv,
        realms=lists.get("realms", ()),
        groups=lists.get("groups", ()),
        roles=lists.get("roles", ()),
        data_eq=tuple(data_eq),
        metadata_eq=tuple(meta_eq),
        since_ms=since,
        until_ms=until,
    )
    return QueryRequest(flt, order, sort, limit, cursor, offset, include_total, bucket)


def _json_ok(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any("\x00" in str(k) or _contains_nul(v) for k, v in value.items())
    return False


def bucket_starts(since_ms: int, until_ms: int, bucket_ms: int) -> list[int]:
    """Bucket starts (aligned to ``bucket_ms`` from the epoch, UTC) overlapping [since, until).
    Raises ``ApiError`` when there would be more than ``MAX_BUCKETS``."""
    first = since_ms - since_ms % bucket_ms
    n = (until_ms - first + bucket_ms - 1) // bucket_ms
    if n > MAX_BUCKETS:
        raise ApiError(400, "invalid_parameter", f"more than {MAX_BUCKETS} buckets; narrow since/until",
                       (ErrorDetail("bucket", f"{n} buckets"),))
    return list(range(first, until_ms, bucket_ms))
