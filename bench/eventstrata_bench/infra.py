"""The shell of the benchmark: servers, product processes, Kafka producing, Redis housekeeping.

Everything here does I/O and may block; functions say so. Servers come from the stack
launchers (``eventstrata.localstack``) on free loopback ports, unless ``EVENTSTRATA_BENCH_KAFKA`` /
``EVENTSTRATA_BENCH_REDIS`` name existing ones (development only: the shared dev servers are
noisy and their Redis memory is not ours, so footprint figures are then meaningless).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from eventstrata.config import Settings
from eventstrata.localstack.ports import free_port
from eventstrata.localstack.proc import ProcRef, spawn, stop
from eventstrata_bench.dataset import GenEvent
from eventstrata_bench.machine import spawned_children


class BenchError(RuntimeError):
    """A scenario could not run (a server or product process failed); the message says why."""


def product_argv(*args: str) -> list[str]:
    """argv of the ``eventstrata`` console script next to this interpreter (or ``python -c``)."""
    script = Path(sys.executable).parent / "eventstrata"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from eventstrata.cli import main; main()", *args]


@dataclass(slots=True)
class Proc:
    """A process started by the benchmark (its own session); ``stop()`` ends it (blocking)."""

    name: str
    popen: subprocess.Popen[bytes]
    ref: ProcRef
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        stop(self.ref, timeout=timeout, popen=self.popen)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_proc(name: str, argv: Sequence[str], *, workdir: Path, env: dict[str, str] | None = None) -> Proc:
    """Start ``argv`` with stdout/stderr in ``workdir/logs/<name>.log``. Raises ``BenchError``."""
    log = workdir / "logs" / f"{name}-{uuid.uuid4().hex[:6]}.log"
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        popen, ref = spawn(name, argv, log=log, env=full_env)
    except Exception as exc:
        raise BenchError(f"cannot start {name}: {exc}") from exc
    return Proc(name, popen, ref, log)


@dataclass(slots=True)
class Stack:
    """Kafka + Redis for the run. ``start()`` blocks until both answer; ``stop()`` ends what we
    started (never an external server)."""

    workdir: Path
    kafka_bootstrap: str = ""
    redis_url: str = ""
    owned_redis: bool = False
    _servers: list[Any] = field(default_factory=list)

    def start(self) -> None:
        ext_kafka = os.environ.get("EVENTSTRATA_BENCH_KAFKA", "")
        ext_redis = os.environ.get("EVENTSTRATA_BENCH_REDIS", "")
        if ext_kafka:
            self.kafka_bootstrap = ext_kafka
        else:
            from eventstrata.localstack.kafka import KafkaServer

            kafka = KafkaServer(self.workdir / "kafka")
            kafka.start()
            self._servers.append(kafka)
            kafka.wait_ready(timeout=120.0)
            self.kafka_bootstrap = str(kafka.bootstrap)
        if ext_redis:
            self.redis_url = ext_redis
        else:
            from eventstrata.localstack.redis import RedisServer

            rs = RedisServer(self.workdir / "redis")
            rs.start()
            self._servers.append(rs)
            rs.wait_ready(timeout=60.0)
            self.redis_url = str(rs.url)
            self.owned_redis = True

    def stop(self) -> None:
        for server in reversed(self._servers):
            try:
                server.stop()
            except Exception as exc:
                print(f"[bench] stopping {type(server).__name__} failed: {exc}", file=sys.stderr)
        self._servers.clear()

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=None)

    def kafka_pid(self) -> int | None:
        """The broker's pid when this benchmark started it (None for an external broker)."""
        for server in self._servers:
            popen = getattr(server, "popen", None)
            if popen is not None and hasattr(server, "bootstrap"):
                return int(popen.pid)
        return None

    def redis_pid(self) -> int:
        info = self.redis().info("server")
        return int(info["process_id"])

    def used_memory(self) -> int:
        return int(self.redis().info("memory")["used_memory"])

    def settings(self, *, prefix: str, topic: str, group: str, archive: Path, **extra: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": self.kafka_bootstrap,
            "redis_url": self.redis_url,
            "key_prefix": prefix,
            "topic": topic,
            "dlq_topic": topic + ".dlq",
            "consumer_group": group,
            "archive_uri": str(archive),
            "state_dir": self.workdir / "state",
            "log_level": "WARNING",
        }
        values.update(extra)
        return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    return settings.to_env()


def drop_prefix(r: redis.Redis, prefix: str, *, owned: bool) -> None:
    """Delete every key of ``prefix`` (FLUSHALL when the Redis is ours). Blocks."""
    if owned:
        r.flushall()
        return
    batch: list[bytes] = []
    for key in r.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            r.unlink(*batch)
            batch.clear()
    if batch:
        r.unlink(*batch)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create a topic and wait for its leaders. Blocks."""
    from eventstrata.localstack.kafka import create_topics

    asyncio.run(create_topics(bootstrap, [(name, partitions)]))


async def produce_all(bootstrap: str, topic: str, events: Iterable[GenEvent]) -> tuple[int, float]:
    """Produce every event as fast as the client goes (linger 10 ms, 256 KB batches), wait for
    all acknowledgements. Returns ``(count, seconds)``."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=262_144, acks=1)
    await producer.start()
    t0 = time.monotonic()
    n = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for e in events:
            pending.append(await producer.send(topic, e.value, key=e.key, headers=list(e.headers)))
            n += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return n, time.monotonic() - t0


def total_positions(r: redis.Redis, prefix: str, tenants: Sequence[str]) -> int:
    """Sum of the tenants' global-position counters = distinct events stored so far. Blocks."""
    keys = [f"{prefix}:{{{t}}}:gpos" for t in tenants]
    return sum(int(v) for v in r.mget(keys) if v is not None)


def create_api_key(settings: Settings, tenant: str, workdir: Path) -> str:
    """Create an API key with ``eventstrata keys create --json``. Blocks; raises ``BenchError``."""
    env = dict(os.environ)
    env.update(settings.to_env())
    proc = subprocess.run(
        product_argv("keys", "create", "--tenant", tenant, "--json"),
        env=env,
        capture_output=True,
        timeout=60,
        cwd=workdir,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"keys create failed: {proc.stderr.decode(errors='replace')[-500:]}")
    for raw_line in proc.stdout.decode().splitlines():
        line = raw_line.strip()
        if line.startswith("{"):
            return str(orjson.loads(line)["key"])
    raise BenchError(f"keys create printed no JSON: {proc.stdout[-300:]!r}")


def wait_http(url: str, timeout: float) -> None:
    """Poll ``url`` until it answers < 500. Blocks; raises ``BenchError`` on timeout."""
    import httpx

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2.0)
            if r.status_code < 500:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s ({last})")


@dataclass(slots=True)
class Api:
    """One ``eventstrata serve`` on a free port (``settings.api_processes`` API processes)."""

    proc: Proc
    base: str

    @classmethod
    def start(cls, settings: Settings, workdir: Path, *, extra_env: dict[str, str] | None = None) -> Api:
        """Start it and wait for ``/healthz``; ``extra_env`` (e.g. ``AWS_*``) is added to the
        settings' variables. Raises ``BenchError``."""
        port = free_port()
        env = {**settings.to_env(), **(extra_env or {})}
        env["EVENTSTRATA_API_PORT"] = str(port)
        proc = start_proc("api", product_argv("serve"), workdir=workdir, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/healthz", 60.0)
            if settings.api_processes > 1:
                # /healthz answers once one process is up; the others start alongside it
                deadline = time.monotonic() + 60.0
                while len(spawned_children(proc.pid)) < settings.api_processes:
                    if time.monotonic() > deadline:
                        raise BenchError("not every API process started")
                    time.sleep(0.1)
                time.sleep(2.0)
        except BenchError:
            proc.stop()
            raise BenchError(f"API did not start:\n{proc.log_tail()}") from None
        return cls(proc, base)

    def server_pids(self) -> list[int]:
        """The processes that serve requests: the supervised API processes, or the one."""
        return spawned_children(self.proc.pid) or [self.proc.pid]

    def stop(self) -> None:
        self.proc.stop()


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def rm_tree(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
