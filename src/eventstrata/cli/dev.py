"""``eventstrata dev up|down|status|fetch``: the local stack (README, "Set-up")."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import typer

from eventstrata.config import ConfigError, Settings
from eventstrata.localstack.devstack import AlreadyRunning, DevStack, StackInfo
from eventstrata.localstack.kafka import fetch_jars, jars_present
from eventstrata.localstack.packages import ensure_chromium_installed
from eventstrata.localstack.proc import StackError
from eventstrata.localstack.redis import ensure_redis_installed
from eventstrata.localstack.seaweed import ensure_weed, weed_path

app = typer.Typer(help="The local stack: real Kafka + Redis + the app processes.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"eventstrata: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def up(
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Return once everything answers; leave it running."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the endpoints as one JSON object on stdout."),
    apps: bool = typer.Option(True, "--apps/--no-apps", help="Also start ingest, archive and the API."),
    tour: bool = typer.Option(
        False, "--tour", help="Once up: create a demo tenant and key, publish demo events over the last "
        "30 days, and print ready-to-paste curl commands (what `make run` does)."
    ),
) -> None:
    """Start Kafka, Redis, the raw/DLQ topics and the app processes (unless EVENTSTRATA_KAFKA_BOOTSTRAP /
    EVENTSTRATA_REDIS_URL name existing servers). Foreground: Ctrl-C stops everything; a dying
    component is reported and stops the stack (exit 1)."""
    stack = DevStack(_settings(), apps=apps)

    def ready(info: StackInfo) -> None:
        if as_json:
            typer.echo(json.dumps(info.to_json()))
        else:
            typer.echo(f"kafka  {info.kafka}  (Kafka {info.kafka_version})")
            typer.echo(f"redis  {info.redis}")
            typer.echo(f"topics {info.topic}, {info.dlq_topic}")
            typer.echo(f"api    {info.api or '(not started)'}")
            typer.echo(f"state  {info.state_dir}")
        if tour and info.api:
            _run_tour(info)
        if not detach:
            typer.echo("eventstrata dev: running; press Ctrl-C to stop", err=True)
        sys.stdout.flush()

    try:
        code = stack.up(detach=detach, on_ready=ready)
    except AlreadyRunning as exc:
        typer.echo(f"eventstrata dev up: {exc}", err=True)
        raise typer.Exit(1) from None
    except StackError as exc:
        typer.echo(f"eventstrata dev up: ERROR: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def _run_tour(info: StackInfo) -> None:
    """Seed the demo tenant through the running stack and print the tour. A failure is reported
    and leaves the stack running (the user can still explore it)."""
    from eventstrata.demo import seed_demo, tour_text

    settings = Settings.from_env(kafka_bootstrap=info.kafka, redis_url=info.redis)
    typer.echo("seeding the demo tenant (publishing events and waiting for the ingest worker)...", err=True)
    try:
        demo = asyncio.run(seed_demo(settings, info.api or ""))
    except Exception as exc:
        typer.echo(f"eventstrata dev up: demo seeding failed: {exc!r}", err=True)
        return
    typer.echo(tour_text(demo))


@app.command()
def down() -> None:
    """Stop what `dev up` started (by recorded pid). Data and logs in the state dir are kept."""
    stack = DevStack(_settings())
    stopped = stack.down()
    if stopped:
        typer.echo(f"eventstrata dev down: stopped {', '.join(stopped)}")
    else:
        typer.echo(f"eventstrata dev down: nothing running in {stack.state_dir}")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout.")) -> None:
    """Is the stack of EVENTSTRATA_STATE_DIR running and answering? Exit 0 if yes, 1 if not."""
    report = DevStack(_settings()).status()
    if as_json:
        typer.echo(json.dumps(report))
    else:
        typer.echo(f"running: {'yes' if report['running'] else 'no'}  ({report['state_dir']})")
        for key in ("api", "kafka", "redis", "topic", "dlq_topic", "kafka_version"):
            if report.get(key):
                typer.echo(f"  {key:<13} {report[key]}")
        for proc in report["processes"]:
            typer.echo(
                f"  {proc['name']:<13} pid {proc['pid']:<8} {'alive' if proc['alive'] else 'DEAD'}  "
                f"log {proc['log']}"
            )
    raise typer.Exit(0 if report["running"] else 1)


@app.command()
def fetch(
    s3: bool = typer.Option(False, "--s3", help="Also build SeaweedFS (weed, an S3-compatible server) "
                            "with Go into the cache: the tests' S3 archive; ~5 min of CPU the first time."),
    browser: bool = typer.Option(False, "--browser", help="Also install Debian's chromium (apt-get, "
                                 "when root): the console's end-to-end tests drive it headless."),
) -> None:
    """Install what the local stack needs: Kafka jars (Maven Central, cached outside the repo) and
    redis-server (apt-get, when root); with ``--s3`` SeaweedFS too, with ``--browser``
    Chromium. Idempotent."""
    try:
        t0 = time.monotonic()
        cached = jars_present()
        lib = fetch_jars()
        note = "already cached" if cached else f"downloaded in {time.monotonic() - t0:.1f} s"
        typer.echo(f"kafka jars: {lib} ({note}, {len(list(lib.glob('*.jar')))} jars)")
        typer.echo(f"redis-server: {ensure_redis_installed()}")
        if s3:
            t0, built = time.monotonic(), weed_path().is_file()
            path = ensure_weed()
            note = "already built" if built else f"built in {time.monotonic() - t0:.0f} s"
            typer.echo(f"seaweedfs: {path} ({note})")
        if browser:
            typer.echo(f"chromium: {ensure_chromium_installed()}")
    except StackError as exc:
        typer.echo(f"eventstrata dev fetch: ERROR: {exc}", err=True)
        raise typer.Exit(1) from None
