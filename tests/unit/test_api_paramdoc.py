"""The hot read routes parse their own query string; their OpenAPI parameters come from spec
signatures (``api.paramdoc``). These tests pin that the document still describes them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from eventstrata.api.app import create_app
from eventstrata.api.deps import Tenant
from eventstrata.api.paramdoc import documented
from eventstrata.config import Settings


def _spec(tenant: Tenant, user_id: Annotated[list[str] | None, Query(max_length=3)] = None,
          limit: Annotated[int, Query(ge=1, le=9)] = 5) -> None:
    """spec"""


def _by_name(params: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in params}


def test_documented_turns_a_signature_into_parameters_and_security() -> None:
    extra = documented(_spec, "/x")
    params = _by_name(extra["parameters"])
    assert set(params) == {"user_id", "limit"}
    assert params["limit"]["in"] == "query"
    assert params["limit"]["schema"]["maximum"] == 9
    assert params["limit"]["schema"]["default"] == 5
    assert extra["security"] == [{"HTTPBearer": []}]


def _operation(path: str) -> dict[str, Any]:
    app = create_app(Settings.from_env({"EVENTSTRATA_REDIS_URL": "redis://127.0.0.1:1/0"}))
    op: dict[str, Any] = app.openapi()["paths"][path]["get"]
    return op


def test_list_route_documents_every_filter_with_its_limits() -> None:
    op = _operation("/v1/events")
    params = _by_name(op["parameters"])
    assert {"user_id", "type", "exclude_type", "since", "until", "order", "limit", "cursor",
            "include_total", "is_conversion"} <= set(params)
    assert params["limit"]["schema"]["maximum"] == 1000
    assert params["order"]["schema"]["enum"] == ["desc", "asc"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert "400" in op["responses"] and "401" in op["responses"]
    assert "Filtered, cursor-paginated" in op["description"]


def test_count_route_documents_bucket_and_no_page_parameters() -> None:
    params = _by_name(_operation("/v1/events/count")["parameters"])
    assert params["bucket"]["schema"]["anyOf"][0]["enum"] == ["1m", "1h", "1d"]
    assert "limit" not in params and "cursor" not in params
