"""Run-wide state shared by the scenarios: sizes per mode, the stack, the results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eventstrata_bench.infra import Stack
from eventstrata_bench.results import Run


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each scenario is in a mode (``quick`` for development, ``full`` for `make bench`)."""

    hot_events: int
    users_per_tenant: int
    faust_events: int
    history_events: int
    read_seconds: float
    read_warmup_seconds: float
    read_concurrency: int
    repeats: int
    fresh_seconds: float
    tail_seconds: float
    tail_subscribers: tuple[int, ...]
    steady_rate: int
    mixed_users: int
    profile_seconds: float
    ingest_max_seconds: float
    budget_seconds: float


QUICK = Sizes(
    hot_events=60_000,
    users_per_tenant=2_000,
    faust_events=20_000,
    history_events=20_000,
    read_seconds=4.0,
    read_warmup_seconds=1.0,
    read_concurrency=8,
    repeats=2,
    fresh_seconds=8.0,
    tail_seconds=6.0,
    tail_subscribers=(1, 100, 1000),
    steady_rate=5000,
    mixed_users=3,
    profile_seconds=5.0,
    ingest_max_seconds=60.0,
    budget_seconds=1200.0,
)
FULL = Sizes(
    hot_events=1_000_000,
    users_per_tenant=20_000,
    faust_events=200_000,
    history_events=200_000,
    read_seconds=8.0,
    read_warmup_seconds=2.0,
    read_concurrency=8,
    repeats=3,
    fresh_seconds=30.0,
    tail_seconds=15.0,
    tail_subscribers=(1, 100, 1000),
    steady_rate=5000,
    mixed_users=5,
    profile_seconds=10.0,
    ingest_max_seconds=120.0,
    budget_seconds=32 * 60.0,
)


@dataclass(slots=True)
class Ctx:
    """Mutable state of one run. ``hot_prefix`` holds the hot dataset once ingested (the API
    serves it); ``keys`` maps tenant → API key."""

    run: Run
    sizes: Sizes
    stack: Stack
    workdir: Path
    now_ms: int
    hot_topic: str = ""
    hot_prefix: str = ""
    hot_group: str = ""
    hot_ingested: int = 0
    archive_dir: Path = field(default_factory=lambda: Path("/nonexistent"))
    keys: dict[str, str] = field(default_factory=dict)
    raw_bytes: int = 0
