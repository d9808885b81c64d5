"""The ``eventstrata`` command line: a thin registry of per-area typer apps.

Each area owns ``eventstrata/cli/<area>.py`` with its own ``typer.Typer()`` (or command
functions) and registers it here with ONE line below.
"""

from __future__ import annotations

import typer

from eventstrata.cli import archive, bench, dev, worker
from eventstrata.cli import dlq as dlq_cli
from eventstrata.cli import keys as keys_cli
from eventstrata.cli import produce as produce_cli
from eventstrata.cli import query as query_cli
from eventstrata.cli import tail as tail_cli

app = typer.Typer(
    name="eventstrata",
    help="Kafka -> Redis -> Parquet event store: local stack, workers, tools.",
    no_args_is_help=True,
    add_completion=False,
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
app.command("bench")(bench.bench)
app.add_typer(dlq_cli.app, name="dlq")


def main() -> None:
    """Console-script entry point."""
    app()
