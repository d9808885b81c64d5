"""Dead letters: the DLQ record of a rejected message, and the DLQ limit. Pure (no I/O).

A dead letter is the original message — value bytes, key and headers unchanged — plus
headers naming why and where it came from:

==========================  ===================================================
``es-error-code``           ``InvalidEvent.code`` (e.g. ``malformed_json``)
``es-error-message``        human-readable reason (UTF-8, at most 1 KiB)
``es-source-topic``         topic the message was consumed from
``es-source-partition``     its partition (decimal)
``es-source-offset``        its offset (decimal)
``es-dlq-time``             when it was dead-lettered (epoch ms, decimal)
==========================  ===================================================

``DlqLimit`` decides when a worker must stop instead of dead-lettering: too many invalid
messages in a row, or too high an invalid share over the recent messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from eventstrata.formats.normalize import BODY_TENANT, TENANT_HEADER
from eventstrata.ingest.batch import Headers, RawRecord
from eventstrata.model import TENANT_RE, InvalidEvent

H_CODE = "es-error-code"
H_MESSAGE = "es-error-message"
H_TOPIC = "es-source-topic"
H_PARTITION = "es-source-partition"
H_OFFSET = "es-source-offset"
H_TIME = "es-dlq-time"
DLQ_HEADERS: tuple[str, ...] = (H_CODE, H_MESSAGE, H_TOPIC, H_PARTITION, H_OFFSET, H_TIME)
MAX_MESSAGE_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message to produce to the DLQ topic."""

    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def dead_letter(record: RawRecord, error: InvalidEvent, *, now_ms: int) -> DeadLetter:
    """The DLQ message for ``record``: original bytes, key and headers (any earlier ``es-*``
    DLQ headers dropped, so a replayed-and-rejected-again message carries one set) followed by
    the DLQ headers."""
    message = error.message.encode("utf-8", "replace")[:MAX_MESSAGE_BYTES]
    kept = tuple((k, v) for k, v in record.headers if k not in DLQ_HEADERS)
    headers = (
        *kept,
        (H_CODE, error.code.encode()),
        (H_MESSAGE, message),
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
        (H_TIME, str(now_ms).encode()),
    )
    return DeadLetter(record.value if record.value is not None else b"", record.key, headers)


def original_headers(headers: Headers) -> tuple[tuple[str, bytes], ...]:
    """A dead letter's headers without the DLQ's own (what `dlq replay` re-publishes)."""
    return tuple((k, v) for k, v in headers if k not in DLQ_HEADERS)


_BODY_TENANT_FIELDS = tuple(dict.fromkeys(BODY_TENANT.values()))


def letter_tenant(value: bytes, headers: Headers) -> str | None:
    """The tenant a rejected message named, as ``normalize`` reads it: the ``es-tenant``
    header, else the first body tenant field of any format (``normalize.BODY_TENANT``) of a
    JSON object; None when neither holds a valid tenant id (e.g. malformed JSON without the
    header: such a dead letter belongs to no tenant). Pure."""
    named = header(headers, TENANT_HEADER)
    if named is None:
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if type(obj) is not dict:
            return None
        found = next((obj[f] for f in _BODY_TENANT_FIELDS if f in obj), None)
        if type(found) is not str:
            return None
        text = found
    else:
        text = named.decode("utf-8", "replace")
    return text if TENANT_RE.fullmatch(text) else None


def header(headers: Headers, name: str) -> bytes | None:
    """The last value of header ``name``, or None."""
    found: bytes | None = None
    for k, v in headers:
        if k == name:
            found = v
    return found


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the DLQ limit stopped the worker."""

    reason: str  # "consecutive" | "ratio"
    invalid: int
    total: int

    def describe(self, max_ratio: float, max_consecutive: int) -> str:
        if self.reason == "consecutive":
            return f"{self.invalid} invalid messages in a row (limit {max_consecutive})"
        return (
            f"{self.invalid} of the last {self.total} messages invalid "
            f"({self.invalid / self.total:.0%} > limit {max_ratio:.0%})"
        )


class DlqLimit:
    """Stops a worker that would dead-letter a bad deploy's whole output. No I/O.

    Two rules: ``max_consecutive`` invalid messages in a row, or an invalid share above
    ``max_ratio`` over the last ``window`` messages (judged only once at least ``min_count``
    messages seen within ``horizon_ms``, so a few bad messages at start never trip it).
    Feed it in consumption order with ``should_stop`` (one call per pair from
    ``batch.validity_runs``).
    """

    def __init__(
        self,
        max_ratio: float,
        max_consecutive: int,
        *,
        window: int = 10_000,
        min_count: int = 1_000,
        horizon_ms: int = 300_000,
    ) -> None:
        self.max_ratio = max_ratio
        self.max_consecutive = max_consecutive
        self.window = window
        self.min_count = min_count
        self.horizon_ms = horizon_ms
        self.consecutive = 0
        self._segments: deque[tuple[int, int, int]] = deque()  # (time, invalid, valid)
        self._invalid = 0
        self._total = 0

    def should_stop(self, now_ms: int, invalid: int, valid: int) -> Trip | None:
        """Record ``invalid`` invalid messages followed by ``valid`` valid ones; return a
        ``Trip`` if the worker must stop, else None."""
        self.consecutive += invalid
        if self.consecutive >= self.max_consecutive:
            return Trip("consecutive", self.consecutive, self.consecutive)
        if valid:
            self.consecutive = 0
        self._segments.append((now_ms, invalid, valid))
        self._invalid += invalid
        self._total += invalid + valid
        while self._segments and (
            self._segments[0][0] < now_ms - self.horizon_ms
            or self._total - (self._segments[0][1] + self._segments[0][2]) >= self.window
        ):
            _, inv, val = self._segments.popleft()
            self._invalid -= inv
            self._total -= inv + val
        if self._total >= self.min_count and self._invalid > self.max_ratio * self._total:
            return Trip("ratio", self._invalid, self._total)
        return None

    def check_runs(self, now_ms: int, runs: Sequence[tuple[int, int]]) -> Trip | None:
        """``should_stop`` over each run pair in order; the first trip, or None."""
        for inv, val in runs:
            trip = self.should_stop(now_ms, inv, val)
            if trip is not None:
                return trip
        return None
