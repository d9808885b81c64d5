"""An API process for tests: ``create_app`` served by uvicorn in this process on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import uvicorn

from eventstrata.api.app import create_app
from eventstrata.config import Settings


@contextlib.asynccontextmanager
async def serving(settings: Settings, port: int = 0) -> AsyncIterator[str]:
    """Serve ``settings``' API on ``port`` (0: any free one) until the block ends, then shut it
    down as a deploy does (open tails get ``reconnect``); yields its base URL."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "the API did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        app.state.tail.hub.request_stop()  # what the chained SIGTERM handler does
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def closed_port() -> int:
    """A port nothing listens on (bound for a moment, then released): an address that refuses."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
