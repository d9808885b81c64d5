"""``eventstrata init``: prepare a deployment's external pieces before the processes start.

Creates the raw and dead-letter topics (``EVENTSTRATA_TOPIC_PARTITIONS`` and 1 partition,
``--replication`` copies; topics that exist are left as they are), checks that Redis answers
with the configured credentials, and checks that the archive is reachable (with
``--create-bucket``, an S3 bucket that does not exist yet is created). Idempotent: the compose
file and the Kubernetes Job run it before the workers. Retries until ``--wait`` seconds pass
(the servers may still be starting), then exits 1 naming what failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import typer

from eventstrata.archive.destination import open_destination
from eventstrata.archive.s3 import S3Destination
from eventstrata.config import ConfigError, Settings
from eventstrata.localstack.kafka import create_topics
from eventstrata.redisconn import connect_redis

Step = tuple[str, Callable[[], Coroutine[Any, Any, None]]]


def _steps(settings: Settings, replication: int, create_bucket: bool) -> list[Step]:
    """The named checks, in order; each raises when its server is not ready (yet)."""
    async def topics() -> None:
        await create_topics(settings.kafka_bootstrap, [(settings.topic, settings.topic_partitions),
                                                       (settings.dlq_topic, 1)],
                            security=settings.kafka_security(), replication=replication)

    async def redis() -> None:
        r = connect_redis(settings)
        try:
            await asyncio.wait_for(r.ping(), 10)
        finally:
            await r.aclose()

    def archive() -> None:
        dest = open_destination(settings)
        if create_bucket and isinstance(dest, S3Destination):
            dest.create_bucket()
        dest.check()

    return [("kafka topics", topics), ("redis", redis), ("archive", lambda: asyncio.to_thread(archive))]


def init(
    replication: int = typer.Option(1, "--replication", min=1, help="Copies of each topic's partitions."),
    create_bucket: bool = typer.Option(False, "--create-bucket",
                                       help="Create the S3 bucket if it is missing."),
    wait: float = typer.Option(120.0, "--wait", help="Keep retrying for this many seconds."),
) -> None:
    """Create the topics and check Redis and the archive (idempotent; see the module docstring)."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"eventstrata init: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not (settings.kafka_bootstrap and settings.redis_url):
        typer.echo("eventstrata init: EVENTSTRATA_KAFKA_BOOTSTRAP and EVENTSTRATA_REDIS_URL must be set",
                   err=True)
        raise typer.Exit(2)
    deadline = time.monotonic() + wait
    for name, step in _steps(settings, replication, create_bucket):
        delay = 0.5
        while True:
            try:
                asyncio.run(step())
                typer.echo(f"{name}: ok")
                break
            except Exception as exc:  # reported and retried until the deadline, then the exit code says it
                if time.monotonic() + delay > deadline:
                    typer.echo(f"eventstrata init: {name} failed: {type(exc).__name__}: {exc}", err=True)
                    raise typer.Exit(1) from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
