"""``eventstrata bench [SCENARIO ...] [--quick]``: the benchmark (see bench/README.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from eventstrata.bench.runner import SCENARIOS

app = typer.Typer(help="Benchmark of the whole product with side-by-side baselines.")


@app.command()
def bench(
    scenarios: Annotated[
        list[str] | None, typer.Argument(help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="small sizes, for development")] = False,
    out: Annotated[str, typer.Option("--out", help="output directory")] = "bench/results",
    keep: Annotated[bool, typer.Option("--keep", help="keep the temporary work directory")] = False,
) -> None:
    """Start a private Kafka + Redis (+ PostgreSQL), run the scenarios, write JSON, Markdown
    and PNG results. Blocks for up to ~30 minutes (full mode). Exit code 0 even when targets
    are missed; 1 when nothing could be measured; 2 for an unknown scenario name."""
    from eventstrata.bench.runner import main

    argv = [*(scenarios or []), "--out", out]
    if quick:
        argv.append("--quick")
    if keep:
        argv.append("--keep")
    raise typer.Exit(main(argv))
