"""Ingest worker entry point: ``python -m eventstrata.processes.ingest`` / ``eventstrata worker ingest``.

Reads ``EVENTSTRATA_*`` settings, configures logs, runs ``eventstrata.ingest.worker.run_worker``
(SIGTERM/SIGINT drain the in-flight batches and commit) and exits with its code: 0 on a requested
stop, 3 when the DLQ limit stopped the worker, 2 on bad configuration (including Kafka refusing
the connection: wrong credentials or certificates, an unreachable bootstrap), 1 on a fatal error.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from eventstrata.config import ConfigError, Settings
from eventstrata.ingest.worker import KafkaStartError, run_worker
from eventstrata.logs import configure_logging


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"eventstrata ingest: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return asyncio.run(run_worker(settings))
    except KafkaStartError as exc:
        logging.getLogger("eventstrata.ingest").error("%s", exc)
        return 2
    except Exception:
        logging.getLogger("eventstrata.ingest").exception("ingest worker failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
