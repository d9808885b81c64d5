"""Process entry points: ``eventstrata worker ingest|archive`` and ``eventstrata serve``.

Each imports its ``eventstrata.processes.<name>:main`` lazily (other areas provide them) and runs it; a
missing entry module is reported as an error message with exit code 2, not a traceback.
``main`` may return None, an exit code, or a coroutine (run with ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any, cast

import typer

app = typer.Typer(help="Run one deployable process (the entry points `dev up` starts).", no_args_is_help=True)


def load_entry(module: str, attr: str = "main") -> Callable[[], Any]:
    """Import ``module`` and return its ``attr``. Raises ``LookupError`` with a readable message
    when the module (or the attribute) does not exist; other import errors propagate."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise LookupError(f"entry module {module} is not available in this build") from None
        raise
    entry = getattr(mod, attr, None)
    if not callable(entry):
        raise LookupError(f"{module} has no callable {attr}()")
    return cast("Callable[[], Any]", entry)


def run_entry(module: str) -> None:
    """Run ``module:main`` as this process; exits with its code."""
    try:
        entry = load_entry(module)
    except LookupError as exc:
        typer.echo(f"eventstrata: {exc}", err=True)
        raise typer.Exit(2) from None
    result = entry()
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    if isinstance(result, int) and not isinstance(result, bool):
        raise typer.Exit(result)


async def _await(awaitable: Any) -> Any:
    return await awaitable


@app.command()
def ingest() -> None:
    """Consume the raw topic, normalize, write the Redis hot tier, dead-letter bad input."""
    run_entry("eventstrata.processes.ingest")


@app.command()
def archive() -> None:
    """Move due hot-tier windows to the Parquet archive, periodically."""
    run_entry("eventstrata.processes.archive")


def serve() -> None:
    """Serve the HTTP API (native, compatible endpoints, live tail)."""
    run_entry("eventstrata.processes.api")
