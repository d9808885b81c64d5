"""Orchestration of one benchmark run (``python -m eventstrata_bench`` / ``eventstrata bench``).

Order: stack → hot dataset produced once → Redis ceiling → ingest (1 worker, 2 workers, live traffic,
faust) → the hot dataset ingested under the API's prefix (Redis footprint) → hot reads
(product via wrk, PostgreSQL via psycopg) → remote: HTTP ingest (batches of 100 and 1,000) and
the Python client's page walk against raw HTTP → freshness and tail under a steady load → 90-day
history ingested and archived (Parquet footprint, archive throughput) → mixed-tier reads.
A scenario that fails is recorded under "Not measured" with the reason; the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from eventstrata.localstack.ports import free_port
from eventstrata_bench import (
    baseline_pg,
    openloop,
    scen_history,
    scen_ingest,
    scen_live,
    scen_reads,
    scen_remote,
)
from eventstrata_bench.context import FULL, QUICK, Ctx, Sizes
from eventstrata_bench.dataset import DatasetSpec, GenEvent, generate, load_sample_fn
from eventstrata_bench.infra import (
    Api,
    BenchError,
    Proc,
    Stack,
    create_api_key,
    create_topic,
    drop_prefix,
    have,
    produce_all,
    product_argv,
    start_proc,
    total_positions,
    wait_http,
)
from eventstrata_bench.machine import machine_info
from eventstrata_bench.profile import record
from eventstrata_bench.results import Metric, Run, Target, write_outputs
from eventstrata_bench.scen_reads import Row
from eventstrata_bench.stats import median, rate, summarize

SCENARIOS = (
    "redis-ceiling",
    "ingest",
    "faust",
    "reads",
    "remote",
    "postgres",
    "freshness",
    "tail",
    "mixed",
    "footprint",
)
DAY_MS = 86_400_000
LIVE_SPAN_MINUTES = 10
HOT_READS = "hot reads"
DIRECT_RATIO_TARGETS = {"user newest 50": 0.8, "user+type newest 50": 0.8, "type newest 50, last hour": 0.8,
                        "count for user": 0.8, "get by id": 0.3}
"""Throughput of ours (over HTTP) / PostgreSQL queried directly (no HTTP) that the hot tier aims for."""


def _log(msg: str) -> None:
    print(f"[bench {dt.datetime.now(dt.UTC).strftime('%H:%M:%S')}] {msg}", flush=True)


def normalize_rows(events: Iterable[GenEvent], now_ms: int) -> tuple[list[Row], list[str]]:
    """Normalize the generated messages with the product's normalizer (the same code the ingest
    worker runs) → facts for the read targets + canonical JSON bodies (for PostgreSQL)."""
    normalize: Callable[..., Any] | None
    try:
        from eventstrata.formats.normalize import normalize as _normalize

        normalize = _normalize
    except ImportError:
        normalize = None
    from eventstrata.model import Event

    rows: list[Row] = []
    bodies: list[str] = []
    for e in events:
        if normalize is not None:
            ev = normalize(
                e.value, list(e.headers), now_ms=now_ms, max_bytes=262_144, max_future_skew_ms=DAY_MS
            )
            if not isinstance(ev, Event):
                continue
            rows.append(Row(ev.tenant, ev.id, ev.user_id, ev.type, ev.timestamp))
            bodies.append(ev.to_json().decode())
        else:
            obj = orjson.loads(e.value)
            rows.append(Row(e.tenant, str(obj["id"]), e.user_id, str(obj["type"]), e.ts_ms))
            bodies.append(e.value.decode())
    return rows, bodies


class Runner:
    """Runs the selected scenarios; see the module docstring for the order."""

    def __init__(self, ctx: Ctx, selected: Sequence[str]) -> None:
        self.ctx = ctx
        self.selected = set(selected)
        self.hot_events: list[GenEvent] = []
        self.rows: list[Row] = []
        self.bodies: list[str] = []
        self.api: Api | None = None
        self._targets: scen_reads.ReadTargets | None = None
        self.ours_rps: dict[str, float] = {}
        self.pg_rps: dict[str, float] = {}
        self.pg_http_rps: dict[str, float] = {}
        self.deadline = time.monotonic() + ctx.sizes.budget_seconds

    # -- helpers -----------------------------------------------------------------------
    def want(self, name: str) -> bool:
        return name in self.selected

    def attempt(self, name: str, fn: Callable[[], None]) -> None:
        """Run one step; a failure is recorded under "Not measured" and the run goes on. Steps
        that would start after the time budget are skipped (recorded too)."""
        if time.monotonic() > self.deadline:
            self.ctx.run.missing[name] = "skipped: the run's time budget was used up"
            _log(f"scenario {name} skipped (time budget)")
            return
        _log(f"scenario {name} …")
        t0 = time.monotonic()
        try:
            fn()
        except Exception as exc:
            tb = traceback.format_exc(limit=3)
            text = str(exc)
            if len(text) > 700:
                text = text[:250] + " … " + text[-450:]
            self.ctx.run.missing[name] = f"{type(exc).__name__}: {text}"
            _log(f"scenario {name} FAILED: {exc}\n{tb}")
        else:
            _log(f"scenario {name} done in {time.monotonic() - t0:.0f} s")

    def add(self, *args: Any, **kw: Any) -> Metric:
        m = Metric(*args, **kw)
        _log(f"  {m.scenario} | {m.system} | {m.name}: {m.value:,.2f} {m.unit} ({m.stat}, n={m.samples})")
        return self.ctx.run.add(m)

    # -- dataset -----------------------------------------------------------------------
    def prepare(self) -> None:
        ctx, s = self.ctx, self.ctx.sizes
        spec = DatasetSpec(events=s.hot_events, users_per_tenant=s.users_per_tenant, span_days=6.9)
        ctx.run.config["tenants"] = list(spec.tenants)
        ctx.run.config["hot_dataset"] = {
            "events": spec.events,
            "tenants": list(spec.tenants),
            "tenant_weights": list(spec.tenant_weights),
            "users_per_tenant": spec.users_per_tenant,
            "zipf_s": spec.zipf_s,
            "span_days": spec.span_days,
            "formats": list(spec.formats),
        }
        sample = load_sample_fn()
        if sample is None:
            ctx.run.notes.append("eventstrata.formats.samples missing: the dataset is native-format only")
        _log(f"generating {spec.events:,} events …")
        t0 = time.monotonic()
        self.hot_events = list(generate(spec, ctx.now_ms, sample))
        sizes = [len(e.value) for e in self.hot_events]
        ctx.raw_bytes = sum(sizes)
        ctx.run.config["hot_dataset"]["mean_event_bytes"] = round(ctx.raw_bytes / len(sizes), 1)
        _log(
            f"generated in {time.monotonic() - t0:.1f} s, "
            f"mean {ctx.raw_bytes / len(sizes):.0f} B; normalizing …"
        )
        self.rows, self.bodies = normalize_rows(self.hot_events, ctx.now_ms + 60_000)
        ctx.hot_topic = f"bench.hot.{uuid.uuid4().hex[:8]}"
        create_topic(ctx.stack.kafka_bootstrap, ctx.hot_topic, 4)
        n, secs = asyncio.run(produce_all(ctx.stack.kafka_bootstrap, ctx.hot_topic, self.hot_events))
        self.add(
            "setup",
            "produce hot dataset to Kafka (aiokafka, 4 partitions)",
            "events/s",
            rate(n, secs),
            "total",
            n,
            system="aiokafka producer",
        )

    # -- scenarios ---------------------------------------------------------------------
    def redis_ceiling(self) -> None:
        res = scen_ingest.run_redis_benchmark(self.ctx, 300_000 if self.ctx.run.mode == "full" else 100_000)
        for k, v in res.items():
            self.add(
                "1 ingest",
                f"redis-benchmark {k} " + ("(600 B value)" if k.startswith("HSET") else "(30 B member)"),
                "commands/s",
                v,
                "total",
                300_000 if self.ctx.run.mode == "full" else 100_000,
                system="redis-benchmark",
            )
        # one event = HSET body + HSET ids + 5 ZADD (tenant, user, type, user+type, seq)
        for p in (16, 128):
            ceiling = 1.0 / (2.0 / res[f"HSET P{p}"] + 5.0 / res[f"ZADD P{p}"])
            self.add(
                "1 ingest",
                f"hot-tier ceiling, events/s (2 HSET + 5 ZADD each, pipeline {p})",
                "events/s",
                ceiling,
                "derived",
                4,
                system="redis-benchmark",
            )

    def ingest(self) -> None:
        """1 worker (scratch prefix), its profile when below target, then 2 workers; each step
        recorded separately so one failure does not lose the others."""
        ctx = self.ctx
        target = len(self.hot_events)
        owned = ctx.stack.owned_redis
        r = ctx.stack.redis()
        scratch = f"bi{uuid.uuid4().hex[:6]}"
        try:
            run1, _ = scen_ingest.run_ingest(
                ctx, workers=1, prefix=scratch, target=target, max_seconds=ctx.sizes.ingest_max_seconds
            )
        finally:
            drop_prefix(r, scratch, owned=owned)
        ctx.run.config["ingest_rates_1w"] = [run1.rate]
        ctx.run.config["ingest_events_1w"] = [run1.events]
        ctx.run.config["ingest_cpu_1w"] = [_cpu_per_event(run1)]
        self._ingest_metrics("1 worker (run 1)", run1)
        if run1.rate < 50_000:
            self.attempt("ingest profile", self.ingest_profile)
        self.attempt("ingest, 2 workers", self.ingest_two)
        self.attempt("ingest, live traffic", self.ingest_live)

    def ingest_profile(self) -> None:
        ctx = self.ctx
        prof = f"bp{uuid.uuid4().hex[:6]}"
        try:
            _, summary = scen_ingest.run_ingest(
                ctx,
                workers=1,
                prefix=prof,
                target=len(self.hot_events),
                profile_seconds=ctx.sizes.profile_seconds,
            )
        finally:
            drop_prefix(ctx.stack.redis(), prof, owned=ctx.stack.owned_redis)
        ctx.run.profiles["ingest worker (py-spy, 100 Hz)"] = summary

    def ingest_two(self) -> None:
        ctx = self.ctx
        scratch2 = f"bj{uuid.uuid4().hex[:6]}"
        try:
            run2, _ = scen_ingest.run_ingest(
                ctx,
                workers=2,
                prefix=scratch2,
                target=len(self.hot_events),
                max_seconds=ctx.sizes.ingest_max_seconds,
            )
        finally:
            drop_prefix(ctx.stack.redis(), scratch2, owned=ctx.stack.owned_redis)
        self._ingest_metrics("2 workers", run2)
        self.add(
            "1 ingest", "2 workers, events/s per worker", "events/s", run2.rate / 2, "total", run2.events
        )

    def ingest_live(self) -> None:
        """1 worker on a second dataset of the same size and shape whose event times fall in the
        last ``LIVE_SPAN_MINUTES`` (live traffic, in random order within that span), against
        the hot dataset's 7-day backfill: with live times every index insert lands near the end
        of its sorted set, where the skiplist path is warm in the CPU cache."""
        ctx = self.ctx
        spec = DatasetSpec(events=len(self.hot_events), users_per_tenant=ctx.sizes.users_per_tenant,
                           span_days=LIVE_SPAN_MINUTES / 1440, seed=43)
        topic = f"bench.live.{uuid.uuid4().hex[:8]}"
        create_topic(ctx.stack.kafka_bootstrap, topic, 4)
        n, _ = asyncio.run(produce_all(ctx.stack.kafka_bootstrap, topic,
                                       generate(spec, int(time.time() * 1000), load_sample_fn())))
        scratch = f"bl{uuid.uuid4().hex[:6]}"
        try:
            run, _ = scen_ingest.run_ingest(ctx, workers=1, prefix=scratch, target=n, topic=topic,
                                            max_seconds=ctx.sizes.ingest_max_seconds)
        finally:
            drop_prefix(ctx.stack.redis(), scratch, owned=ctx.stack.owned_redis)
        self._ingest_metrics(f"1 worker, live traffic (event times in the last {LIVE_SPAN_MINUTES} min)", run)

    def _ingest_metrics(self, label: str, run: scen_ingest.IngestRun) -> None:
        self.add(
            "1 ingest",
            f"{label}: events/s sustained",
            "events/s",
            run.rate,
            "total",
            run.events,
            note=f"{run.seconds:.1f} s after first write",
        )
        self.add("1 ingest", f"{label}: worker start to first write", "s", run.start_seconds, "single", 1)
        for i, c in enumerate(run.worker_cpu):
            self.add("1 ingest", f"{label}: CPU worker {i + 1}", "% of a core", c, "mean", 1)
        self.add("1 ingest", f"{label}: CPU redis-server", "% of a core", run.redis_cpu, "mean", 1)
        if run.kafka_cpu is not None:
            self.add("1 ingest", f"{label}: CPU Kafka broker", "% of a core", run.kafka_cpu, "mean", 1)
        self.add("1 ingest", f"{label}: worker CPU per stored event", "µs/event", run.worker_us_per_event(),
                 "total", run.events)
        if run.redis is not None:
            cost = run.redis
            self.add("1 ingest", f"{label}: Redis CPU per stored event (INFO cpu, AOF everysec)", "µs/event",
                     cost.us_per_event, "total", run.events)
            self.add("1 ingest", f"{label}: of which the write script's own work", "µs/event",
                     cost.script_own(), "total", run.events,
                     note="INFO commandstats: EVALSHA minus the commands it ran")
            self.add("1 ingest", f"{label}: plus Redis' forked children (AOF rewrites) per stored event",
                     "µs/event", cost.children_us_per_event, "total", run.events,
                     note="INFO cpu used_cpu_*_children: not in the figure above")
            for cmd in ("zadd", "hsetnx", "hset", "zcard"):
                if cmd in cost.by_command:
                    self.add("1 ingest", f"{label}: of which {cmd.upper()}", "µs/event", cost.by_command[cmd],
                             "total", run.events, note="INFO commandstats")

    def main_ingest(self) -> None:
        """The hot dataset under the API's prefix, with one worker (second 1-worker sample)."""
        ctx = self.ctx
        ctx.hot_prefix = f"bh{uuid.uuid4().hex[:6]}"
        if ctx.stack.owned_redis:
            ctx.stack.redis().flushall()
        run, _ = scen_ingest.run_ingest(ctx, workers=1, prefix=ctx.hot_prefix, target=len(self.hot_events))
        ctx.hot_ingested = run.events
        if self.want("ingest"):
            self._ingest_metrics("1 worker (run 2)", run)
            rates = [*ctx.run.config.get("ingest_rates_1w", []), run.rate]
            counted = sum(ctx.run.config.get("ingest_events_1w", [])) + run.events
            m = self.add(
                "1 ingest",
                "1 worker: events/s sustained",
                "events/s",
                median(rates),
                f"median of {len(rates)} runs",
                counted,
                target=Target(">=", 50_000),
            )
            ctx.run.config["ingest_rate_1w"] = m.value
            cpus = [*ctx.run.config.get("ingest_cpu_1w", []), _cpu_per_event(run)]
            self.add("1 ingest", "1 worker: Redis CPU per stored event (INFO cpu, AOF everysec)", "µs/event",
                     median([c[0] for c in cpus]), f"median of {len(cpus)} runs", counted,
                     target=Target("<=", 10))
            self.add("1 ingest", "1 worker: worker CPU per stored event", "µs/event",
                     median([c[1] for c in cpus]), f"median of {len(cpus)} runs", counted,
                     target=Target("<=", 20))
        if self.want("footprint"):
            stored = total_positions(ctx.stack.redis(), ctx.hot_prefix, ctx.run.config["tenants"])
            if ctx.stack.owned_redis:
                rc = ctx.stack.redis()
                tail_bytes = sum(
                    int(rc.memory_usage(f"{ctx.hot_prefix}:{{{t}}}:tail", samples=0) or 0)
                    for t in ctx.run.config["tenants"]
                )
                per = run.memory_delta / max(1, stored)
                self.add(
                    "6 footprint",
                    "Redis used_memory delta per hot event (all indexes, tail stream)",
                    "B/event",
                    per,
                    "total",
                    stored,
                    target=Target("<=", 450),
                    note=f"mean raw event {ctx.raw_bytes / len(self.hot_events):.0f} B",
                )
                self.add(
                    "6 footprint",
                    "of which the capped tail streams",
                    "B/event",
                    tail_bytes / max(1, stored),
                    "total",
                    stored,
                    note="XADD MAXLEN ~ EVENTSTRATA_TAIL_MAXLEN per tenant",
                )
            else:
                ctx.run.notes.append("Redis footprint skipped: shared Redis (EVENTSTRATA_BENCH_REDIS)")

    def faust(self) -> None:
        ctx = self.ctx
        target = min(ctx.sizes.faust_events, len(self.hot_events))
        fr, start, cpu = scen_ingest.run_faust(ctx, target)
        self.add("1 ingest", "faust agent: msgs/s sustained", "events/s", fr, "total", target, system="faust")
        self.add("1 ingest", "faust agent: start to first write", "s", start, "single", 1, system="faust")
        self.add("1 ingest", "faust agent: CPU", "% of a core", cpu, "mean", 1, system="faust")
        ours = ctx.run.config.get("ingest_rate_1w")
        if ours:
            self.add(
                "1 ingest",
                "1 worker vs faust agent",
                "×",
                ours / fr if fr else 0.0,
                "ratio",
                2,
                target=Target(">=", 4.0),
            )

    def start_api(self) -> None:
        ctx = self.ctx
        settings = self.settings(ctx.hot_prefix, ctx.hot_topic, "unused")
        self.api = Api.start(settings, ctx.workdir)
        for t in [*ctx.run.config["tenants"], "hist"]:
            ctx.keys[t] = create_api_key(settings, t, ctx.workdir)

    def settings(self, prefix: str, topic: str, group: str) -> Any:
        return self.ctx.stack.settings(prefix=prefix, topic=topic, group=group, archive=self.ctx.archive_dir)

    def reads(self) -> None:
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        if not have("wrk"):
            raise BenchError("wrk not installed (apt-get install wrk)")
        reqs = scen_reads.api_requests(self.targets())
        ours = self.ours_rps
        scripts: dict[str, Path] = {}
        for kind, lst in reqs.items():
            script = ctx.workdir / f"wrk-{abs(hash(kind))}.lua"
            script.write_text(scen_reads.lua_script(lst, ctx.keys))
            scen_reads.run_wrk(
                self.api.base, script, concurrency=s.read_concurrency, seconds=s.read_warmup_seconds
            )
            results = [
                scen_reads.run_wrk(
                    self.api.base, script, concurrency=s.read_concurrency, seconds=s.read_seconds
                )
                for _ in range(s.repeats)
            ]
            bad = sum(r.bad_status + r.socket_errors for r in results)
            n = sum(r.requests for r in results)
            rps = median([r.rps for r in results])
            p50 = median([r.p50_ms for r in results])
            p99 = median([r.p99_ms for r in results])
            note = (f"{s.read_concurrency} connections, wrk: closed loop at saturation"
                    + (f", {bad} errors/non-2xx" if bad else ""))
            self.add(HOT_READS, f"{kind}: latency", "ms", p50, f"p50 (median of {s.repeats})", n, note=note)
            self.add(
                HOT_READS,
                f"{kind}: latency",
                "ms",
                p99,
                f"p99 (median of {s.repeats})",
                n,
                target=Target("<=", 10.0),
                note=note,
            )
            self.add(
                HOT_READS,
                f"{kind}: throughput, one API process",
                "req/s",
                rps,
                f"median of {s.repeats}",
                n,
                target=Target(">=", 2000),
            )
            ours[kind] = rps
            # The same requests from one connection: the latency one client sees when the API
            # is not saturated (the 8-connection figures above are closed-loop at saturation,
            # so their latency is ~8 / throughput by construction).
            single = scen_reads.run_wrk(self.api.base, script, concurrency=1, seconds=s.read_seconds)
            note1 = "1 connection, wrk" + (f", {single.bad_status + single.socket_errors} errors/non-2xx"
                                           if single.bad_status + single.socket_errors else "")
            self.add(HOT_READS, f"{kind}: latency, one client", "ms", single.p50_ms, "p50", single.requests,
                     note=note1)
            self.add(HOT_READS, f"{kind}: latency, one client", "ms", single.p99_ms, "p99", single.requests,
                     target=Target("<=", 10.0), note=note1)
            self.open_loop(kind, lst, rps)
            ctx.run.add_series(
                "hot-reads", f"ours: {kind}", list(results[-1].quantiles_ms), results[-1].requests
            )
            if bad:
                ctx.run.notes.append(f"hot reads '{kind}': {bad} non-2xx or socket errors")
            scripts[kind] = script
        if ours and min(ours.values()) < 2000:
            worst = min(ours, key=lambda k: ours[k])
            self.attempt("hot reads profile", functools.partial(self.profile_api, worst, scripts[worst]))

    def http_ingest(self) -> None:
        """``POST /v1/ingest`` into a topic of its own (no worker reads it: the hot dataset stays
        as it is), through a second API process, batches of 100 and 1,000."""
        ctx = self.ctx
        topic = f"bench.http.{uuid.uuid4().hex[:8]}"
        create_topic(ctx.stack.kafka_bootstrap, topic, 4)
        settings = self.settings(f"bk{uuid.uuid4().hex[:6]}", topic, "unused")
        api = Api.start(settings, ctx.workdir)
        try:
            key = create_api_key(settings, "acme", ctx.workdir)
            spec = DatasetSpec(events=20_000, tenants=("acme",), tenant_weights=(1.0,),
                               users_per_tenant=ctx.sizes.users_per_tenant, span_days=0.5, seed=44)
            events = list(generate(spec, int(time.time() * 1000), load_sample_fn()))
            seconds = max(3.0, ctx.sizes.read_seconds)
            for batch in (100, 1000):
                bodies = scen_remote.ingest_bodies(events, batch)
                scen_remote.http_ingest(api.base, key, bodies[:4], batch, seconds=1.0, concurrency=4)
                res = scen_remote.http_ingest(api.base, key, bodies, batch, seconds=seconds, concurrency=4)
                lat = summarize(res.latency_ms)
                label = f"HTTP ingest, batches of {batch}, 4 connections"
                self.add("1 ingest", f"{label}: events/s acknowledged by Kafka", "events/s", res.rate,
                         "total", res.events, note=f"{res.requests} requests in {res.seconds:.1f} s")
                self.add("1 ingest", f"{label}: request latency", "ms", lat.p50, "p50", lat.count)
                self.add("1 ingest", f"{label}: request latency", "ms", lat.p99, "p99", lat.count)
        finally:
            api.stop()

    def client_walk(self) -> None:
        """The Python client's cursor walk against raw HTTP, on the hot dataset's biggest tenant."""
        ctx = self.ctx
        assert self.api is not None
        tenant = ctx.run.config["tenants"][0]
        pages = 30 if ctx.run.mode == "full" else 10
        res = scen_remote.page_walk(self.api.base, ctx.keys[tenant], {"limit": "100"}, pages=pages,
                                    repeats=ctx.sizes.repeats + 2)
        self.add(HOT_READS, "page walk (100 per page), raw httpx: time per page", "ms", res.raw_ms_per_page,
                 "median", pages)
        self.add(HOT_READS, "page walk (100 per page), eventstrata.client: time per page", "ms",
                 res.client_ms_per_page, "median", pages)
        self.add(HOT_READS, "page walk: client / raw httpx time", "ratio", res.overhead, "median", pages)

    def open_loop(self, kind: str, reqs: list[tuple[str, str]], saturated_rps: float) -> None:
        """The latency of ``kind`` at fixed offered loads below saturation (``openloop``:
        vegeta at ``openloop.FRACTIONS`` of the closed-loop throughput, a warm-up at the same
        rate first). Skipped with a note when vegeta is missing."""
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        if openloop.vegeta_path() is None:
            note = "open-loop latency skipped: vegeta not installed (make bench builds it when Go is present)"
            if note not in ctx.run.notes:
                ctx.run.notes.append(note)
            return
        targets = ctx.workdir / f"vegeta-{abs(hash(kind))}.txt"
        targets.write_text(openloop.targets_text(self.api.base, reqs, ctx.keys))
        for frac in openloop.FRACTIONS:
            rate = max(1, round(saturated_rps * frac))
            openloop.run(targets, rate=rate, seconds=s.read_warmup_seconds, workdir=ctx.workdir)
            o = openloop.run(targets, rate=rate, seconds=2 * s.read_seconds, workdir=ctx.workdir)
            note = (f"open loop (vegeta): {rate:,} req/s offered = {frac:.0%} of the 8-connection throughput"
                    + (f", {1 - o.success:.2%} non-2xx or errors" if o.success < 1 else ""))
            metric = f"{kind}: latency at {frac:.0%} of max load (open loop)"
            self.add(HOT_READS, metric, "ms", o.p50_ms, "p50", o.requests, note=note)
            self.add(HOT_READS, metric, "ms", o.p99_ms, "p99", o.requests, target=Target("<=", 10.0),
                     note=note)

    def profile_api(self, kind: str, script: Path) -> None:
        """py-spy on the API process while wrk runs ``kind`` (the slowest query)."""
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        wrk = subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{s.read_concurrency}",
                f"-d{int(s.profile_seconds) + 3}s",
                "-s",
                str(script),
                self.api.base,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            summary = record(self.api.proc.pid, s.profile_seconds, ctx.workdir / "pyspy-api.txt")
        finally:
            wrk.wait(timeout=s.profile_seconds + 30)
        ctx.run.profiles[f"API process during '{kind}' (py-spy, 100 Hz)"] = summary

    def targets(self) -> scen_reads.ReadTargets:
        if self._targets is None:
            self._targets = scen_reads.build_targets(self.rows, self.ctx.now_ms)
        return self._targets

    def ratios(self) -> None:
        """ours / PostgreSQL throughput for every hot query both measured: against PostgreSQL
        queried directly (``DIRECT_RATIO_TARGETS``) and served by the same HTTP stack (>= 1.5)."""
        for label, theirs in (("PostgreSQL", self.pg_rps), ("PostgreSQL over HTTP", self.pg_http_rps)):
            for kind, pr in theirs.items():
                if kind not in self.ours_rps:
                    continue
                goal = DIRECT_RATIO_TARGETS.get(kind, 0.8) if theirs is self.pg_rps else 1.5
                self.add(HOT_READS, f"{kind}: ours / {label} throughput", "×",
                         self.ours_rps[kind] / pr if pr else 0.0, "ratio", 2, target=Target(">=", goal))

    def postgres_http(self, pg: baseline_pg.PgServer) -> None:
        """The hot queries through ``baseline_pg_http`` (the same HTTP stack, one process) with
        the same wrk scripts and concurrency as the product's reads."""
        ctx, s = self.ctx, self.ctx.sizes
        if not have("wrk"):
            raise BenchError("wrk not installed (apt-get install wrk)")
        reqs = scen_reads.api_requests(self.targets())
        tenants = sorted({t for lst in reqs.values() for _, t in lst})
        keys = {t: "pg_" + secrets.token_urlsafe(18) for t in tenants}
        port = free_port()
        env = {"BASELINE_DSN": pg.dsn, "BASELINE_PORT": str(port), "BASELINE_POOL": str(s.read_concurrency),
               "BASELINE_KEYS": orjson.dumps({k: t for t, k in keys.items()}).decode()}
        proc = start_proc("pg-http", [sys.executable, "-m", "eventstrata_bench.baseline_pg_http"],
                          workdir=ctx.workdir, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_http(base + "/healthz", 60.0)
            except BenchError:
                raise BenchError(f"PostgreSQL HTTP baseline did not start:\n{proc.log_tail()}") from None
            for kind, lst in reqs.items():
                script = ctx.workdir / f"wrk-pg-{abs(hash(kind))}.lua"
                script.write_text(scen_reads.lua_script(lst, keys))
                conc = s.read_concurrency
                scen_reads.run_wrk(base, script, concurrency=conc, seconds=s.read_warmup_seconds)
                results = [scen_reads.run_wrk(base, script, concurrency=conc, seconds=s.read_seconds)
                           for _ in range(s.repeats)]
                bad = sum(r.bad_status + r.socket_errors for r in results)
                n = sum(r.requests for r in results)
                note = (f"{s.read_concurrency} connections, wrk, FastAPI + uvicorn + psycopg, one process"
                        + (f", {bad} errors/non-2xx" if bad else ""))
                for stat, val in (("p50", median([r.p50_ms for r in results])),
                                  ("p99", median([r.p99_ms for r in results]))):
                    self.add(HOT_READS, f"{kind}: latency", "ms", val, f"{stat} (median of {s.repeats})", n,
                             system="postgresql-http", note=note)
                rps = median([r.rps for r in results])
                self.add(HOT_READS, f"{kind}: throughput", "req/s", rps, f"median of {s.repeats}", n,
                         system="postgresql-http", note=note)
                ctx.run.add_series("hot-reads", f"pg-http: {kind}", list(results[-1].quantiles_ms),
                                   results[-1].requests)
                if bad:
                    ctx.run.notes.append(f"PostgreSQL HTTP baseline '{kind}': {bad} non-2xx or socket errors")
                self.pg_http_rps[kind] = rps
        finally:
            proc.stop()

    def postgres(self) -> None:
        ctx, s = self.ctx, self.ctx.sizes
        targets = self.targets()
        # its own temp dir: the run's workdir is private to us (0700) and postgres runs as postgres
        pg = baseline_pg.PgServer(Path(tempfile.mkdtemp(prefix="eventstrata-bench-pg-")))
        pg.start()
        try:
            ctx.run.machine["postgresql"] = pg.version
            pg_rows = [
                (r.tenant, r.id, r.user_id, r.type, r.ts, b)
                for r, b in zip(self.rows, self.bodies, strict=True)
            ]
            secs = baseline_pg.load(pg, pg_rows)
            copy_rate = rate(len(pg_rows), secs)
            self.add(
                "1 ingest",
                "COPY ingest with 3 indexes",
                "events/s",
                copy_rate,
                "total",
                len(pg_rows),
                system="postgresql",
                note="batches of 20,000, one transaction each",
            )
            ours = ctx.run.config.get("ingest_rate_1w")
            if ours and copy_rate:
                self.add("1 ingest", "1 worker vs PostgreSQL COPY", "×", ours / copy_rate, "ratio", 2,
                         target=Target(">=", 1.5))
            self.add(
                "6 footprint",
                "table + indexes per event",
                "B/event",
                baseline_pg.table_bytes(pg) / len(pg_rows),
                "total",
                len(pg_rows),
                system="postgresql",
            )
            params = scen_reads.pg_params(targets)
            for kind, sql in baseline_pg.QUERIES.items():
                lat_all: list[float] = []
                rpss: list[float] = []
                for i in range(s.repeats):
                    lat, rps = asyncio.run(
                        baseline_pg.run_queries(
                            pg,
                            sql,
                            params[kind],
                            concurrency=s.read_concurrency,
                            seconds=s.read_seconds,
                            warmup=s.read_warmup_seconds if i == 0 else 0.0,
                        )
                    )
                    lat_all += lat
                    rpss.append(rps)
                sm = summarize(lat_all)
                note = f"{s.read_concurrency} connections, psycopg async, no HTTP"
                self.add(
                    HOT_READS,
                    f"{kind}: latency",
                    "ms",
                    sm.p50,
                    "p50",
                    sm.count,
                    system="postgresql",
                    note=note,
                )
                self.add(
                    HOT_READS,
                    f"{kind}: latency",
                    "ms",
                    sm.p99,
                    "p99",
                    sm.count,
                    system="postgresql",
                    note=note,
                )
                pr = median(rpss)
                self.add(
                    HOT_READS,
                    f"{kind}: throughput",
                    "req/s",
                    pr,
                    f"median of {s.repeats}",
                    sm.count,
                    system="postgresql",
                    note=note,
                )
                ctx.run.add_series("hot-reads", f"pg: {kind}", lat_all)
                self.pg_rps[kind] = pr
            self.attempt("postgres over http", functools.partial(self.postgres_http, pg))
        finally:
            pg.stop()
            shutil.rmtree(pg.root, ignore_errors=True)

    def _live_worker(self, topic: str) -> Proc:
        ctx = self.ctx
        settings = self.settings(ctx.hot_prefix, topic, f"bench-live-{uuid.uuid4().hex[:6]}")
        return start_proc(
            "ingest-live", product_argv("worker", "ingest"), workdir=ctx.workdir, env=settings.to_env()
        )

    def _background(self, n: int) -> list[GenEvent]:
        spec = DatasetSpec(
            events=n,
            users_per_tenant=self.ctx.sizes.users_per_tenant,
            span_days=1 / 24,
            tenants=("acme",),
            tenant_weights=(1.0,),
            seed=77,
        )
        return list(generate(spec, int(time.time() * 1000), load_sample_fn()))

    def live(self) -> None:
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        topic = f"bench.live.{uuid.uuid4().hex[:8]}"
        create_topic(ctx.stack.kafka_bootstrap, topic, 4)
        background = self._background(min(200_000, int(s.steady_rate * 30)))
        worker = self._live_worker(topic)
        try:
            waited = asyncio.run(
                scen_live.wait_worker(
                    ctx.stack.kafka_bootstrap, topic, self.api.base, ctx.keys["acme"], "acme", 120.0
                )
            )
            _log(f"live worker ready after {waited:.1f} s")
            if self.want("freshness"):
                self.attempt("freshness", lambda: self.freshness(topic, background))
            if self.want("tail"):
                self.attempt("tail", lambda: self.tail(topic, background))
        finally:
            worker.stop()

    def freshness(self, topic: str, background: list[GenEvent]) -> None:
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        res = asyncio.run(
            scen_live.freshness(
                ctx.stack.kafka_bootstrap,
                topic,
                self.api.base,
                ctx.keys["acme"],
                "acme",
                background=background,
                rate=s.steady_rate,
                seconds=s.fresh_seconds,
                warmup=3.0,
            )
        )
        if not res.latencies_ms:
            raise BenchError(f"no probe became visible ({res.lost} lost)")
        sm = summarize(res.latencies_ms)
        note = f"background {res.background_rate:,.0f} ev/s" + (
            f", {res.lost} probes not seen in 10 s" if res.lost else ""
        )
        self.add("2 freshness", "produce → visible in /v1/events", "ms", sm.p50, "p50", sm.count, note=note)
        self.add(
            "2 freshness",
            "produce → visible in /v1/events",
            "ms",
            sm.p99,
            "p99",
            sm.count,
            target=Target("<=", 100),
            note=note,
        )
        ctx.run.add_series("freshness", f"@{s.steady_rate} ev/s", res.latencies_ms)

    def tail(self, topic: str, background: list[GenEvent]) -> None:
        for n in self.ctx.sizes.tail_subscribers:
            self.attempt(f"tail, {n} subscribers", functools.partial(self.tail_one, topic, background, n))

    def tail_one(self, topic: str, background: list[GenEvent], n: int) -> None:
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        res, errors = asyncio.run(
            scen_live.tail_latency(
                ctx.stack.kafka_bootstrap,
                topic,
                self.api.base,
                ctx.keys["acme"],
                "acme",
                background=background,
                rate=s.steady_rate,
                subscribers=n,
                seconds=s.tail_seconds,
            )
        )
        if not res.latencies_ms:
            raise BenchError(f"no probe reached a subscriber ({res.lost} lost; {errors[:2]})")
        sm = summarize(res.latencies_ms)
        note = f"background {res.background_rate:,.0f} ev/s" + (
            f", {res.lost} probes not received" if res.lost else ""
        )
        self.add(
            "5 tail",
            f"produce → SSE subscriber, {n} subscribers",
            "ms",
            sm.p50,
            "p50",
            sm.count,
            note=note,
        )
        self.add(
            "5 tail",
            f"produce → SSE subscriber, {n} subscribers",
            "ms",
            sm.p99,
            "p99",
            sm.count,
            target=Target("<=", 50) if n >= 1000 else None,
            note=note,
        )
        ctx.run.add_series("tail", f"{n} subscribers", res.latencies_ms)
        if errors:
            ctx.run.notes.append(
                f"tail with {n} subscribers: {len(errors)} stream errors, first: {errors[0]}"
            )

    def history(self) -> None:
        """90 days of one tenant's history: ingest, archive (Parquet footprint, archive
        throughput), then walk and count across both tiers."""
        ctx, s = self.ctx, self.ctx.sizes
        assert self.api is not None
        now = int(time.time() * 1000)
        spec = DatasetSpec(
            events=s.history_events,
            tenants=("hist",),
            tenant_weights=(1.0,),
            users_per_tenant=5_000,
            span_days=90,
            seed=90,
        )
        events = list(generate(spec, now, load_sample_fn()))
        topic = f"bench.hist.{uuid.uuid4().hex[:8]}"
        create_topic(ctx.stack.kafka_bootstrap, topic, 4)
        asyncio.run(produce_all(ctx.stack.kafka_bootstrap, topic, events))
        settings = self.settings(ctx.hot_prefix, topic, f"bench-hist-{uuid.uuid4().hex[:6]}")
        r = ctx.stack.redis()
        before = total_positions(r, ctx.hot_prefix, ["hist"])
        worker = start_proc(
            "ingest-hist", product_argv("worker", "ingest"), workdir=ctx.workdir, env=settings.to_env()
        )
        try:
            deadline = time.monotonic() + 120 + len(events) / 2000
            while total_positions(r, ctx.hot_prefix, ["hist"]) - before < len(events):
                if not worker.alive():
                    raise BenchError(f"history worker exited:\n{worker.log_tail()}")
                if time.monotonic() > deadline:
                    raise BenchError("history ingest timed out")
                time.sleep(0.2)
        finally:
            worker.stop()
        if self.want("footprint") or self.want("mixed"):
            secs = scen_history.archive_run_once(settings, ctx.workdir)
            wm_raw = r.get(f"{ctx.hot_prefix}:{{hist}}:wm")
            wm = int(wm_raw) if wm_raw else 0
            archived = [e for e in events if e.ts_ms < wm]
            pq_bytes, files = scen_history.parquet_bytes(ctx.archive_dir, "hist")
            if not archived or pq_bytes == 0:
                raise BenchError(f"archive run-once archived nothing (watermark {wm}, {files} files)")
            raw = sum(len(e.value) for e in archived)
            self.add(
                "6 footprint",
                "archive throughput (run-once, 83 days of windows)",
                "events/s",
                rate(len(archived), secs),
                "total",
                len(archived),
                note=f"{files} Parquet files",
            )
            self.add(
                "6 footprint",
                "Parquet bytes per archived event",
                "B/event",
                pq_bytes / len(archived),
                "total",
                len(archived),
                note=f"raw JSON {raw / len(archived):.0f} B/event",
            )
            self.add(
                "6 footprint",
                "Parquet / raw JSON",
                "×",
                pq_bytes / raw,
                "ratio",
                len(archived),
                target=Target("<=", 0.2),
            )
        if self.want("mixed"):
            ranks = [3, 10, 30, 100, 300, 1000, 3000][: max(1, s.mixed_users)]
            users = [f"{spec.user_prefix}{k:06d}" for k in ranks]
            rows, _ = normalize_rows((e for e in events[:5000]), now + 60_000)
            types = sorted({row.type for row in rows})[:5]
            res = asyncio.run(
                scen_history.walk_and_count(
                    self.api.base,
                    ctx.keys["hist"],
                    users,
                    types,
                    now - 90 * DAY_MS,
                    max_pages=100,
                    count_repeats=3,
                )
            )
            sm = summarize(res.page_ms)
            note = f"{len(users)} users, {res.events:,} events walked, 50/page"
            self.add(
                "4 mixed-tier", "90-day user page (cursor walk)", "ms", sm.p50, "p50", sm.count, note=note
            )
            self.add(
                "4 mixed-tier",
                "90-day user page (cursor walk)",
                "ms",
                sm.p99,
                "p99",
                sm.count,
                target=Target("<=", 100),
                note=note,
            )
            sc = summarize(res.count_ms)
            self.add("4 mixed-tier", "90-day filtered count (user or type)", "ms", sc.p50, "p50", sc.count)
            self.add("4 mixed-tier", "90-day filtered count (user or type)", "ms", sc.p99, "p99", sc.count)
            ctx.run.add_series("mixed-tier", "90-day user page", res.page_ms)
            ctx.run.add_series("mixed-tier", "90-day count", res.count_ms)
            self.attempt("mixed on S3", lambda: self.mixed_on_s3(users, types, now))

    def mixed_on_s3(self, users: list[str], types: list[str], now: int) -> None:
        """The same 90-day walk with the archive on S3 (a SeaweedFS the bench starts; the local
        archive copied there, same Redis and watermark): one API reading through its local
        copies (the default), one reading row groups from S3 on every query."""
        from eventstrata.archive.s3 import S3Destination
        from eventstrata.localstack.seaweed import REGION, S3Server

        ctx = self.ctx
        server = S3Server(ctx.workdir / "seaweedfs")
        server.start()
        try:
            server.wait_ready(buckets=("bench",), timeout=120)
            dest = S3Destination("bench", "archive", local_dir=ctx.workdir / "s3-copy",
                                 endpoint=server.endpoint, access_key=server.access_key,
                                 secret_key=server.secret_key)
            objects = scen_history.copy_archive_to_s3(ctx.archive_dir, "hist", dest)
            aws = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
                   "AWS_REGION": REGION}
            for label, cache_mb in (("local copies", 1024), ("no local copies", 0)):
                settings = self.ctx.stack.settings(
                    prefix=ctx.hot_prefix, topic=ctx.hot_topic, group="unused", archive=ctx.archive_dir,
                    archive_uri="s3://bench/archive", s3_endpoint=server.endpoint, archive_cache_mb=cache_mb,
                    state_dir=ctx.workdir / f"state-s3-{cache_mb}")
                api = Api.start(settings, ctx.workdir, extra_env=aws)
                try:
                    res = asyncio.run(scen_history.walk_and_count(
                        api.base, ctx.keys["hist"], users, types, now - 90 * DAY_MS, max_pages=100,
                        count_repeats=3))
                finally:
                    api.stop()
                sm = summarize(res.page_ms)
                note = (f"archive on S3 (SeaweedFS, {objects} objects), {label}; {len(users)} users, "
                        f"{res.events:,} events walked, 50/page")
                name = f"90-day user page (cursor walk), S3, {label}"
                self.add("4 mixed-tier", name, "ms", sm.p50, "p50", sm.count, note=note)
                self.add("4 mixed-tier", name, "ms", sm.p99, "p99", sm.count, target=Target("<=", 150),
                         note=note)
                sc = summarize(res.count_ms)
                self.add("4 mixed-tier", f"90-day filtered count, S3, {label}", "ms", sc.p99, "p99", sc.count)
                ctx.run.add_series("mixed-tier", f"90-day user page, S3, {label}", res.page_ms)
        finally:
            server.stop()

    # -- the whole run -----------------------------------------------------------------
    def run_all(self) -> None:
        self.attempt("dataset", self.prepare)
        if "dataset" in self.ctx.run.missing:
            return
        if self.want("redis-ceiling"):
            self.attempt("redis-ceiling", self.redis_ceiling)
        if self.want("ingest"):
            self.attempt("ingest", self.ingest)
        self.attempt("hot ingest", self.main_ingest)
        if "hot ingest" in self.ctx.run.missing:
            return
        if self.want("faust"):
            self.attempt("faust", self.faust)
        if self.want("postgres"):
            self.attempt("postgres", self.postgres)
        needs_api = self.selected & {"reads", "remote", "freshness", "tail", "mixed", "footprint"}
        if not needs_api:
            return
        self.attempt("api", self.start_api)
        if "api" in self.ctx.run.missing:
            return
        try:
            if self.want("reads"):
                self.attempt("reads", self.reads)
                self.ratios()
            if self.want("remote"):
                self.attempt("HTTP ingest", self.http_ingest)
                self.attempt("client page walk", self.client_walk)
            if self.want("freshness") or self.want("tail"):
                self.attempt("live", self.live)
            if self.want("mixed") or self.want("footprint"):
                self.attempt("history", self.history)
        finally:
            if self.api is not None:
                self.api.stop()


def _cpu_per_event(run: scen_ingest.IngestRun) -> tuple[float, float]:
    """(Redis, worker) CPU per stored event of one run, µs (Redis' from ``INFO cpu``)."""
    return (run.redis.us_per_event if run.redis is not None else float("nan"), run.worker_us_per_event())


def _raise_nofile() -> None:
    """1,000 SSE subscribers need > 1,024 descriptors here and in the API process (which
    inherits the limit): raise the soft limit to the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="eventstrata bench", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    p.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes, for development")
    p.add_argument("--out", default="bench/results", help="output directory (default bench/results)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code (0 even when targets are missed; 1 when
    the servers could not start or nothing could be measured)."""
    args = parse_args(argv)
    _raise_nofile()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr
        )
        return 2
    selected = list(args.scenarios or SCENARIOS)
    sizes: Sizes = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    workdir = Path(tempfile.mkdtemp(prefix="eventstrata-bench-"))
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = Run(started=started, mode=mode, machine=machine_info())
    run.config["scenarios"] = selected
    run.config["sizes"] = {k: getattr(sizes, k) for k in sizes.__slots__}
    stack = Stack(workdir)
    t0 = time.monotonic()
    _log(f"mode {mode}, scenarios {', '.join(selected)}, workdir {workdir}")
    try:
        stack.start()
        _log(f"stack: kafka {stack.kafka_bootstrap}, redis {stack.redis_url}")
        run.machine["redis"] = str(stack.redis().info("server").get("redis_version"))
        ctx = Ctx(
            run=run,
            sizes=sizes,
            stack=stack,
            workdir=workdir,
            now_ms=int(time.time() * 1000),
            archive_dir=workdir / "archive",
        )
        Runner(ctx, selected).run_all()
    except Exception as exc:
        run.missing["stack"] = f"{type(exc).__name__}: {exc}"
        _log(f"FAILED: {exc}\n{traceback.format_exc()}")
    finally:
        stack.stop()
        run.config["wall_seconds"] = round(time.monotonic() - t0, 1)
        paths = write_outputs(run, Path(args.out))
        for p in paths:
            _log(f"wrote {p}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if not run.metrics else 0
