"""Which offsets to commit after a batch. Pure.

Kafka's committed offset is the offset of the *next* record to read, so per partition it is
the highest processed offset + 1. Offsets are committed only after everything of the batch
is acknowledged (Redis, then the DLQ) — see ``pipeline``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eventstrata.ingest.batch import RawRecord


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    topic: str
    partition: int


def offsets_to_commit(records: Iterable[RawRecord]) -> dict[Partition, int]:
    """Next offset per partition (last processed + 1) for the processed ``records``."""
    best: dict[tuple[str, int], int] = {}
    for rec in records:
        tp = (rec.topic, rec.partition)
        off = rec.offset
        if off >= best.get(tp, -1):
            best[tp] = off
    return {Partition(t, p): off + 1 for (t, p), off in best.items()}


def merge_offsets(*parts: Mapping[Partition, int]) -> dict[Partition, int]:
    """Combine offset maps keeping the highest next-offset per partition."""
    out: dict[Partition, int] = {}
    for part in parts:
        for tp, off in part.items():
            if off > out.get(tp, -1):
                out[tp] = off
    return out


def consumer_lag(highwater: int | None, next_offset: int) -> int | None:
    """Messages behind the partition's end after committing ``next_offset`` (None if unknown)."""
    if highwater is None:
        return None
    return max(0, highwater - next_offset)
