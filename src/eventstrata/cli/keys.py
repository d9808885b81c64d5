"""``eventstrata keys create|list|revoke`` — tenant API keys (see ``eventstrata.auth``).

Local mode (the default) works on the stack's Redis and any tenant. Remote mode (``--key`` or
``EVENTSTRATA_API_KEY``, with ``--api``; ``cli.remote``) manages the keys of the admin key's own
tenant through ``/v1/admin/keys``; ``--tenant`` is then refused, the tenant being the key's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from eventstrata.auth import DEFAULT_SCOPES, ApiKeys, KeyInfo, lookup_of, parse_scopes
from eventstrata.cli.remote import ApiOpt, KeyOpt, local_tenant, no_tenant_remotely, remote_client, remote_key
from eventstrata.config import ConfigError, Settings
from eventstrata.redisconn import connect_redis
from eventstrata.timeutil import format_ms

app = typer.Typer(help="Create, list and revoke tenant API keys.", no_args_is_help=True)
T = TypeVar("T")


def _run(fn: Callable[[ApiKeys], Awaitable[T]]) -> T:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go() -> T:
        try:
            redis = connect_redis(settings)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            return await fn(ApiKeys(redis, settings.layout()))
        finally:
            await redis.aclose()

    return asyncio.run(go())


@app.command()
def create(tenant: Annotated[str | None, typer.Option(
               help="Tenant id the key reads and writes (local mode; remote: the admin key's).")] = None,
           scope: Annotated[str, typer.Option(
               help="What the key may do: read (queries, tail), ingest (POST /v1/ingest), admin "
                    "(its tenant's keys, dead letters, archive status), comma-separated.")]
           = ",".join(DEFAULT_SCOPES),
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
           api: ApiOpt = None, key: KeyOpt = None) -> None:
    """Create a key and print it (shown only this once)."""
    try:
        scopes = parse_scopes(scope)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    admin_key = remote_key(key)
    if admin_key:
        no_tenant_remotely(tenant)
        with remote_client(api, admin_key) as es:
            made = es.create_key(scopes)
        tenant, new_key = made.tenant, made.key
    else:
        owner = local_tenant(tenant)
        try:
            new_key = _run(lambda k: k.create(owner, now_ms=int(time.time() * 1000), scopes=scopes))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"tenant": tenant, "key": new_key, "scopes": list(scopes)}))
    else:
        typer.echo(f"tenant {tenant}\nscopes {','.join(scopes)}\nkey    {new_key}\n"
                   "(store it now: it is not shown again)")


@app.command("list")
def list_keys(tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys (local).")] = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
              api: ApiOpt = None, key: KeyOpt = None) -> None:
    """List keys (lookup, tenant, scopes, created, revoked) — never the keys themselves."""
    admin_key = remote_key(key)
    rows: list[dict[str, Any]]
    if admin_key:
        no_tenant_remotely(tenant)
        with remote_client(api, admin_key) as es:
            rows = [{"lookup": k.lookup, "tenant": k.tenant, "scopes": list(k.scopes), "created": k.created,
                     "revoked": k.revoked} for k in es.api_keys()]
    else:
        infos: list[KeyInfo] = _run(lambda k: k.list(tenant))
        rows = [{"lookup": i.lookup, "tenant": i.tenant, "scopes": list(i.scopes),
                 "created": format_ms(i.created_ms), "revoked": i.revoked} for i in infos]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = "revoked" if r["revoked"] else "active"
        typer.echo(f"{r['lookup']}  {r['tenant']:<20} {','.join(r['scopes']):<17} {r['created']}  {state}")


@app.command()
def revoke(
    lookup_or_key: Annotated[str, typer.Argument(help="Key lookup (8 chars) or the full key.")],
    api: ApiOpt = None, key: KeyOpt = None,
) -> None:
    """Revoke a key; it stops working on the next request (remote: a key of the admin key's tenant)."""
    admin_key = remote_key(key)
    if admin_key:
        with remote_client(api, admin_key) as es:
            es.revoke_key(lookup_of(lookup_or_key) or lookup_or_key)
        typer.echo("revoked")
        return
    found = _run(lambda k: k.revoke(lookup_or_key))
    if not found:
        typer.echo("error: no such key", err=True)
        raise typer.Exit(1)
    typer.echo("revoked")
