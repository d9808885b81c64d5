"""FastAPI dependencies of the native API. The tenant comes from the credential only."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from eventstrata.auth import KEY_RE, ApiKeys, MissingScope, Scope
from eventstrata.errors import ApiError, ErrorDetail
from eventstrata.ratelimit import Kind, RateLimited, RateLimiter

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer es_…`")


async def tenant_from_bearer(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The tenant of the request's ``Authorization: Bearer <key>``, a key that may read.
    Raises ``ApiError(401)`` for a missing, unknown or revoked key, ``ApiError(403)`` for a key
    without the ``read`` scope. Reads Redis unless the key was found valid within
    ``EVENTSTRATA_API_KEY_CACHE`` (``auth.ApiKeys.grant``)."""
    return (await _grant(request, creds.credentials if creds is not None else "", "read"))[0]


def bearer_key(request: Request) -> str:
    """The key of the request's ``Authorization`` header ("" when there is none), parsed exactly
    as ``HTTPBearer(auto_error=False)`` does: scheme ``bearer`` in any case, then the key."""
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    return key if scheme.lower() == "bearer" else ""


async def request_tenant(request: Request, scope: Scope = "read") -> str:
    """``tenant_from_bearer`` without FastAPI's dependency machinery, for the hot read routes
    (they declare their OpenAPI document with ``api.paramdoc``) and, with ``scope="ingest"``,
    for ingest (``bearer_key``)."""
    return (await _grant(request, bearer_key(request), scope))[0]


async def request_grant(request: Request, scope: Scope = "read") -> tuple[str, frozenset[Scope]]:
    """``request_tenant`` that also returns the key's scopes (one key lookup for both)."""
    return await _grant(request, bearer_key(request), scope)


def forbidden(exc: MissingScope) -> ApiError:
    """The 403 of a valid key without the scope a request needs."""
    return ApiError(403, "forbidden", str(exc),
                    (ErrorDetail("Authorization", f"needs the {exc.scope} scope"),))


async def _grant(request: Request, key: str, scope: Scope) -> tuple[str, frozenset[Scope]]:
    """The tenant and scopes of ``key``, which must hold ``scope`` (401 / 403 otherwise); spends
    its budget and puts the tenant on ``request.state``."""
    if not key:
        raise ApiError(401, "unauthorized", "missing bearer API key",
                       (ErrorDetail("Authorization", "expected `Bearer <key>`"),))
    keys: ApiKeys = request.app.state.api_keys
    grant = await keys.grant(key)
    if grant is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key",
                       (ErrorDetail("Authorization", "unknown or revoked key"),))
    tenant, scopes = grant
    if scope not in scopes:
        raise forbidden(MissingScope(tenant, scope, scopes))
    await spend(request.app.state.rate_limiter, key, "reads" if scope == "read" else "ingest")
    request.state.tenant = tenant
    return grant


def too_many(exc: RateLimited) -> ApiError:
    """The 429 of a key that spent its budget (``Retry-After`` until the window ends)."""
    return ApiError(429, "rate_limited", str(exc),
                    (ErrorDetail("Authorization", f"{exc.kind} budget spent"),), retry_after=exc.retry_after)


async def spend(limiter: RateLimiter, key: str, kind: Kind, cost: int = 1) -> None:
    """Spend ``cost`` of the (valid) ``key``'s ``kind`` budget now. Raises ``ApiError(429)``
    with ``Retry-After`` when it is spent; blocks on Redis only when that limit is on."""
    m = KEY_RE.match(key)
    if m is None:
        return
    try:
        await limiter.spend(m.group(1), kind, time.time_ns() // 1_000_000, cost)
    except RateLimited as exc:
        raise too_many(exc) from None


Tenant = Annotated[str, Depends(tenant_from_bearer)]
