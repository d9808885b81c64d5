"""Quick p50/p99 of native read endpoints over HTTP (loopback), API in its own process.

Usage: EVENTSTRATA_REDIS_URL=redis://127.0.0.1:16379/0 .venv/bin/python tests/integration/query_latency.py
"""
from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from query_support import DAY_MS, QueryStack, make_events

N_EVENTS = 20_000
REQS = 600


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    s = QueryStack(os.environ["EVENTSTRATA_REDIS_URL"], tmp, hot_retention="7d")
    now = int(time.time() * 1000)
    evs = make_events("bench", N_EVENTS, start_ms=now - 3 * DAY_MS, span_ms=3 * DAY_MS, seed=3)
    # realistic user cardinality: 200 users
    rng = random.Random(1)
    users = [f"user-{i}" for i in range(200)]
    from dataclasses import replace
    evs = [replace(e, user_id=rng.choice(users)) for e in evs]
    for i in range(0, len(evs), 2000):
        s.write(evs[i:i + 2000])
    key = s.create_key("bench")
    env = {**os.environ, **s.settings.to_env(), "EVENTSTRATA_API_PORT": "0", "EVENTSTRATA_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "eventstrata.processes.api"], cwd=str(Path(__file__).resolve().parents[2]), env=env,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    url = line.split()[-1]
    h = {"Authorization": f"Bearer {key}"}
    try:
        import socket
        tr = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx.Client(base_url=url, headers=h, transport=tr) as c:
            for _ in range(50):
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            ids = [e.id for e in evs[:REQS]]
            cases = {
                "hot user page (50)": lambda i: c.get("/v1/events", params={"user_id": users[i % 200]}),
                "hot type page (50)": lambda i: c.get("/v1/events", params={"type": "purchase"}),
                "hot user+type page": lambda i: c.get("/v1/events", params={"user_id": users[i % 200], "type": "view"}),
                "get by id": lambda i: c.get("/v1/events/" + httpx.URL(path=ids[i]).raw_path.decode()),
                "count user": lambda i: c.get("/v1/events/count", params={"user_id": users[i % 200]}),
            }
            for name, fn in cases.items():
                for i in range(30):
                    assert fn(i).status_code == 200
                lat = []
                for i in range(REQS):
                    t0 = time.perf_counter()
                    r = fn(i)
                    lat.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
                print(f"{name:22s} p50 {statistics.median(lat):6.2f} ms  p99 {pct(lat, 99):6.2f} ms  (n={REQS})")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
