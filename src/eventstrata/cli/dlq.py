"""``eventstrata dlq list|show|replay`` — inspect and re-publish dead letters.

Reads the DLQ topic (``EVENTSTRATA_DLQ_TOPIC``) from its beginning up to its end offsets at
the time of the call, without a consumer group (nothing is committed). ``replay`` re-publishes
dead letters to the raw topic (``EVENTSTRATA_TOPIC``) with their original key and headers (the
``es-*`` DLQ headers removed), waiting for every acknowledgement; the ingest worker then
normalizes them again (idempotently: a replayed event that is now valid is stored once).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eventstrata.config import ConfigError, Settings
from eventstrata.ingest.dlq import (
    H_CODE,
    H_MESSAGE,
    H_OFFSET,
    H_PARTITION,
    H_TIME,
    H_TOPIC,
    header,
    original_headers,
)
from eventstrata.timeutil import format_ms

app = typer.Typer(help="Inspect and re-publish dead letters (bad input).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line for list).")]
CodeOpt = Annotated[str | None, typer.Option("--code", help="Only dead letters with this error code.")]


@dataclass(frozen=True, slots=True)
class Letter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def code(self) -> str:
        return _text(header(self.headers, H_CODE))

    def summary(self) -> dict[str, Any]:
        h = self.headers
        t = header(h, H_TIME)
        return {
            "partition": self.partition,
            "offset": self.offset,
            "code": self.code(),
            "message": _text(header(h, H_MESSAGE)),
            "source": (
                f"{_text(header(h, H_TOPIC))}[{_text(header(h, H_PARTITION))}]@{_text(header(h, H_OFFSET))}"
            ),
            "time": format_ms(int(t)) if t and t.isdigit() else None,
            "bytes": len(self.value),
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "headers": [[k, v.decode("utf-8", "replace")] for k, v in self.headers],
            "value": self.value.decode("utf-8", "replace"),
        }


def _text(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


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


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of ``topic`` (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(int(p["partition"]) for d in described if d.get("error_code") == 0 for p in d["partitions"])


async def read_letters(
    settings: Settings, *, code: str | None = None, timeout_s: float = 30.0
) -> list[Letter]:
    """Every dead letter currently in the DLQ topic (optionally only ``code``), in
    (partition, offset) order; gives up reading after ``timeout_s``. Raises ``KafkaError``
    when the broker is unreachable."""
    c = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    out: list[Letter] = []
    try:
        parts = await topic_partitions(settings.kafka_bootstrap, settings.dlq_topic)
        tps = [TopicPartition(settings.dlq_topic, p) for p in sorted(parts)]
        if not tps:
            return []
        c.assign(tps)
        ends = await c.end_offsets(tps)
        begins = await c.beginning_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > begins[tp]}
        await c.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            got = await c.getmany(*remaining, timeout_ms=500)
            for tp, recs in got.items():
                for r in recs:
                    if r.offset < ends[tp]:
                        out.append(Letter(r.partition, r.offset, r.key, r.value or b"", tuple(r.headers)))
                    if r.offset >= ends[tp] - 1:
                        remaining.discard(tp)
    finally:
        await c.stop()
    if code is not None:
        out = [x for x in out if x.code() == code]
    return sorted(out, key=lambda x: (x.partition, x.offset))


async def republish(settings: Settings, letters: Sequence[Letter],
                    on_acked: Callable[[int], None] | None = None) -> int:
    """Send ``letters`` to the raw topic with their original key and headers; waits for every
    ack (``acks="all"``), calling ``on_acked(1)`` for each one as it arrives (for a progress
    bar). Returns the count. Raises ``KafkaError``."""
    p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5,
                         max_request_size=max(1_048_576, settings.max_event_bytes * 4 + 65_536))
    await p.start()
    try:
        def acked(fut: asyncio.Future[Any]) -> None:
            if on_acked is not None and not fut.cancelled() and fut.exception() is None:
                on_acked(1)

        futs = []
        for x in letters:
            headers = list(original_headers(x.headers))
            fut = await p.send(settings.topic, value=x.value, key=x.key, headers=headers)
            fut.add_done_callback(acked)
            futs.append(fut)
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return len(letters)


@app.command("list")
def list_cmd(
    code: CodeOpt = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (newest last).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters: partition, offset, error code, message, source position."""
    letters = asyncio.run(read_letters(_settings(), code=code))[-limit:] if limit > 0 else []
    if as_json:
        for x in letters:
            typer.echo(json.dumps(x.summary()))
        return
    if not letters:
        typer.echo("no dead letters")
        return
    for x in letters:
        s = x.summary()
        typer.echo(f"{s['partition']}@{s['offset']:<8} {s['code']:<17} {s['source']:<28} {s['message'][:80]}")


@app.command("show")
def show_cmd(
    offset: Annotated[int, typer.Argument(help="Offset of the dead letter in the DLQ topic.")],
    partition: Annotated[int, typer.Option(help="DLQ partition.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show one dead letter: headers, key and original bytes."""
    letters = [x for x in asyncio.run(read_letters(_settings()))
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
            letters = await read_letters(settings, code=code)
            progress.update(task, total=len(letters))
            return await republish(settings, letters, on_acked=lambda k: progress.advance(task, k))

        n = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps({"replayed": n, "topic": settings.topic, "code": code}))
    else:
        typer.echo(f"re-published {n} dead letter(s) to {settings.topic}")
