"""The ``eventstrata`` command line: a thin registry of per-area typer apps.

Each area owns ``eventstrata/cli/<area>.py`` with its own ``typer.Typer()`` (or command
functions) and registers it here with ONE line below.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping

import typer

from eventstrata.cli import archive, dev, worker
from eventstrata.cli import dlq as dlq_cli
from eventstrata.cli import init as init_cli
from eventstrata.cli import keys as keys_cli
from eventstrata.cli import produce as produce_cli
from eventstrata.cli import query as query_cli
from eventstrata.cli import tail as tail_cli
from eventstrata.cli import users as users_cli
from eventstrata.config import ConfigError, Settings, fill_unset_settings
from eventstrata.localstack.devstack import recorded_endpoints

app = typer.Typer(
    name="eventstrata",
    help="Kafka -> Redis -> Parquet event store: local stack, workers, tools.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

# --- registry: one line per area -----------------------------------------------------------------
app.add_typer(dev.app, name="dev")
app.add_typer(worker.app, name="worker")
app.command("serve")(worker.serve)
app.add_typer(archive.app, name="archive")
app.command("tail")(tail_cli.tail)
app.command("produce")(produce_cli.produce)
app.add_typer(keys_cli.app, name="keys")
app.command("query")(query_cli.query)
app.command("count")(query_cli.count)
app.add_typer(dlq_cli.app, name="dlq")
app.add_typer(users_cli.app, name="users")
app.command("init")(init_cli.init)


# Commands that start or are the stack's own processes: they must see exactly the environment
# they were given (`dev up` would otherwise take a running stack's servers for "existing" ones).
_STACK_COMMANDS = frozenset({"dev", "worker", "serve"})


def use_running_stack(argv: list[str], environ: MutableMapping[str, str] | None = None) -> None:
    """Point tool commands (produce, query, tail, dlq, keys, archive) at the local stack that
    `eventstrata dev up` / `make run` started, when ``EVENTSTRATA_KAFKA_BOOTSTRAP`` /
    ``EVENTSTRATA_REDIS_URL`` are not set: their values come from the stack's state file in
    ``EVENTSTRATA_STATE_DIR``. Variables that are set always win. ``environ`` ``None`` means
    this process's environment. Reads one small file; never raises (invalid settings, or a
    missing or unreadable state file, leave the environment as it is)."""
    if not argv or argv[0] in _STACK_COMMANDS or argv[0].startswith("-"):
        return
    try:
        state_dir = Settings.from_env(environ).state_dir
    except ConfigError:
        return
    info = recorded_endpoints(state_dir)
    fill_unset_settings({"kafka_bootstrap": info.get("kafka"), "redis_url": info.get("redis")}, environ)


def main() -> None:
    """Console-script entry point."""
    use_running_stack(sys.argv[1:])
    app()
