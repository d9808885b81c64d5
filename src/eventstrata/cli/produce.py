"""``eventstrata produce FILE|-``: publish JSON lines (any supported format) to the raw topic."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eventstrata.config import ConfigError, Settings
from eventstrata.produce import Outgoing, parse_line, publish

FORMATS = ("native", "trieve", "thisdata", "fluidtopics", "eventstore")


def produce(
    source: Annotated[str, typer.Argument(help="A file of JSON lines, or - for standard input.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help=f"Set the es-format header ({', '.join(FORMATS)}). "
                     "Default: the worker detects the format from each object's shape."),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", "-t", help="Set the es-tenant header (else the body's tenant field)."),
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="Set the es-store header (event-store events).")
    ] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Topic (default EVENTSTRATA_TOPIC).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Publish every line of SOURCE as one event to Kafka, with a progress bar and a summary.

    Lines are sent as they are; invalid ones are dead-lettered by the ingest worker, not here.
    Exit codes: 0 all acknowledged, 1 some messages were rejected by the broker, 2 bad usage or
    configuration.

    Example: eventstrata produce events.jsonl --format trieve --tenant acme
    """
    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.kafka_bootstrap:
        typer.echo("EVENTSTRATA_KAFKA_BOOTSTRAP is not set (start the stack with `eventstrata dev up`, "
                   "then export the variables it prints)", err=True)
        raise typer.Exit(2)
    stream: BinaryIO
    if source == "-":
        stream = sys.stdin.buffer
        total = None
    else:
        path = Path(source)
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {source}", param_hint="SOURCE")
        total = sum(1 for line in path.open("rb") if line.strip())
        stream = path.open("rb")

    def messages() -> Iterator[Outgoing]:
        for line in stream:
            m = parse_line(line, fmt=fmt, tenant=tenant, store=store)
            if m is not None:
                yield m

    console = Console(stderr=True)
    with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=json_out) as progress:
        task = progress.add_task("publish", total=total)
        result = asyncio.run(publish(settings.kafka_bootstrap, topic or settings.topic, messages(),
                                     on_progress=lambda n: progress.advance(task, n)))
    summary = {"sent": result.sent, "failed": result.failed, "topic": topic or settings.topic}
    if json_out:
        typer.echo(orjson.dumps(summary).decode())
    else:
        console.print(f"sent {result.sent} events to {summary['topic']}, {result.failed} rejected")
    if result.failed:
        raise typer.Exit(1)
