"""Pydantic models that document the native API in ``/openapi.json``. Responses are built as
plain dicts (orjson) that conform to these models; request bodies are validated by
``eventstrata.query.params`` (these models only describe them)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from eventstrata.model import Event


class ErrorDetailModel(BaseModel):
    path: str
    message: str


class ErrorInner(BaseModel):
    code: str
    message: str
    details: list[ErrorDetailModel]


class ErrorBody(BaseModel):
    """Every native error: ``{"error": {"code", "message", "details": [{"path", "message"}]}}``."""

    error: ErrorInner


UNAUTHORIZED = "Missing, unknown or revoked API key"
"""The 401 of every authenticated route, as the OpenAPI document describes it."""


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses`` for error statuses → their description, each with the envelope
    ``ErrorBody`` (pure)."""
    return {status: {"model": ErrorBody, "description": text} for status, text in descriptions.items()}


_NOT_SHOWN = frozenset({"vendor"})
"""``Event`` fields a response leaves out (``native_shape``)."""
_SHOWN_AS: dict[str, Any] = {"timestamp": str, "received_at": str, "format": str, "items": list[str]}
"""Fields a response carries in another type than ``Event`` holds them: times as ISO 8601 text,
``items`` as a JSON array, ``format`` as plain text."""
_LAST = ("format",)
"""Fields the document lists after the others."""


def _event_model() -> type[BaseModel]:
    """``EventModel``, built from ``model.Event``: its fields in declaration order (``_LAST``
    last) but ``_NOT_SHOWN``, typed as ``Event`` types them but ``_SHOWN_AS``; a field whose
    ``Event`` default is ``None`` is optional (default ``None``), every other one is required
    (a response always carries it). Extra keys are allowed."""
    hints = get_type_hints(Event)
    shown = [f for f in fields(Event) if f.name not in _NOT_SHOWN]
    shown.sort(key=lambda f: f.name in _LAST)
    definitions: dict[str, Any] = {
        f.name: (_SHOWN_AS.get(f.name, hints[f.name]), None if f.default is None else ...) for f in shown
    }
    return create_model("EventModel", __config__=ConfigDict(extra="allow"),
                        __doc__="A canonical event. Times are ISO 8601 UTC with ``Z``.", **definitions)


if TYPE_CHECKING:

    class EventModel(BaseModel):
        """A canonical event (its fields are built from ``model.Event`` at import)."""

else:
    EventModel = _event_model()


class EventsPage(BaseModel):
    events: list[EventModel]
    next_cursor: str | None
    total: int | None = Field(default=None, description="Present when include_total=true.")


class Bucket(BaseModel):
    start: str
    count: int


class CountResult(BaseModel):
    count: int
    buckets: list[Bucket] | None = Field(default=None, description="Present when bucket is given.")


StrOrList = str | list[str]


class QueryBody(BaseModel):
    """Body of ``POST /v1/events/query``: the parameters of ``GET /v1/events`` as JSON.
    ``data``/``metadata`` map a dotted path to the JSON value it must equal."""

    model_config = ConfigDict(extra="forbid")
    user_id: StrOrList | None = None
    type: StrOrList | None = None
    exclude_type: StrOrList | None = None
    name: StrOrList | None = None
    id: StrOrList | None = None
    realm: StrOrList | None = None
    group: StrOrList | None = None
    role: StrOrList | None = None
    source: str | None = None
    session_id: str | None = None
    stream_id: str | None = None
    transaction_id: str | None = None
    store: str | None = None
    is_conversion: bool | None = None
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    since: str | int | None = Field(default=None, description="ISO 8601 (offset optional) or epoch ms.")
    until: str | int | None = None
    order: Literal["desc", "asc"] | None = None
    sort: Literal["time", "gpos", "spos"] | None = None
    limit: int | None = Field(default=None, ge=1, le=1000)
    offset: int | None = Field(default=None, ge=0, le=10000)
    cursor: str | None = None
    include_total: bool | None = None


class Health(BaseModel):
    status: str
    checks: dict[str, str] | None = None
