"""Scenario 1 (ingest throughput, 1 and 2 worker processes), the faust-streaming baseline and
the redis-benchmark ceiling. All blocking; raise ``BenchError`` when a process fails."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from eventstrata_bench.context import Ctx
from eventstrata_bench.infra import BenchError, Proc, drop_prefix, product_argv, start_proc, total_positions
from eventstrata_bench.machine import CpuMeter
from eventstrata_bench.profile import record
from eventstrata_bench.stats import rate


@dataclass(frozen=True, slots=True)
class IngestRun:
    """One measured ingest: ``events`` stored in ``seconds`` after the first one appeared."""

    events: int
    seconds: float
    start_seconds: float
    worker_cpu: tuple[float, ...]
    redis_cpu: float
    memory_delta: int
    kafka_cpu: float | None = None
    redis: RedisCost | None = None

    @property
    def rate(self) -> float:
        return rate(self.events, self.seconds)

    def worker_us_per_event(self) -> float:
        """The workers' CPU per stored event over the measured interval (µs)."""
        return sum(self.worker_cpu) / 100 * self.seconds / max(1, self.events) * 1e6


@dataclass(frozen=True, slots=True)
class RedisCost:
    """Redis' CPU per stored event over the measured interval, from ``INFO cpu`` (µs), and by
    command from ``INFO commandstats`` (µs per event; a script's entry includes the commands it
    runs, which also have their own entries)."""

    us_per_event: float
    by_command: dict[str, float]
    children_us_per_event: float = 0.0
    """The forked children's CPU (AOF rewrites) per stored event, ``INFO cpu``'s
    ``used_cpu_*_children`` (children that ended within the interval): not in ``us_per_event``,
    which is the server process's own."""

    def script_own(self) -> float:
        """The write script's own work: ``evalsha`` minus the commands it ran (everything but
        the few direct commands a worker sends, which are negligible next to it)."""
        inner = sum(v for k, v in self.by_command.items() if k not in ("evalsha", "eval", "info"))
        return max(0.0, self.by_command.get("evalsha", 0.0) - inner)


class RedisMeter:
    """``INFO cpu`` and ``INFO commandstats`` of the bench's Redis at ``start`` and ``stop``."""

    def __init__(self, r: Any) -> None:
        self._r = r
        self._cpu0 = 0.0
        self._kids0 = 0.0
        self._cmd0: dict[str, int] = {}

    def _read(self) -> tuple[float, float, dict[str, int]]:
        cpu = self._r.info("cpu")
        stats = self._r.info("commandstats")
        return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
                float(cpu["used_cpu_user_children"]) + float(cpu["used_cpu_sys_children"]),
                {k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in stats.items()})

    def start(self) -> None:
        self._cpu0, self._kids0, self._cmd0 = self._read()

    def stop(self, events: int) -> RedisCost:
        cpu1, kids1, cmd1 = self._read()
        n = max(1, events)
        by = {k: (v - self._cmd0.get(k, 0)) / n for k, v in cmd1.items() if v > self._cmd0.get(k, 0)}
        return RedisCost((cpu1 - self._cpu0) / n * 1e6, dict(sorted(by.items(), key=lambda kv: -kv[1])),
                         (kids1 - self._kids0) / n * 1e6)


def _wait_progress(
    ctx: Ctx,
    procs: list[Proc],
    count_fn: object,
    target: int,
    *,
    timeout: float,
    meter: CpuMeter,
    t_spawn: float,
    max_seconds: float = 0.0,
    redis_meter: RedisMeter | None = None,
) -> tuple[float, float, int, int, tuple[float, ...]]:
    """Poll ``count_fn()`` until it reaches ``target`` (or, with ``max_seconds``, until that long
    after the first progress). Returns (t_first, t_end, c_first, c_end, cpu%) where the CPU
    meter (and ``redis_meter``, stopped by the caller) runs from the first observed progress to
    the end."""
    assert callable(count_fn)
    t_first = 0.0
    c_first = 0
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        c = int(count_fn())
        if c > 0 and t_first == 0.0:
            t_first, c_first = now, c
            meter.start()
            if redis_meter is not None:
                redis_meter.start()
        if c >= target or (max_seconds and t_first and now - t_first >= max_seconds):
            return t_first, now, c_first, c, meter.stop()
        for p in procs:
            if not p.alive():
                raise BenchError(f"{p.name} exited (rc {p.popen.returncode}):\n{p.log_tail()}")
        if now > deadline:
            raise BenchError(f"stored {c}/{target} after {now - t_spawn:.0f} s")
        time.sleep(0.05)


def run_ingest(
    ctx: Ctx,
    *,
    workers: int,
    prefix: str,
    target: int,
    profile_seconds: float = 0.0,
    max_seconds: float = 0.0,
    topic: str = "",
) -> tuple[IngestRun, str]:
    """Start ``workers`` ingest processes on ``topic`` (default: the hot topic; fresh consumer
    group, key prefix ``prefix``), wait until ``target`` events are stored, stop them. With
    ``profile_seconds`` the first worker is sampled by py-spy meanwhile and the summary
    returned."""
    r = ctx.stack.redis()
    group = f"bench-{uuid.uuid4().hex[:8]}"
    settings = ctx.stack.settings(
        prefix=prefix, topic=topic or ctx.hot_topic, group=group, archive=ctx.workdir / f"archive-{prefix}"
    )
    mem0 = ctx.stack.used_memory()
    tenants = ctx.run.config["tenants"]
    t_spawn = time.monotonic()
    procs = [
        start_proc(f"ingest{i}", product_argv("worker", "ingest"), workdir=ctx.workdir, env=settings.to_env())
        for i in range(workers)
    ]
    kafka_pid = ctx.stack.kafka_pid()
    meter = CpuMeter((*tuple(p.pid for p in procs), ctx.stack.redis_pid(),
                      *(() if kafka_pid is None else (kafka_pid,))))
    summary = ""
    try:
        if profile_seconds > 0:
            # wait for the worker to be busy, then sample it
            deadline = time.monotonic() + 120
            while total_positions(r, prefix, tenants) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            summary = record(procs[0].pid, profile_seconds, ctx.workdir / f"pyspy-{prefix}.txt")
            return IngestRun(0, 0.0, 0.0, (), 0.0, 0), summary
        redis_meter = RedisMeter(r)
        t_first, t_end, c_first, c_end, cpu = _wait_progress(
            ctx,
            procs,
            lambda: total_positions(r, prefix, tenants),
            target,
            timeout=180 + target / 2000,
            meter=meter,
            t_spawn=t_spawn,
            max_seconds=max_seconds,
            redis_meter=redis_meter,
        )
        cost = redis_meter.stop(c_end - c_first)
        mem1 = ctx.stack.used_memory()
    finally:
        for p in procs:
            p.stop()
    n = len(procs)
    return IngestRun(
        c_end - c_first, t_end - t_first, t_first - t_spawn, tuple(cpu[:n]), cpu[n], mem1 - mem0,
        cpu[n + 1] if kafka_pid is not None else None, cost,
    ), summary


def run_faust(ctx: Ctx, target: int) -> tuple[float, float, float]:
    """The faust-streaming agent on the hot topic until ``target`` events are written.
    Returns (events/s after the first write, seconds from spawn to the first write, CPU%)."""
    r = ctx.stack.redis()
    prefix = f"fb{uuid.uuid4().hex[:6]}"
    env = {
        "BENCH_FAUST_APP": f"bench-faust-{uuid.uuid4().hex[:8]}",
        "BENCH_FAUST_BROKER": ctx.stack.kafka_bootstrap,
        "BENCH_FAUST_TOPIC": ctx.hot_topic,
        "BENCH_FAUST_PREFIX": prefix,
        "BENCH_FAUST_REDIS": ctx.stack.redis_url,
        "BENCH_FAUST_DATADIR": str(ctx.workdir / f"faust-{prefix}"),
    }
    t_spawn = time.monotonic()
    proc = start_proc(
        "faust",
        [sys.executable, "-m", "eventstrata_bench.faust_agent", "worker", "-l", "warn"],
        workdir=ctx.workdir,
        env=env,
    )
    meter = CpuMeter((proc.pid,))

    def count() -> int:
        v = r.get(f"{prefix}:faust:count")
        return int(v) if v else 0

    try:
        t_first, t_end, c_first, c_end, cpu = _wait_progress(
            ctx, [proc], count, target, timeout=240 + target / 1000, meter=meter, t_spawn=t_spawn
        )
    finally:
        proc.stop(timeout=10)
        drop_prefix(r, prefix, owned=False)
    return rate(c_end - c_first, t_end - t_first), t_first - t_spawn, cpu[0]


def run_redis_benchmark(ctx: Ctx, requests: int) -> dict[str, float]:
    """redis-benchmark on the run's Redis: HSET of a 600-byte value and ZADD of a 30-byte member,
    pipeline 16 and 128, random keys. Returns ``{"hset P16": req/s, ...}``."""
    host, port = _host_port(ctx.stack.redis_url)
    value = "x" * 600
    out: dict[str, float] = {}
    for pipeline in (16, 128):
        for name, cmd in (
            ("HSET", ["HSET", "bench:rb:h:__rand_int__", "__rand_int__", value]),
            ("ZADD", ["ZADD", "bench:rb:z", "__rand_int__", "0001732406400000|__rand_int__"]),
        ):
            proc = subprocess.run(
                [
                    "redis-benchmark",
                    "-h",
                    host,
                    "-p",
                    str(port),
                    "-n",
                    str(requests),
                    "-P",
                    str(pipeline),
                    "-r",
                    "10000000",
                    "-c",
                    "50",
                    "--csv",
                    *cmd,
                ],
                capture_output=True,
                timeout=300,
                check=False,
            )
            if proc.returncode != 0:
                raise BenchError(f"redis-benchmark failed: {proc.stderr.decode(errors='replace')[-300:]}")
            rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
            rps = float(rows[1][1]) if len(rows) > 1 else 0.0
            out[f"{name} P{pipeline}"] = rps
    drop_prefix(ctx.stack.redis(), "bench:rb", owned=False)
    return out


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1].split("/", 1)[0]
    if "@" in rest:
        rest = rest.rsplit("@", 1)[1]
    host, _, port = rest.rpartition(":")
    return host or "127.0.0.1", int(port or 6379)
