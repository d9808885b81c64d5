"""The API process: ``python -m eventstrata.processes.api`` (also ``eventstrata serve``).

Serves ``eventstrata.api.app.create_app`` with uvicorn on ``EVENTSTRATA_API_HOST`` /
``EVENTSTRATA_API_PORT``. Port 0 binds any free port; the bound URL is printed on stdout
(``listening on http://HOST:PORT``) and logged once the socket is bound.

With ``EVENTSTRATA_API_PROCESSES`` = N > 1 this process binds the socket, then supervises N
API processes that accept on it (uvicorn's supervisor: spawned interpreters, each building its
app with ``app_from_env``; one that dies is replaced; SIGTERM/SIGINT stop them all gracefully).
Their Prometheus values go to files in one directory (``PROMETHEUS_MULTIPROC_DIR``: the one
set in the environment, else a fresh one this process removes at exit), so ``/metrics``, served
by whichever process the scrape reaches, sums them all (``api.app``).
"""

from __future__ import annotations

import logging
import shutil
import socket
import sys
import tempfile

import uvicorn
from fastapi import FastAPI

from eventstrata.api.app import create_app
from eventstrata.config import ConfigError, Settings, share_metrics_dir, shared_metrics_dir
from eventstrata.logs import configure_logging

log = logging.getLogger("eventstrata.api")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (port 0 = any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY on Linux; without it the response body (a second
    # small write after the headers) waits ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM. Returns 0, or 2 for bad configuration."""
    del argv
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    sock = bind_socket(settings.api_host, settings.api_port)
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    print(f"listening on {url}", flush=True)
    log.info("listening on %s", url, extra={"url": url})
    if settings.api_processes == 1:
        uvicorn.Server(_config(create_app(settings), settings)).run(sockets=[sock])
        return 0
    from uvicorn.supervisors import Multiprocess

    own_dir = None
    if shared_metrics_dir() is None:
        own_dir = tempfile.mkdtemp(prefix="eventstrata-metrics-")
        share_metrics_dir(own_dir)
    try:
        config = _config(f"{__name__}:app_from_env", settings, factory=True, workers=settings.api_processes)
        Multiprocess(config, sockets=[sock]).run()
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0


def _config(app: FastAPI | str, settings: Settings, *, factory: bool = False, workers: int | None = None
            ) -> uvicorn.Config:
    # uvloop + httptools: the event loop and HTTP parser in C (uvicorn[standard])
    return uvicorn.Config(app, factory=factory, workers=workers, log_level=settings.log_level.lower(),
                          access_log=False, log_config=None, lifespan="on", timeout_graceful_shutdown=5,
                          loop="uvloop", http="httptools")


def app_from_env() -> FastAPI:
    """The app of one of several API processes (uvicorn calls it in each, after spawning it):
    settings from the environment, logging configured. Raises ``ConfigError``."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


if __name__ == "__main__":
    sys.exit(main())
