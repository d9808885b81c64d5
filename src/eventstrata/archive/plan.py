"""Pure planning of an archive pass: which hot windows are due, the new watermark, when an
archived window may leave Redis, and which per-date file sets need compaction.

Nothing here does I/O; every function that depends on time takes it as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eventstrata.timeutil import DAY_MS, day_of_ms, window_start


def target_watermark(now_ms: int, retention_ms: int, window_ms: int) -> int:
    """The watermark a pass at ``now_ms`` aims for: the start of the oldest window that stays
    hot, i.e. ``now - retention`` floored to the window size (never negative)."""
    return max(0, window_start(max(0, now_ms - retention_ms), window_ms))


def new_watermark(current_ms: int, now_ms: int, retention_ms: int, window_ms: int) -> int:
    """The watermark after a pass: it only ever increases."""
    return max(current_ms, target_watermark(now_ms, retention_ms, window_ms))


def due_windows(windows: Iterable[int], now_ms: int, retention_ms: int, window_ms: int,
                current_watermark_ms: int = 0) -> list[int]:
    """Window starts (ascending, de-duplicated) that a pass at ``now_ms`` must archive: every hot
    window lying entirely before the new watermark. That includes windows older than the
    current watermark that received late events after they were archived."""
    w = new_watermark(current_watermark_ms, now_ms, retention_ms, window_ms)
    return sorted({x for x in windows if x + window_ms <= w})


def expired_dates(dates: Iterable[str], now_ms: int, retention_ms: int) -> list[str]:
    """Archived dates (``YYYY-MM-DD``, UTC) that archive retention deletes at ``now_ms``: those
    whose whole day ended at least ``retention_ms`` ago (sorted). ``retention_ms`` 0 keeps
    everything. A day is deleted whole or not at all, so a query never sees a day cut short.
    (A day ends by ``now - retention`` exactly when it starts by a day before that, and ISO
    dates sort like the days.)"""
    if retention_ms <= 0:
        return []
    last = day_of_ms(now_ms - retention_ms - DAY_MS)
    return sorted({d for d in dates if d <= last})


@dataclass(frozen=True, slots=True)
class Advance:
    """The watermark became ``watermark_ms`` (as seen by readers in Redis) at wall time ``at_ms``."""

    watermark_ms: int
    at_ms: int


def removable_below(advances: Sequence[Advance], wall_ms: int, grace_ms: int) -> int:
    """Hot events with ``ts`` below the returned bound may be removed from Redis at ``wall_ms``.

    A query reads W once and then reads Redis for ``ts >= W``. An event below a watermark that
    readers have been able to see for at least ``grace_ms`` is no longer needed by any query
    that started since (queries must finish within the grace). Returns 0 when nothing may go.
    """
    best = 0
    for a in advances:
        if a.at_ms + grace_ms <= wall_ms:
            best = max(best, a.watermark_ms)
    return best


def prune_advances(advances: Sequence[Advance], wall_ms: int, grace_ms: int) -> tuple[Advance, ...]:
    """Keep the newest advance already past its grace (it bounds removal) and every advance
    still inside its grace; older ones carry no information. Sorted by watermark."""
    ordered = sorted(advances, key=lambda a: (a.watermark_ms, a.at_ms))
    settled = [a for a in ordered if a.at_ms + grace_ms <= wall_ms]
    pending = [a for a in ordered if a.at_ms + grace_ms > wall_ms]
    keep: list[Advance] = []
    if settled:
        keep.append(max(settled, key=lambda a: a.watermark_ms))
    top = keep[0].watermark_ms if keep else -1
    keep.extend(a for a in pending if a.watermark_ms > top)
    return tuple(sorted(keep, key=lambda a: (a.watermark_ms, a.at_ms)))


def restamp_pending(advances: Sequence[Advance], wall_ms: int, visible_ms: int) -> tuple[Advance, ...]:
    """Used when a previous run died between publishing and mirroring: readers could only see
    ``visible_ms`` (the Redis mirror) so far, so every advance above it is re-stamped to
    ``wall_ms`` (the moment the repair raises the mirror). This only ever delays removal."""
    return tuple(a if a.watermark_ms <= visible_ms else Advance(a.watermark_ms, max(a.at_ms, wall_ms))
                 for a in advances)


def dates_to_compact(file_counts: dict[str, int], max_files: int) -> list[str]:
    """Dates whose number of listed files exceeds ``max_files`` (ascending)."""
    return sorted(d for d, n in file_counts.items() if n > max_files)
