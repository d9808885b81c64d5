"""Open-loop load at a fixed request rate (vegeta): the latency clients see below saturation.

Why next to wrk: ``wrk -c8`` is a closed loop: each of 8 connections sends its next request
when the previous answer arrives. At saturation the latency it reports is set by Little's law
(latency ≈ connections ÷ throughput: 8 connections at 800 req/s give ~10 ms whatever a request
costs); it measures the server's throughput, not the latency its clients see when it is not
overloaded. An open loop sends on a fixed schedule (``rate`` requests per second, whatever the
answers do, more connections when needed), so a slow answer cannot hold back the requests
behind it (no coordinated omission): its percentiles are the latency at that offered load. The
benchmark offers fixed fractions of the throughput wrk measured.

vegeta (https://github.com/tsenart/vegeta, Go) is built by ``make bench`` with ``go install``
into ``~/.cache/eventstrata/bin`` when Go is on the machine (``VEGETA_MODULE``); without it
these measurements are skipped with a note. ``targets_text`` and ``parse_report`` are pure;
``run`` blocks on the vegeta subprocesses and raises ``BenchError``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from eventstrata.config import cache_root
from eventstrata_bench.infra import BenchError

VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.12.0"
FRACTIONS = (0.5, 0.75)
"""The offered loads, as fractions of the closed-loop (wrk, 8 connections) throughput."""


def vegeta_path() -> str | None:
    """``vegeta`` on PATH, else the one ``make bench`` builds into the cache, else None."""
    found = shutil.which("vegeta")
    if found:
        return found
    cached = cache_root() / "bin" / "vegeta"
    return str(cached) if cached.is_file() else None


def targets_text(base: str, reqs: Sequence[tuple[str, str]], keys: dict[str, str], *, seed: int = 11) -> str:
    """vegeta's HTTP target format for ``reqs`` (``(path, tenant)``) with each tenant's bearer
    key, in a shuffled order (vegeta cycles through targets in file order). Pure."""
    order = list(reqs)
    random.Random(seed).shuffle(order)
    return "".join(f"GET {base}{path}\nAuthorization: Bearer {keys[tenant]}\n\n" for path, tenant in order)


@dataclass(frozen=True, slots=True)
class OpenLoopResult:
    """One vegeta run: what was offered, what was answered, and the latency percentiles."""

    rate: float          # offered requests/s
    requests: int
    throughput: float    # successful responses/s
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    success: float       # fraction of 2xx answers
    errors: tuple[str, ...]


def parse_report(text: str) -> OpenLoopResult:
    """``vegeta report -type json`` output → ``OpenLoopResult`` (latencies are in ns there).
    Raises ``BenchError`` for anything else."""
    try:
        d = orjson.loads(text)
        lat = d["latencies"]
        return OpenLoopResult(
            rate=float(d["rate"]), requests=int(d["requests"]), throughput=float(d["throughput"]),
            p50_ms=lat["50th"] / 1e6, p90_ms=lat["90th"] / 1e6, p99_ms=lat["99th"] / 1e6,
            max_ms=lat["max"] / 1e6, success=float(d["success"]),
            errors=tuple(str(e) for e in (d.get("errors") or ())),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BenchError(f"unreadable vegeta report ({exc}): {text[:300]!r}") from None


def run(targets: Path, *, rate: int, seconds: float, workdir: Path) -> OpenLoopResult:
    """``vegeta attack -rate <rate>/s -duration <seconds>s`` over ``targets``, then its JSON
    report. Blocks for about ``seconds``; raises ``BenchError`` when vegeta is missing or fails."""
    exe = vegeta_path()
    if exe is None:
        raise BenchError(f"vegeta not installed (make bench builds it: go install {VEGETA_MODULE})")
    out = workdir / f"vegeta-{targets.stem}-{rate}.bin"
    attack = subprocess.run(
        [exe, "attack", f"-targets={targets}", f"-rate={rate}/1s", f"-duration={max(1, round(seconds))}s",
         "-timeout=5s", "-keepalive=true", f"-output={out}"],
        capture_output=True, timeout=seconds + 60, check=False,
    )
    if attack.returncode != 0:
        raise BenchError(f"vegeta attack failed: {attack.stderr.decode(errors='replace')[-400:]}")
    report = subprocess.run([exe, "report", "-type=json", str(out)], capture_output=True, timeout=60,
                            check=False)
    out.unlink(missing_ok=True)
    if report.returncode != 0:
        raise BenchError(f"vegeta report failed: {report.stderr.decode(errors='replace')[-400:]}")
    return parse_report(report.stdout.decode(errors="replace"))
