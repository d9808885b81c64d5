"""The worker processes' HTTP side: ``/metrics`` and a liveness check that watches the event loop.

A Prometheus endpoint answers from its own thread, so it keeps answering while the event loop
is stuck (a blocking call, a deadlock): probing ``/metrics`` would never restart such a worker.
``LoopHeartbeat.run`` is a task on the worker's loop that records the time every
``interval_s``; ``/healthz``, served by the same thread as ``/metrics``, answers 200 while the
last beat is younger than ``stale_after_s`` and 503 (with the age) once it is not.

``serve`` starts the server on a daemon thread and returns at once; the heartbeat's ``age``
is read from that thread (a float assignment is atomic in CPython).
"""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

STALE_AFTER_S = 30.0
"""``/healthz`` fails once the event loop has not run the heartbeat for this long."""


class LoopHeartbeat:
    """Beats from the event loop it runs on; ``age`` can be read from any thread."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._last = time.monotonic()

    async def run(self) -> None:
        """Beat until cancelled. Never raises but ``CancelledError``."""
        while True:
            self._last = time.monotonic()
            await asyncio.sleep(self.interval_s)

    def age(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self._last


def serve(port: int, heartbeat: LoopHeartbeat, *, host: str,
          stale_after_s: float = STALE_AFTER_S) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (``EVENTSTRATA_API_HOST``: scraped and
    probed from outside a pod) from a daemon thread. Returns the server (``shutdown()`` stops
    it). Raises ``OSError`` when the port cannot be bound."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path.split("?", 1)[0] == "/healthz":
                age = heartbeat.age()
                ok = age < stale_after_s
                body = b'{"status":"%s","loop_heartbeat_age_s":%.1f}' % (b"ok" if ok else b"stuck", age)
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds: not worth a log line each

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
