"""A worker's ``/healthz`` (served by the metrics thread) fails once its event loop stops running,
while ``/metrics`` keeps answering: the liveness probe restarts a worker whose loop is stuck."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from eventstrata import health
from eventstrata.localstack.ports import free_port

pytestmark = pytest.mark.integration


async def test_healthz_fails_while_the_loop_is_stuck_and_recovers() -> None:
    beat = health.LoopHeartbeat(interval_s=0.05)
    task = asyncio.create_task(beat.run())
    port = free_port()
    server = health.serve(port, beat, stale_after_s=0.5, host="127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.sleep(0.2)
        ok = await asyncio.to_thread(httpx.get, base + "/healthz", timeout=5)
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        seen: dict[str, httpx.Response] = {}

        def probe() -> None:  # from another thread while this loop is blocked
            time.sleep(0.8)
            seen["health"] = httpx.get(base + "/healthz", timeout=5)
            seen["metrics"] = httpx.get(base + "/metrics", timeout=5)

        t = threading.Thread(target=probe)
        t.start()
        time.sleep(1.2)  # the event loop is stuck here (a blocking call on the loop)
        t.join()
        assert seen["health"].status_code == 503 and seen["health"].json()["status"] == "stuck"
        assert seen["metrics"].status_code == 200  # what a /metrics probe would have seen
        await asyncio.sleep(0.2)
        again = await asyncio.to_thread(httpx.get, base + "/healthz", timeout=5)
        assert again.status_code == 200
        assert (await asyncio.to_thread(httpx.get, base + "/other", timeout=5)).status_code == 404
    finally:
        task.cancel()
        server.shutdown()
