"""FastAPI dependencies of the native API. The tenant comes from the credential only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from eventstrata.auth import ApiKeys
from eventstrata.errors import ApiError, ErrorDetail

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer es_…`")


async def tenant_from_bearer(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The tenant of the request's ``Authorization: Bearer <key>``. Raises ``ApiError(401)``
    for a missing, unknown or revoked key. Reads Redis (no cache: revocation is immediate)."""
    if creds is None or not creds.credentials:
        raise ApiError(401, "unauthorized", "missing bearer API key",
                       (ErrorDetail("Authorization", "expected `Bearer <key>`"),))
    keys: ApiKeys = request.app.state.api_keys
    tenant = await keys.resolve(creds.credentials)
    if tenant is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key",
                       (ErrorDetail("Authorization", "unknown or revoked key"),))
    request.state.tenant = tenant
    return tenant


Tenant = Annotated[str, Depends(tenant_from_bearer)]
