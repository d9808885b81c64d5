"""Normalizing one consumed batch. Pure: no I/O, ``now_ms`` is an argument.

A batch is the list of consumer records returned by one ``getmany``; each record becomes
either an ``Event`` (to the hot tier) or an ``InvalidEvent`` (to the DLQ), in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from eventstrata.model import Event, InvalidEvent

Headers = Sequence[tuple[str, bytes]]


class RawRecord(Protocol):
    """The fields of a consumer record the ingest path reads (aiokafka ``ConsumerRecord``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


class Normalizer(Protocol):
    """``eventstrata.formats.normalize.normalize``: never raises for any input bytes."""

    def __call__(
        self, value: bytes, headers: Headers, *, now_ms: int, max_bytes: int, max_future_skew_ms: int
    ) -> Event | InvalidEvent: ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that goes to the DLQ, with the reason."""

    record: RawRecord
    error: InvalidEvent


@dataclass(frozen=True, slots=True)
class NormalizedBatch:
    """The outcome of normalizing records: good events and rejected records, each in order,
    plus the validity runs (see ``validity_runs``)."""

    events: tuple[Event, ...]
    rejected: tuple[Rejected, ...]
    runs: tuple[tuple[int, int], ...]


def normalize_records(
    records: Sequence[RawRecord],
    normalize: Normalizer,
    *,
    now_ms: int,
    max_bytes: int,
    max_future_skew_ms: int,
) -> NormalizedBatch:
    """Normalize ``records`` in order. A record without a value (a tombstone) is normalized as
    empty bytes (→ ``malformed_json``). Never raises for bad input: the normalizer turns it
    into an ``InvalidEvent``."""
    events: list[Event] = []
    rejected: list[Rejected] = []
    valid_flags: list[bool] = []
    for rec in records:
        value = rec.value if rec.value is not None else b""
        result = normalize(
            value, rec.headers, now_ms=now_ms, max_bytes=max_bytes, max_future_skew_ms=max_future_skew_ms
        )
        if isinstance(result, Event):
            events.append(result)
            valid_flags.append(True)
        else:
            rejected.append(Rejected(rec, result))
            valid_flags.append(False)
    return NormalizedBatch(tuple(events), tuple(rejected), validity_runs(valid_flags))


def merge(parts: Sequence[NormalizedBatch]) -> NormalizedBatch:
    """Concatenate normalized parts of one batch (in order), joining runs across the seams."""
    events: list[Event] = []
    rejected: list[Rejected] = []
    runs: list[tuple[int, int]] = []
    for p in parts:
        events.extend(p.events)
        rejected.extend(p.rejected)
        for inv, val in p.runs:
            if runs and runs[-1][1] == 0:
                runs[-1] = (runs[-1][0] + inv, val)
            else:
                runs.append((inv, val))
    return NormalizedBatch(tuple(events), tuple(rejected), tuple(runs))


def validity_runs(valid: Sequence[bool]) -> tuple[tuple[int, int], ...]:
    """Split an ordered validity sequence into ``(invalid_run, following_valid_run)`` pairs.

    ``[F, F, T, T, T, F, T]`` → ``((2, 3), (1, 1))``; a sequence starting valid yields a first
    pair ``(0, n)``. The pairs feed ``DlqLimit.should_stop`` in consumption order.
    """
    runs: list[tuple[int, int]] = []
    inv = 0
    val = 0
    for ok in valid:
        if ok:
            val += 1
        else:
            if val:
                runs.append((inv, val))
                inv, val = 0, 0
            inv += 1
    if inv or val:
        runs.append((inv, val))
    return tuple(runs)


def group_by_tenant(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events by tenant, each list in input order (the order writes are issued in)."""
    out: dict[str, list[Event]] = {}
    for ev in events:
        out.setdefault(ev.tenant, []).append(ev)
    return out
