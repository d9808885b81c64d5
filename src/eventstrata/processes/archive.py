"""The archiver process: ``python -m eventstrata.processes.archive [--once] [--now TIME]``.

Configuration from ``EVENTSTRATA_*`` (see docs/OPERATIONS.md). Test-only hook, not listed in
``--help``: ``--crash-after <step>`` makes the process ``os._exit(137)`` right after that step
(one of ``eventstrata.archive.archiver.CRASH_STEPS``) to simulate SIGKILL there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from eventstrata.archive.archiver import CRASH_STEPS
from eventstrata.archive.service import run_archiver
from eventstrata.config import ConfigError, Settings
from eventstrata.logs import configure_logging
from eventstrata.timeutil import parse_time_ms


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 bad configuration). ``argv``
    ``None`` means no options (the loop; how ``eventstrata worker archive`` calls it)."""
    parser = argparse.ArgumentParser(prog="eventstrata.processes.archive",
                                     description="Archive due hot windows to Parquet.")
    parser.add_argument("--once", action="store_true", help="one pass over every tenant, then exit")
    parser.add_argument("--now", default=None, help="event time of the pass (ISO 8601 or epoch ms)")
    parser.add_argument("--crash-after", default=None, choices=CRASH_STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv or [])
    try:
        settings = Settings.from_env()
        now_ms = parse_time_ms(args.now) if args.now is not None else None
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_archiver(settings, once=args.once, now_ms=now_ms, crash_after=args.crash_after,
                           stop=stop)

    try:
        asyncio.run(run())
    except Exception:
        logging.getLogger("eventstrata.archive").exception("archiver failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
