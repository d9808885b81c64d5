"""Real redis-server (Debian package) and a loopback Redis Cluster, as child processes.

Single node: AOF on with ``appendfsync everysec``, ``maxmemory-policy noeviction``, RDB
snapshots off, files in its state dir. Cluster: N masters with ``--cluster-enabled yes``, joined
with ``redis-cli --cluster create`` (no replicas).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from eventstrata.localstack.packages import ensure_debian_package
from eventstrata.localstack.ports import free_cluster_port, free_port
from eventstrata.localstack.proc import ProcRef, StackError, spawn, stop, tail_text


def ensure_redis_installed(*, install: bool = True) -> str:
    """Path of ``redis-server`` (with ``redis-cli``); installs the Debian package with apt-get
    when it is missing and we are root. Blocks (apt-get). Raises ``StackError`` with install
    instructions otherwise."""
    return ensure_debian_package("redis-server", ("redis-server", "redis-cli"), install=install)


LAYOUT_SETTINGS = ("--zset-max-listpack-value", "1024", "--hash-max-listpack-value", "1024")
"""Settings the hot-tier layout relies on (``keys``): a user's small per-day sets hold the
stored bodies as members, and Redis' default of 64 bytes per listpack member would turn every
such set into a skiplist (about 180 bytes more per event); an id bucket holding an id longer
than 64 bytes, or a position block naming a user id longer than ~37 bytes, would become a
hashtable under the default of 64 bytes per hash value (~40-60 bytes more per id or position).
docs/OPERATIONS.md lists them; deploy/compose.yaml passes the same (a test checks it)."""


CPU_SETTINGS = ("--rdbcompression", "no")
"""Settings that save Redis CPU: the stored bodies are zstd-compressed already, so LZF in the
AOF rewrites' RDB preamble (and in snapshots and replicas' full syncs) finds little to shrink.
Measured on 300,000 sample events (four rounds in alternation): the forked rewrites' CPU goes
from ~4.6 to ~1.3 µs per event, the AOF's base file grows ~7 %. docs/OPERATIONS.md lists it;
deploy/compose.yaml passes it (a test checks both)."""


def render_redis_args(*, binary: str, port: int, data_dir: Path) -> list[str]:
    """Command line of a single-node redis-server for the hot tier (pure)."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--dir",
        str(data_dir),
        "--save",
        "",
        *LAYOUT_SETTINGS,
        *CPU_SETTINGS,
        "--daemonize",
        "no",
    ]


def render_cluster_node_args(*, binary: str, port: int, data_dir: Path) -> list[str]:
    """Command line of one Redis Cluster master (pure)."""
    return [
        *render_redis_args(binary=binary, port=port, data_dir=data_dir),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        str(data_dir / "nodes.conf"),
        "--cluster-node-timeout",
        "5000",
    ]


def redis_answers(url: str) -> bool:
    """True when ``url`` answers PING (blocks ≤ 2 s)."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def wait_redis_ready(
    url: str,
    *,
    timeout: float = 30.0,
    popen: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
) -> float:
    """Block until ``url`` answers PING (and is not loading); returns seconds waited.
    Raises ``StackError`` on timeout or when ``popen`` exits first."""
    t0 = time.monotonic()
    while True:
        if popen is not None and popen.poll() is not None:
            raise StackError(
                f"redis-server exited with code {popen.returncode} while starting"
                + (f"; last lines of {log_file}:\n{tail_text(log_file)}" if log_file else "")
            )
        if redis_answers(url):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise StackError(f"Redis at {url} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


class RedisServer:
    """One redis-server owned by this process; files under ``state_dir``."""

    def __init__(self, state_dir: Path, *, port: int | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port or free_port()
        self.log_file = self.state_dir / "redis.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.ref: ProcRef | None = None
        self.version = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Install if needed (root + apt-get), then start redis-server. Does not wait."""
        binary = ensure_redis_installed()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.popen, self.ref = spawn(
            "redis",
            render_redis_args(binary=binary, port=self.port, data_dir=self.state_dir),
            log=self.log_file,
            cwd=self.state_dir,
        )

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until it answers PING; records ``version``. Raises ``StackError``."""
        wait_redis_ready(self.url, timeout=timeout, popen=self.popen, log_file=self.log_file)
        client = redis.Redis.from_url(self.url, decode_responses=True)
        try:
            self.version = str(client.info("server")["redis_version"])
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM (redis flushes the AOF and exits), SIGKILL after 20 s. Blocks."""
        if self.ref is not None:
            stop(self.ref, timeout=20.0, popen=self.popen)


class RedisClusterServer:
    """``nodes`` redis-server masters on loopback joined into one cluster (no replicas)."""

    def __init__(self, state_dir: Path, *, nodes: int = 3) -> None:
        if nodes < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.state_dir = state_dir.resolve()
        self.ports = [free_cluster_port() for _ in range(nodes)]
        self.popens: list[subprocess.Popen[bytes]] = []
        self.refs: list[ProcRef] = []

    @property
    def url(self) -> str:
        """Seed node URL (any node works as a seed for RedisCluster clients)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        """Start every node (does not wait; ``wait_ready`` joins and checks the cluster)."""
        binary = ensure_redis_installed()
        for port in self.ports:
            node_dir = self.state_dir / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            popen, ref = spawn(
                f"redis-cluster-{port}",
                render_cluster_node_args(binary=binary, port=port, data_dir=node_dir),
                log=node_dir / "redis.log",
                cwd=node_dir,
            )
            self.popens.append(popen)
            self.refs.append(ref)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Wait for every node, create the cluster, wait for ``cluster_state:ok`` everywhere.
        Blocks; raises ``StackError``."""
        deadline = time.monotonic() + timeout
        for port, popen in zip(self.ports, self.popens, strict=True):
            wait_redis_ready(
                f"redis://127.0.0.1:{port}/0",
                timeout=max(deadline - time.monotonic(), 1.0),
                popen=popen,
                log_file=self.state_dir / f"node-{port}" / "redis.log",
            )
        create = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=max(deadline - time.monotonic(), 5.0),
        )
        if create.returncode != 0:
            raise StackError(
                f"redis-cli --cluster create failed: {create.stdout[-2000:]}{create.stderr[-1000:]}"
            )
        while True:
            states = [self._cluster_state(p) for p in self.ports]
            if all(s == "ok" for s in states):
                return
            if time.monotonic() > deadline:
                raise StackError(f"Redis Cluster not ok after {timeout:.0f} s: {states}")
            time.sleep(0.1)

    @staticmethod
    def _cluster_state(port: int) -> str:
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=2.0)
        try:
            return str(client.cluster("INFO").get("cluster_state", ""))
        except (redis.RedisError, OSError) as exc:
            return f"error: {exc}"
        finally:
            client.close()

    def stop(self) -> None:
        """Stop every node by pid. Blocks."""
        for ref, popen in zip(self.refs, self.popens, strict=True):
            stop(ref, timeout=20.0, popen=popen)
