"""``eventstrata tail``: follow the live tail of a tenant from a terminal (SSE client).

Reconnects by itself after a server restart (``reconnect``) or a dropped connection, resuming
after the last position it received (``Last-Event-ID``), so nothing is missed or repeated.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console

from eventstrata.config import api_key, api_url
from eventstrata.tail.wire import SseMessage, SseParser

app = typer.Typer(help="Follow live events (Server-Sent Events from /v1/tail).")


def _pretty(console: Console, msg: SseMessage) -> None:
    if msg.event == "message":
        e: dict[str, Any] = orjson.loads(msg.data)
        who = e.get("user_id") or "-"
        console.print(
            f"[dim]{msg.id:>8}[/dim] {e.get('timestamp')} [bold]{e.get('type')}[/bold] "
            f"user={who} id={e.get('id')}",
            highlight=False,
            markup=True,
        )
    elif msg.event == "lagged":
        console.print(f"[yellow]lagged[/yellow] {msg.data} — catching up from storage", highlight=False)
    elif msg.event in ("reconnect", "error"):
        console.print(f"[red]{msg.event}[/red] {msg.data}", highlight=False)


@app.command()
def tail(
    *,
    api: Annotated[str | None, typer.Option(help="API base URL (default: EVENTSTRATA_API_URL or the "
                                             "configured port).")] = None,
    key: Annotated[str | None, typer.Option(help="API key (default: EVENTSTRATA_API_KEY).")] = None,
    after: Annotated[str | None, typer.Option(help="Resume after this position (event id).")] = None,
    since: Annotated[str | None, typer.Option(help="Start from events with timestamp >= this.")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Event type (repeatable).")] = None,
    user_id: Annotated[list[str] | None, typer.Option("--user-id", help="User id (repeatable).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Any /v1/events filter as name=value, e.g. -p data.plan=pro.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line (stdout).")] = False,
    show_heartbeats: Annotated[bool, typer.Option("--heartbeats", help="Print heartbeats.")] = False,
    max_events: Annotated[int, typer.Option(help="Exit after this many events (0 = forever).")] = 0,
) -> None:
    """Print matching events as they are stored; Ctrl-C stops."""
    key = key or api_key()
    if not key:
        typer.echo("eventstrata: an API key is required (--key or EVENTSTRATA_API_KEY)", err=True)
        raise typer.Exit(2)
    params: list[tuple[str, str]] = [("type", t) for t in type_ or ()]
    params += [("user_id", u) for u in user_id or ()]
    for p in param or ():
        name, sep, value = p.partition("=")
        if not sep:
            typer.echo(f"eventstrata: --param {p!r}: expected name=value", err=True)
            raise typer.Exit(2)
        params.append((name, value))
    if since:
        params.append(("since", since))
    base = (api or api_url()).rstrip("/")
    console = Console(stderr=as_json)
    last_id = after
    seen = 0
    backoff = 0.5
    try:
        while True:
            headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                with httpx.stream("GET", f"{base}/v1/tail", params=tuple(params), headers=headers,
                                  timeout=httpx.Timeout(10.0, read=None)) as resp:
                    if resp.status_code != 200:
                        resp.read()
                        typer.echo(f"eventstrata: {resp.status_code} {resp.text}", err=True)
                        raise typer.Exit(1 if resp.status_code < 500 else 3)
                    backoff = 0.5
                    parser = SseParser()
                    for chunk in resp.iter_text():
                        for msg in parser.feed(chunk):
                            if msg.id is not None:
                                last_id = msg.id
                            if msg.event == "message":
                                seen += 1
                                if as_json:
                                    sys.stdout.write(msg.data + "\n")
                                    sys.stdout.flush()
                                else:
                                    _pretty(console, msg)
                                if max_events and seen >= max_events:
                                    return
                            elif msg.event == "heartbeat":
                                if show_heartbeats and not as_json:
                                    console.print(f"[dim]heartbeat {msg.data}[/dim]", highlight=False)
                            elif msg.event == "error":
                                _pretty(console, msg)
                                raise typer.Exit(1)
                            else:
                                _pretty(console, msg)
            except httpx.TransportError as exc:
                console.print(f"[red]connection lost[/red] ({exc}); reconnecting after {last_id}",
                              highlight=False)
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
    except KeyboardInterrupt:
        return
