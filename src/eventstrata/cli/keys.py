"""``eventstrata keys create|list|revoke`` — tenant API keys (see ``eventstrata.auth``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from eventstrata.auth import ApiKeys
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
def create(tenant: Annotated[str, typer.Option(help="Tenant id the key reads.")],
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Create a key for TENANT and print it (shown only this once)."""
    try:
        key = _run(lambda k: k.create(tenant, now_ms=int(time.time() * 1000)))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"tenant": tenant, "key": key}))
    else:
        typer.echo(f"tenant {tenant}\nkey    {key}\n(store it now: it is not shown again)")


@app.command("list")
def list_keys(tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (lookup, tenant, created, revoked) — never the keys themselves."""
    infos = _run(lambda k: k.list(tenant))
    rows = [{"lookup": i.lookup, "tenant": i.tenant, "created": format_ms(i.created_ms), "revoked": i.revoked}
            for i in infos]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = "revoked" if r["revoked"] else "active"
        typer.echo(f"{r['lookup']}  {r['tenant']:<20} {r['created']}  {state}")


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
