"""``eventstrata keys create|list|revoke`` — tenant API keys (see ``eventstrata.auth``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from eventstrata.auth import DEFAULT_SCOPES, ApiKeys, parse_scopes
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
def create(tenant: Annotated[str, typer.Option(help="Tenant id the key reads and writes.")],
           scope: Annotated[str, typer.Option(
               help="What the key may do: read (queries, tail), ingest (POST /v1/ingest), or both.")]
           = ",".join(DEFAULT_SCOPES),
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Create a key for TENANT and print it (shown only this once)."""
    try:
        scopes = parse_scopes(scope)
        key = _run(lambda k: k.create(tenant, now_ms=int(time.time() * 1000), scopes=scopes))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"tenant": tenant, "key": key, "scopes": list(scopes)}))
    else:
        typer.echo(f"tenant {tenant}\nscopes {','.join(scopes)}\nkey    {key}\n"
                   "(store it now: it is not shown again)")


@app.command("list")
def list_keys(tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (lookup, tenant, scopes, created, revoked) — never the keys themselves."""
    infos = _run(lambda k: k.list(tenant))
    rows = [{"lookup": i.lookup, "tenant": i.tenant, "scopes": list(i.scopes),
             "created": format_ms(i.created_ms), "revoked": i.revoked} for i in infos]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for i in infos:
        state = "revoked" if i.revoked else "active"
        typer.echo(f"{i.lookup}  {i.tenant:<20} {','.join(i.scopes):<12} {format_ms(i.created_ms)}  {state}")


@app.command()
def revoke(
    lookup_or_key: Annotated[str, typer.Argument(help="Key lookup (8 chars) or the full key.")],
) -> None:
    """Revoke a key; it stops working on the next request."""
    found = _run(lambda k: k.revoke(lookup_or_key))
    if not found:
        typer.echo("error: no such key", err=True)
        raise typer.Exit(1)
    typer.echo("revoked")
