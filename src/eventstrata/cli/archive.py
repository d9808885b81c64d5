"""``eventstrata archive run-once | run | status``: the cold tier from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eventstrata.archive.destination import open_destination
from eventstrata.archive.service import TenantStatus, archive_status, run_archiver
from eventstrata.cli.remote import ApiOpt, KeyOpt, remote_client, remote_key
from eventstrata.config import ConfigError, Settings, format_duration_ms
from eventstrata.timeutil import format_ms, parse_time_ms

app = typer.Typer(help="Parquet archive: move due hot windows, show the watermark.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"eventstrata: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("run-once")
def run_once(
    now: str = typer.Option(None, help="Event time of the pass (ISO 8601 or epoch ms); default: now."),
    as_json: bool = typer.Option(False, "--json", help="Print the per-tenant reports as JSON."),
) -> None:
    """Archive everything due now (every tenant, with a progress bar on stderr), then exit."""
    settings = _settings()
    try:
        now_ms = parse_time_ms(now) if now is not None else None
    except ValueError as exc:
        typer.echo(f"eventstrata: --now: {exc}", err=True)
        raise typer.Exit(2) from None
    columns = (TextColumn("archiving {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=as_json) as progress:
        task = progress.add_task("", total=None)

        def at(i: int, n: int, tenant: str) -> None:
            progress.update(task, description=tenant, completed=i, total=n)

        reports = asyncio.run(run_archiver(settings, once=True, now_ms=now_ms, on_tenant=at))
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in reports], indent=1))
        return
    for r in reports:
        state = f"skipped ({r.skipped})" if r.skipped else (
            f"windows={r.windows} read={r.events_read} written={r.rows_written} duplicates={r.duplicates} "
            f"files={r.files_written} removed={r.removed} orphans={r.orphans_deleted} "
            f"compacted={','.join(r.compacted_dates) or '-'}")
        typer.echo(f"{r.tenant}: W={format_ms(r.watermark_ms)} {state}")


@app.command("run")
def run() -> None:
    """Archive every EVENTSTRATA_ARCHIVE_INTERVAL until interrupted (same as `worker archive`)."""
    settings = _settings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_archiver(settings, once=False))


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
           api: ApiOpt = None, key: KeyOpt = None) -> None:
    """Per tenant: watermark (manifest and Redis mirror), files, bytes, rows, hot windows
    (remote, with an admin key: the key's tenant only)."""
    admin_key = remote_key(key)
    if admin_key:
        with remote_client(api, admin_key) as es:
            st = es.archive_status()
        rows = [TenantStatus(st.tenant, st.watermark_ms, st.redis_watermark_ms, st.files, st.bytes, st.rows,
                             st.hot_windows)]
    else:
        settings = _settings()
        rows = asyncio.run(archive_status(settings))
        if not as_json:
            retention = settings.archive_retention_ms
            keep = format_duration_ms(retention) if retention else "forever"
            typer.echo(f"archive {open_destination(settings).describe()}; retention: {keep}")
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=1))
        return
    if not rows:
        typer.echo("no tenants")
    for r in rows:
        typer.echo(f"{r.tenant}: W={format_ms(r.watermark_ms)} mirror={format_ms(r.mirror_ms)} "
                   f"files={r.files} bytes={r.bytes} rows={r.rows} hot_windows={r.hot_windows}"
                   + (f" oldest_day={r.oldest_date}" if r.oldest_date else ""))
