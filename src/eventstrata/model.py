"""The canonical event: the one shape every input format maps onto (docs/ARCHITECTURE.md).

Values only, no I/O. ``Event.to_dict`` / ``Event.from_dict`` are the storage form used by
both tiers (the Redis body and the Parquet ``body`` column) and by the native API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

import orjson

Format = Literal["native", "trieve", "thisdata", "fluidtopics", "eventstore"]
FORMATS: tuple[Format, ...] = ("native", "trieve", "thisdata", "fluidtopics", "eventstore")

TENANT_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
STORE_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")
MAX_ID_LEN = 512


@dataclass(frozen=True, slots=True)
class Event:
    """One normalized event.

    ``timestamp`` and ``received_at`` are epoch milliseconds (UTC). ``global_position`` and
    ``stream_position`` are ``None`` until the hot store assigns them (once per id, stable
    across replays). ``vendor`` holds the original fields the event's own format needs to be
    rendered back in that vendor's shape (e.g. ThisData ``device``/``location``/``raw``,
    Fluid Topics ``appName``/``parameters``); renderers read it, queries never do.
    """

    id: str
    tenant: str
    type: str
    timestamp: int
    received_at: int
    format: Format
    name: str | None = None
    user_id: str | None = None
    source: str | None = None
    session_id: str | None = None
    stream_id: str | None = None
    stream_position: int | None = None
    global_position: int | None = None
    transaction_id: str | None = None
    request_id: str | None = None
    is_conversion: bool | None = None
    store: str = "default"
    items: tuple[str, ...] = ()
    user: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metadata: Any = None
    vendor: dict[str, Any] = field(default_factory=dict)

    # -- user attributes used by filters -------------------------------------------------
    @property
    def realms(self) -> tuple[str, ...]:
        return _str_list(self.user.get("realm"))

    @property
    def groups(self) -> tuple[str, ...]:
        return _str_list(self.user.get("groups"))

    @property
    def roles(self) -> tuple[str, ...]:
        return _str_list(self.user.get("roles"))

    # -- storage form --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; keys in a fixed order; ``items`` as a list."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "type": self.type,
            "name": self.name,
            "user_id": self.user_id,
            "timestamp": self.timestamp,
            "received_at": self.received_at,
            "source": self.source,
            "session_id": self.session_id,
            "stream_id": self.stream_id,
            "stream_position": self.stream_position,
            "global_position": self.global_position,
            "transaction_id": self.transaction_id,
            "request_id": self.request_id,
            "is_conversion": self.is_conversion,
            "store": self.store,
            "items": list(self.items),
            "user": self.user,
            "data": self.data,
            "metadata": self.metadata,
            "format": self.format,
            "vendor": self.vendor,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        """Inverse of ``to_dict``. Raises ``KeyError``/``TypeError`` on a malformed dict.

        Built with ``make_event`` (every page read builds up to 1,000 of these; measured 3.7 →
        ~1.5 µs against the dataclass ``__init__``)."""
        get = d.get
        return make_event(
            d["id"], d["tenant"], d["type"], int(d["timestamp"]), int(d["received_at"]), d["format"],
            get("name"), get("user_id"), get("source"), get("session_id"), get("stream_id"),
            get("stream_position"), get("global_position"), get("transaction_id"), get("request_id"),
            get("is_conversion"), get("store") or "default", tuple(get("items") or ()), get("user") or {},
            get("data") or {}, get("metadata"), get("vendor") or {},
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        return cls.from_dict(orjson.loads(raw))

    def with_positions(self, global_position: int, stream_position: int | None) -> Event:
        """A copy carrying the positions the hot store assigned."""
        d = self.to_dict()
        d["global_position"] = global_position
        d["stream_position"] = stream_position
        return Event.from_dict(d)


EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Event))
"""``Event``'s fields, in declaration order (``make_event``'s parameters). ``Event`` is the one
declaration of the event's shape: the other places that spell its fields out for speed
(``to_dict``, ``from_dict``, ``make_event``, ``native_shape``, ``formats.native``,
``archive.schema``) are checked against it by tests/unit/test_event_shape.py, and
``api.models.EventModel`` is built from it."""


class _EventShell:
    """Same slot layout as ``Event`` (a slotted dataclass without ``__post_init__``), but
    plain attribute stores: filling it and switching its ``__class__`` to ``Event`` builds an
    ``Event`` ~5× faster than the frozen dataclass ``__init__`` (which goes through
    ``object.__setattr__`` per field). Only used when ``_SHELL_OK`` (checked at import)."""

    __slots__ = EVENT_FIELDS

    def __init__(
        self, id: Any, tenant: Any, type: Any, timestamp: Any, received_at: Any, format: Any,
        name: Any, user_id: Any, source: Any, session_id: Any, stream_id: Any, stream_position: Any,
        global_position: Any, transaction_id: Any, request_id: Any, is_conversion: Any, store: Any,
        items: Any, user: Any, data: Any, metadata: Any, vendor: Any,
    ) -> None:
        self.id = id
        self.tenant = tenant
        self.type = type
        self.timestamp = timestamp
        self.received_at = received_at
        self.format = format
        self.name = name
        self.user_id = user_id
        self.source = source
        self.session_id = session_id
        self.stream_id = stream_id
        self.stream_position = stream_position
        self.global_position = global_position
        self.transaction_id = transaction_id
        self.request_id = request_id
        self.is_conversion = is_conversion
        self.store = store
        self.items = items
        self.user = user
        self.data = data
        self.metadata = metadata
        self.vendor = vendor


_set_attr = object.__setattr__


def _parameters(fn: Any) -> tuple[str, ...]:
    """The names of the positional parameters of the plain function ``fn``."""
    code = fn.__code__
    return tuple(code.co_varnames[:code.co_argcount])


def _shell_works() -> bool:
    """True when ``Event`` has exactly ``EVENT_FIELDS`` as slots and no ``__post_init__``, the
    shell's ``__init__`` takes exactly those fields, and a switched shell equals the
    dataclass-built event (a field added to ``Event`` but not to the shell turns it off)."""
    if getattr(Event, "__slots__", None) != EVENT_FIELDS or hasattr(Event, "__post_init__"):
        return False
    if _parameters(_EventShell.__init__) != ("self", *EVENT_FIELDS):
        return False
    args: tuple[Any, ...] = (
        "i", "t", "x", 1, 2, "native", "n", "u", "s", "ss", "st", 3, 4, "tx", "r", True, "default",
        ("a",), {"u": 1}, {"d": 2}, [3], {"v": 4},
    )
    built: object = _EventShell(*args)
    try:
        _set_attr(built, "__class__", Event)
    except TypeError:
        return False
    return type(built) is Event and built == Event(*args)


_SHELL_OK = _shell_works()


def make_event(
    id: str, tenant: str, type: str, timestamp: int, received_at: int, format: Format,
    name: str | None, user_id: str | None, source: str | None, session_id: str | None,
    stream_id: str | None, stream_position: int | None, global_position: int | None,
    transaction_id: str | None, request_id: str | None, is_conversion: bool | None, store: str,
    items: tuple[str, ...], user: dict[str, Any], data: dict[str, Any], metadata: Any,
    vendor: dict[str, Any],
) -> Event:
    """``Event(...)`` with every field given positionally, built the fast way when possible.
    The result is an ordinary, frozen ``Event`` (a unit test compares both ways). The normalizers
    and ``Event.from_dict`` (every page read) build events with it."""
    if _SHELL_OK:
        shell = _EventShell(
            id, tenant, type, timestamp, received_at, format, name, user_id, source, session_id,
            stream_id, stream_position, global_position, transaction_id, request_id, is_conversion,
            store, items, user, data, metadata, vendor,
        )
        _set_attr(shell, "__class__", Event)
        return cast(Event, shell)
    return Event(
        id, tenant, type, timestamp, received_at, format, name, user_id, source, session_id,
        stream_id, stream_position, global_position, transaction_id, request_id, is_conversion,
        store, items, user, data, metadata, vendor,
    )



@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """Bad input, as data: goes to the DLQ with ``code`` and ``message`` in its headers.

    Codes: ``malformed_json``, ``not_an_object``, ``unknown_format``, ``missing_field``,
    ``wrong_type``, ``bad_tenant``, ``bad_timestamp``, ``future_timestamp``, ``oversize``,
    ``bad_id``, ``bad_store``.
    """

    code: str
    message: str


INVALID_CODES: tuple[str, ...] = (
    "malformed_json",
    "not_an_object",
    "unknown_format",
    "missing_field",
    "wrong_type",
    "bad_tenant",
    "bad_timestamp",
    "future_timestamp",
    "oversize",
    "bad_id",
    "bad_store",
)


def _str_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)
