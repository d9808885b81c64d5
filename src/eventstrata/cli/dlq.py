"""``eventstrata dlq list|show|replay`` — inspect and re-publish dead letters.

Local mode reads the DLQ topic (``EVENTSTRATA_DLQ_TOPIC``) of the stack, every tenant's dead
letters, from its beginning up to its end offsets at the time of the call, without a consumer
group (``ingest.dlq_topic``). ``replay`` re-publishes dead letters to the raw topic
(``EVENTSTRATA_TOPIC``) with their original key and headers, waiting for every acknowledgement.

Remote mode (``list`` and ``show`` with ``--key`` or ``EVENTSTRATA_API_KEY``; ``cli.remote``)
asks the API's ``/v1/admin/dead-letters`` with an admin key: the dead letters that name the
key's tenant, among the newest of each partition.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eventstrata.cli.remote import ApiOpt, KeyOpt, remote_client, remote_key
from eventstrata.config import ConfigError, Settings
from eventstrata.ingest.dlq_topic import Letter, read_letters, republish

app = typer.Typer(help="Inspect and re-publish dead letters (bad input).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line for list).")]
CodeOpt = Annotated[str | None, typer.Option("--code", help="Only dead letters with this error code.")]


def _settings() -> Settings:
    try:
        s = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not s.kafka_bootstrap:
        typer.echo("error: EVENTSTRATA_KAFKA_BOOTSTRAP is not set (or run `eventstrata dev up`)", err=True)
        raise typer.Exit(2)
    return s


async def _letters(settings: Settings, code: str | None = None) -> list[Letter]:
    return await read_letters(settings.kafka_bootstrap, settings.dlq_topic, code=code,
                              security=settings.kafka_security())


@app.command("list")
def list_cmd(
    code: CodeOpt = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (newest last).")] = 100,
    as_json: JsonOpt = False,
    api: ApiOpt = None,
    key: KeyOpt = None,
) -> None:
    """List dead letters: partition, offset, error code, message, source position."""
    admin_key = remote_key(key)
    summaries: list[dict[str, Any]]
    if limit <= 0:
        summaries = []
    elif admin_key:
        with remote_client(api, admin_key) as es:
            summaries = list(es.dead_letters(code, min(limit, 1000)).letters)
    else:
        summaries = [x.summary() for x in asyncio.run(_letters(_settings(), code))[-limit:]]
    if as_json:
        for s in summaries:
            typer.echo(json.dumps(s))
        return
    if not summaries:
        typer.echo("no dead letters")
        return
    for s in summaries:
        typer.echo(f"{s['partition']}@{s['offset']:<8} {s['code']:<17} {s['source']:<28} {s['message'][:80]}")


@app.command("show")
def show_cmd(
    offset: Annotated[int, typer.Argument(help="Offset of the dead letter in the DLQ topic.")],
    partition: Annotated[int, typer.Option(help="DLQ partition.")] = 0,
    as_json: JsonOpt = False,
    api: ApiOpt = None,
    key: KeyOpt = None,
) -> None:
    """Show one dead letter: headers, key and original bytes."""
    admin_key = remote_key(key)
    if admin_key:
        with remote_client(api, admin_key) as es:
            d = es.dead_letter(partition, offset)
    else:
        letters = [x for x in asyncio.run(_letters(_settings()))
                   if x.offset == offset and x.partition == partition]
        if not letters:
            typer.echo(f"error: no dead letter at partition {partition} offset {offset}", err=True)
            raise typer.Exit(1)
        d = letters[0].detail()
    if as_json:
        typer.echo(json.dumps(d))
        return
    for k in ("partition", "offset", "code", "message", "source", "time", "key"):
        typer.echo(f"{k:<10} {d[k]}")
    for k, v in d["headers"]:
        typer.echo(f"header     {k}: {v}")
    typer.echo(f"value      {d['value']}")


@app.command("replay")
def replay_cmd(code: CodeOpt = None, as_json: JsonOpt = False) -> None:
    """Re-publish dead letters (optionally only CODE) to the raw topic for re-ingestion, with a
    progress bar on stderr."""
    settings = _settings()
    columns = (TextColumn("re-publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=as_json) as progress:
        task = progress.add_task("replay", total=None)

        async def go() -> int:
            letters = await _letters(settings, code)
            progress.update(task, total=len(letters))
            return await republish(settings.kafka_bootstrap, settings.topic, letters,
                                   security=settings.kafka_security(),
                                   max_request_size=max(1_048_576, settings.max_event_bytes * 4 + 65_536),
                                   on_acked=lambda k: progress.advance(task, k))

        n = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps({"replayed": n, "topic": settings.topic, "code": code}))
    else:
        typer.echo(f"re-published {n} dead letter(s) to {settings.topic}")
