"""Pydantic models that document the native API in ``/openapi.json``. Responses are built as
plain dicts (orjson) that conform to these models; request bodies are validated by
``eventstrata.query.params`` (these models only describe them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class EventModel(BaseModel):
    """A canonical event. Times are ISO 8601 UTC with ``Z``."""

    model_config = ConfigDict(extra="allow")
    id: str
    tenant: str
    type: str
    timestamp: str
    received_at: str
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
    store: str
    items: list[str]
    user: dict[str, Any]
    data: dict[str, Any]
    metadata: Any = None
    format: str


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
