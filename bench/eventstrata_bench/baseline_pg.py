"""PostgreSQL baseline: Debian's server started on a free port in a temp dir, one events table
with the indexes a competent engineer would add, batch ingest with COPY, the same hot queries
with the same concurrency as the HTTP load generator uses against the product.

Blocking except ``run_queries`` (async). Raises ``BenchError`` when the server cannot start.
"""

from __future__ import annotations

import asyncio
import glob
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventstrata.localstack.ports import free_port
from eventstrata_bench.infra import BenchError

SCHEMA = """
CREATE TABLE events (
  tenant  text   NOT NULL,
  id      text   NOT NULL,
  user_id text,
  type    text   NOT NULL,
  ts      bigint NOT NULL,
  body    jsonb  NOT NULL
);
CREATE INDEX events_user ON events (tenant, user_id, ts);
CREATE INDEX events_type ON events (tenant, type, ts);
CREATE UNIQUE INDEX events_id ON events (tenant, id);
"""

QUERIES: dict[str, str] = {
    "user newest 50": "SELECT body::text FROM events WHERE tenant = %s AND user_id = %s "
    "ORDER BY ts DESC, id DESC LIMIT 50",
    "user+type newest 50": "SELECT body::text FROM events WHERE tenant = %s AND user_id = %s AND type = %s "
    "ORDER BY ts DESC, id DESC LIMIT 50",
    "type newest 50, last hour": "SELECT body::text FROM events WHERE tenant = %s AND type = %s AND ts >= %s "
    "ORDER BY ts DESC, id DESC LIMIT 50",
    "get by id": "SELECT body::text FROM events WHERE tenant = %s AND id = %s",
    "count for user": "SELECT count(*) FROM events WHERE tenant = %s AND user_id = %s",
}


def _bindir() -> str:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(cand, "initdb")):
            return cand
    exe = shutil.which("initdb")
    if exe:
        return os.path.dirname(exe)
    raise BenchError("PostgreSQL server not installed (apt-get install postgresql)")


@dataclass(slots=True)
class PgServer:
    """A private PostgreSQL cluster in ``root``; run as user ``postgres`` when we are root."""

    root: Path
    port: int = 0
    version: str = ""

    def _as_pg(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def start(self) -> None:
        """initdb + pg_ctl start -w. Blocks until the server accepts connections."""
        bindir = _bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        data = self.root / "data"
        sock = self.root / "sock"
        sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(sock, "postgres", "postgres")
        self.port = free_port()
        init = subprocess.run(
            self._as_pg(
                [f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "bench", "--no-sync", "-E", "UTF8"]
            ),
            capture_output=True,
            timeout=180,
            check=False,
        )
        if init.returncode != 0:
            raise BenchError(f"initdb failed: {init.stderr.decode(errors='replace')[-500:]}")
        opts = (
            f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB "
            "-c max_connections=200 -c synchronous_commit=on -c work_mem=16MB"
        )
        st = subprocess.run(
            self._as_pg(
                [
                    f"{bindir}/pg_ctl",
                    "-D",
                    str(data),
                    "-l",
                    str(self.root / "pg.log"),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            ),
            capture_output=True,
            timeout=180,
            check=False,
        )
        if st.returncode != 0:
            raise BenchError(f"pg_ctl start failed: {st.stderr.decode(errors='replace')[-500:]}")
        vers = subprocess.run([f"{bindir}/postgres", "--version"], capture_output=True, check=False)
        self.version = vers.stdout.decode().strip()

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=bench dbname=postgres"

    def stop(self) -> None:
        bindir = _bindir()
        subprocess.run(
            self._as_pg([f"{bindir}/pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
            check=False,
        )

    def pid(self) -> int:
        try:
            return int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_lines(rows: Iterable[tuple[str, str, str | None, str, int, str]]) -> Iterable[str]:
    """COPY text-format lines for ``(tenant, id, user_id, type, ts, body_json)`` rows. Pure."""
    for tenant, eid, user, etype, ts, body in rows:
        u = "\\N" if user is None else _copy_escape(user)
        fields = (
            _copy_escape(tenant),
            _copy_escape(eid),
            u,
            _copy_escape(etype),
            str(ts),
            _copy_escape(body),
        )
        yield "\t".join(fields) + "\n"


def load(
    server: PgServer, rows: Sequence[tuple[str, str, str | None, str, int, str]], batch: int = 20_000
) -> float:
    """Create the table with its indexes and COPY ``rows`` in batches (one transaction each).
    Returns seconds spent; blocks."""
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS events")
        conn.execute(SCHEMA)
        t0 = time.monotonic()
        for i in range(0, len(rows), batch):
            chunk = "".join(copy_lines(rows[i : i + batch]))
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy("COPY events (tenant, id, user_id, type, ts, body) FROM STDIN") as cp,
            ):
                cp.write(chunk)
        seconds = time.monotonic() - t0
        conn.execute("VACUUM ANALYZE events")
    return seconds


def table_bytes(server: PgServer) -> int:
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_total_relation_size('events')").fetchone()
    return int(row[0]) if row else 0


async def run_queries(
    server: PgServer,
    query: str,
    params: Sequence[tuple[Any, ...]],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    seed: int = 7,
) -> tuple[list[float], float]:
    """Run ``query`` from ``concurrency`` connections, each looping over random ``params`` for
    ``warmup`` then ``seconds``. Returns (latencies in ms of the measured part, requests/s)."""
    import psycopg

    rng = random.Random(seed)
    conns = [await psycopg.AsyncConnection.connect(server.dsn, autocommit=True) for _ in range(concurrency)]
    lat: list[float] = []
    try:

        async def client(conn: Any, until: float, record: bool) -> int:
            n = 0
            async with conn.cursor() as cur:
                while time.monotonic() < until:
                    p = params[rng.randrange(len(params))]
                    t0 = time.perf_counter()
                    await cur.execute(query, p, prepare=True)
                    await cur.fetchall()
                    if record:
                        lat.append((time.perf_counter() - t0) * 1000.0)
                    n += 1
            return n

        end_w = time.monotonic() + warmup
        await asyncio.gather(*(client(c, end_w, False) for c in conns))
        t0 = time.monotonic()
        counts = await asyncio.gather(*(client(c, t0 + seconds, True) for c in conns))
        elapsed = time.monotonic() - t0
    finally:
        for c in conns:
            await c.close()
    return lat, sum(counts) / elapsed if elapsed > 0 else 0.0
