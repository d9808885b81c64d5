"""``eventstrata query`` — the native query from a terminal.

Filters are given as ``NAME=VALUE`` arguments with the names of ``GET /v1/events``
(``user_id=u1 type=purchase data.plan=pro since=2026-01-01``). Prints one JSON event per line;
``--all`` walks every page (progress on stderr), ``--count`` (or ``eventstrata count``) prints
the exact count.

Two modes: with an API key (``--key`` or ``EVENTSTRATA_API_KEY``) it asks a remote API
(``--api`` or ``EVENTSTRATA_API_URL``) through ``eventstrata.client``, the tenant being the
key's; otherwise it reads the tiers of the local stack directly (``--tenant`` required).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from eventstrata.archive.destination import open_destination
from eventstrata.archive.reader import ColdReader
from eventstrata.auth import cursor_secret
from eventstrata.cli.remote import ApiOpt, KeyOpt, local_tenant, remote_client, remote_key
from eventstrata.config import ConfigError, Settings
from eventstrata.errors import ApiError
from eventstrata.hotstore.interface import RedisHotStore
from eventstrata.native_shape import native_event
from eventstrata.query.engine import QueryEngine
from eventstrata.query.params import parse_query_items
from eventstrata.redisconn import connect_redis

FiltersArg = Annotated[list[str] | None, typer.Argument(help="NAME=VALUE filters of GET /v1/events.")]
TenantOpt = Annotated[str | None, typer.Option(help="Tenant to read (local mode).")]


def _print_page(events: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        for e in events:
            sys.stdout.write(orjson.dumps(e).decode() + "\n")
    else:
        _print_table(events)


def _remote(api: str | None, key: str, pairs: list[tuple[str, str]], *, all_pages: bool, count: bool,
            as_json: bool) -> None:
    """The query through the API (``cli.remote``). Exits 1 when it refuses, 2 for a 400."""
    filters: dict[str, list[str]] = {}
    for name, value in pairs:
        filters.setdefault(name, []).append(value)
    cursors = filters.pop("cursor", [])
    cursor: str | None = cursors[-1] if cursors else None
    with remote_client(api, key) as es:
        if count:
            typer.echo(str(es.count(**filters).count))
            return
        while True:
            page = es.page(cursor, **filters)
            _print_page(list(page.events), as_json)
            cursor = page.next_cursor
            if not all_pages or cursor is None:
                return


def _print_table(events: list[dict[str, object]]) -> None:
    table = Table("time (UTC)", "type", "user", "name", "id", "format", box=None, header_style="bold")
    columns = ("timestamp", "type", "user_id", "name", "id", "format")
    for e in events:
        table.add_row(*(str(e.get(k) or "") for k in columns))
    Console().print(table)


def query(
    filters: FiltersArg = None,
    tenant: TenantOpt = None,
    api: ApiOpt = None,
    key: KeyOpt = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Walk every page.")] = False,
    count: Annotated[bool, typer.Option("--count", help="Print the exact count only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line (for scripts).")] = False,
) -> None:
    """Query a tenant's events across both tiers, newest first: a table, or JSON lines with --json.

    Examples: eventstrata query --tenant demo user_id=user-000 type=purchase limit=20;
    eventstrata query --api https://events.example.com --key es_… type=purchase --count

    Exit codes: 0 ok, 1 the remote API refused, 2 bad filters or configuration."""
    pairs: list[tuple[str, str]] = []
    for f in filters or []:
        name, sep, value = f.partition("=")
        if not sep:
            typer.echo(f"error: expected NAME=VALUE, got {f!r}", err=True)
            raise typer.Exit(2)
        pairs.append((name, value))
    key = remote_key(key)
    if key:
        _remote(api, key, pairs, all_pages=all_pages, count=count, as_json=as_json)
        return
    tenant = local_tenant(tenant)
    try:
        settings = Settings.from_env()
        q = parse_query_items(pairs)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None

    async def run() -> None:
        redis = connect_redis(settings)
        cold = ColdReader(open_destination(settings))
        layout = settings.layout()
        try:
            engine = QueryEngine(RedisHotStore(redis, layout), cold,
                                 secret=await cursor_secret(redis, layout, settings.cursor_secret))
            now = int(time.time() * 1000)
            if count:
                typer.echo(str(await engine.count(tenant, q.filter, now_ms=now)))
                return
            cursor = q.cursor
            n = 0
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=None,
                          transient=True, disable=not (all_pages and sys.stderr.isatty())) as prog:
                task = prog.add_task("0 events", total=None)
                while True:
                    page = await engine.page(tenant, q.filter, order=q.order, sort=q.sort, limit=q.limit,
                                             cursor=cursor, now_ms=now)
                    _print_page([native_event(e) for e in page.events], as_json)
                    n += len(page.events)
                    prog.update(task, description=f"{n} events")
                    cursor = page.next_cursor
                    if not all_pages or cursor is None:
                        break
        finally:
            await redis.aclose()
            cold.close()

    try:
        asyncio.run(run())
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def count(
    filters: FiltersArg = None,
    tenant: TenantOpt = None,
    api: ApiOpt = None,
    key: KeyOpt = None,
) -> None:
    """Print the exact number of a tenant's events that match the filters, across both tiers
    (the same as query --count).

    Examples: eventstrata count --tenant demo type=purchase since=2026-11-01;
    eventstrata count --api https://events.example.com --key es_… user_id=u1

    Exit codes: 0 ok, 1 the remote API refused, 2 bad filters or configuration."""
    query(filters, tenant=tenant, api=api, key=key, count=True)
