"""Log levels that tell an operator what needs action, and no floods. Pure apart from the
clock it is given.

aiokafka logs every failed connection attempt to a broker, every failed metadata refresh and
every failed coordinator lookup as ERROR: during a broker restart an ingest worker wrote ~900
ERROR lines in 15 s, and every start logged a harmless ``GroupCoordinatorNotAvailableError``
(the coordinator is elected just after a group's first request). ``QuietTransients`` is a
handler filter that

- gives those known transient messages the level they deserve (WARNING for a broker that cannot
  be reached, INFO for the coordinator not being elected yet), and
- lets one of its records per message template and logger through every ``every_s`` seconds,
  adding to the next one how many were held back.

Records of other loggers pass untouched: the product's own warnings are already bounded (a
retry with backoff logs once per attempt) and each names what it is about.

The worker keeps counting what matters in its metrics (retries, lag); a broker that stays
unreachable still shows as a WARNING every ``every_s`` seconds and as growing lag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

TRANSIENT_WARNINGS = frozenset({
    'Unable connect to "%s:%s": %s',
    "Unable connect to node with id %s: %s",
    "Unable to update metadata from %s",
    "Failed fetch messages from %s: %s",
    "Failed fetch offsets from %s: %s",
    "Heartbeat send request failed: %s. Will retry.",
})
"""aiokafka message templates (``record.msg``) that mean "the broker is not reachable right now"."""

COORDINATOR_NOT_READY = "Group Coordinator Request failed: %s"
"""aiokafka's template for a coordinator lookup that failed; INFO when the coordinator simply is
not elected yet (``GroupCoordinatorNotAvailableError``), WARNING otherwise."""


class QuietTransients(logging.Filter):
    """See the module docstring. ``prefix``: the loggers handled (``aiokafka`` and its
    children): re-levelled, and held back when a record at WARNING or above repeats a template
    within ``every_s``."""

    def __init__(self, *, every_s: float = 10.0, prefix: str = "aiokafka",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._every_s = every_s
        self._prefix = prefix
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == self._prefix or record.name.startswith(self._prefix + ".")):
            return True
        self._relevel(record)
        if record.levelno < logging.WARNING:  # re-levelled below what the process logs: dropped
            return record.levelno >= logging.getLogger().getEffectiveLevel()
        key = (record.name, record.msg if isinstance(record.msg, str) else str(record.msg))
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held and last is not None:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f} s)"
        return True

    @staticmethod
    def _relevel(record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR:
            return
        if record.msg in TRANSIENT_WARNINGS:
            _set_level(record, logging.WARNING)
        elif record.msg == COORDINATOR_NOT_READY:
            text = record.getMessage()
            _set_level(record, logging.INFO if "GroupCoordinatorNotAvailable" in text else logging.WARNING)


def _set_level(record: logging.LogRecord, level: int) -> None:
    record.levelno = level
    record.levelname = logging.getLevelName(level)
