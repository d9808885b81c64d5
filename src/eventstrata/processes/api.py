"""The API process: ``python -m eventstrata.processes.api`` (also ``eventstrata serve``).

Serves ``eventstrata.api.app.create_app`` with uvicorn on ``EVENTSTRATA_API_HOST`` /
``EVENTSTRATA_API_PORT``. Port 0 binds any free port; the bound URL is printed on stdout
(``listening on http://HOST:PORT``) and logged once the socket is bound.
"""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from eventstrata.api.app import create_app
from eventstrata.config import ConfigError, Settings
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
    # uvloop + httptools: the event loop and HTTP parser in C (uvicorn[standard])
    config = uvicorn.Config(create_app(settings), log_level=settings.log_level.lower(), access_log=False,
                            log_config=None, lifespan="on", timeout_graceful_shutdown=5, loop="uvloop",
                            http="httptools")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
