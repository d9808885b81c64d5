"""Pure statistics helpers of the benchmark (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation between ranks
    (numpy's default "linear" method). ``values`` need not be sorted.

    Raises ``ValueError`` on an empty sequence or ``q`` outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile out of range: {q}")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    frac = pos - lo
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * frac)


@dataclass(frozen=True, slots=True)
class Summary:
    """Distribution of one measured quantity."""

    count: int
    p50: float
    p99: float
    mean: float
    minimum: float
    maximum: float


def summarize(values: Iterable[float]) -> Summary:
    """p50/p99/mean/min/max of ``values``. Raises ``ValueError`` when empty."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("summary of no samples")
    return Summary(
        count=len(data),
        p50=percentile(data, 50.0),
        p99=percentile(data, 99.0),
        mean=sum(data) / len(data),
        minimum=min(data),
        maximum=max(data),
    )


def median(values: Sequence[float]) -> float:
    """Median of the repeats of one scenario (what the table reports for rates)."""
    return percentile(values, 50.0)


def rate(count: int, seconds: float) -> float:
    """``count / seconds``; 0.0 when no time elapsed."""
    return count / seconds if seconds > 0 else 0.0


def cpu_percent(cpu_seconds: float, wall_seconds: float) -> float:
    """CPU use in percent of one core over a wall-clock interval (100 = one full core)."""
    return 100.0 * cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0


def zipf_weights(n: int, s: float) -> list[float]:
    """Normalized Zipf weights ``1/k^s`` for ranks 1..n (long-tailed activity)."""
    if n <= 0:
        raise ValueError("n must be positive")
    raw = [1.0 / (k**s) for k in range(1, n + 1)]
    total = sum(raw)
    return [w / total for w in raw]
