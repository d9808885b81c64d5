"""``eventstrata produce FILE|-``: publish JSON lines (any supported format) to the raw topic,
directly to Kafka or, with ``--http``, through a remote API's ``POST /v1/ingest``
(``eventstrata.client``; ``--api``/``--key`` or ``EVENTSTRATA_API_URL``/``EVENTSTRATA_API_KEY``)."""

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

from eventstrata.client import INGEST_CHUNK, Client
from eventstrata.client import ApiError as ClientError
from eventstrata.config import ConfigError, Settings, api_key, api_url
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
    http: Annotated[bool, typer.Option("--http", help="Send through the API's POST /v1/ingest (a key with "
                                       "the ingest scope; the tenant is the key's).")] = False,
    api: Annotated[str | None, typer.Option(help="API base URL for --http (default EVENTSTRATA_API_URL).")]
    = None,
    key: Annotated[str | None, typer.Option(help="API key for --http (default EVENTSTRATA_API_KEY).")] = None,
) -> None:
    """Publish every line of SOURCE as one event to Kafka, with a progress bar and a summary.

    Lines are sent as they are; invalid ones are dead-lettered by the ingest worker, not here.
    Exit codes: 0 all acknowledged, 1 some messages were rejected by the broker, 2 bad usage or
    configuration.

    Example: eventstrata produce events.jsonl --format trieve --tenant acme;
    eventstrata produce events.jsonl --http --api https://events.example.com --key es_…
    """
    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if http:
        _produce_http(source, fmt, api or api_url(), key or api_key(), json_out=json_out,
                      unsupported=store is not None or topic is not None)
        return
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
                                     security=settings.kafka_security(),
                                     on_progress=lambda n: progress.advance(task, n)))
    summary = {"sent": result.sent, "failed": result.failed, "topic": topic or settings.topic}
    if json_out:
        typer.echo(orjson.dumps(summary).decode())
    else:
        console.print(f"sent {result.sent} events to {summary['topic']}, {result.failed} rejected")
    if result.failed:
        raise typer.Exit(1)


def _produce_http(source: str, fmt: str | None, url: str, key: str | None, *, json_out: bool,
                  unsupported: bool) -> None:
    """``produce --http``: the lines of ``source`` through ``POST /v1/ingest`` in chunks, with a
    progress bar. A line that is not a JSON object counts as rejected here. Exits 1 when some
    events were rejected or the API refused, 2 for bad usage."""
    if key is None:
        typer.echo("error: --http needs an API key with the ingest scope (--key or EVENTSTRATA_API_KEY)",
                   err=True)
        raise typer.Exit(2)
    if unsupported:
        typer.echo("error: --store and --topic apply to Kafka only (over HTTP the API names them)", err=True)
        raise typer.Exit(2)
    if source == "-":
        lines = [line for line in sys.stdin.buffer if line.strip()]
    else:
        path = Path(source)
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {source}", param_hint="SOURCE")
        lines = [line for line in path.open("rb") if line.strip()]
    objects: list[dict[str, object]] = []
    bad = 0
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            objects.append(obj)
        else:
            bad += 1
    console = Console(stderr=True)
    accepted = rejected = 0
    try:
        columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Client(url, key) as es, Progress(*columns, console=console, disable=json_out) as progress:
            task = progress.add_task("send", total=len(objects))
            for start in range(0, len(objects), INGEST_CHUNK):
                result = es.ingest(objects[start : start + INGEST_CHUNK], format=fmt)
                accepted += sum(1 for i in result.ids if i is not None)
                rejected += len(result.rejected)
                progress.advance(task, len(result.ids))
    except ClientError as exc:
        typer.echo(f"error: {exc.message} ({exc.status} {exc.code}); {accepted} events were accepted before",
                   err=True)
        raise typer.Exit(1) from None
    summary = {"sent": accepted, "rejected": rejected + bad, "api": url}
    if json_out:
        typer.echo(orjson.dumps(summary).decode())
    else:
        console.print(f"sent {accepted} events through {url}, {rejected + bad} rejected")
    if rejected or bad:
        raise typer.Exit(1)
