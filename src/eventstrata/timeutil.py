"""Time parsing and formatting. Pure; every function that needs "now" takes it as an argument.

All internal times are epoch milliseconds (UTC).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_EPOCH_MS = re.compile(r"^-?\d{1,16}$")
_SPACE_T = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d)")

MIN_MS = 0  # 1970-01-01
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_time_ms(value: str | int | float) -> int:
    """Parse an ISO 8601 timestamp (offset optional; none = UTC), a date ``YYYY-MM-DD``, or
    epoch milliseconds (int or digit string) into epoch ms.

    Raises ``ValueError`` with a human-readable message for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("expected a timestamp, got a boolean")
    if isinstance(value, int):
        return _check_range(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return _check_range(int(value))
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    if _EPOCH_MS.match(text):
        return _check_range(int(text))
    text = _SPACE_T.sub(r"\1T\2", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp or epoch milliseconds: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _check_range(_dt_to_ms(dt))


def _dt_to_ms(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _check_range(ms: int) -> int:
    if ms < MIN_MS or ms > MAX_MS:
        raise ValueError("timestamp out of range (1970-01-01 .. 9999-12-31)")
    return ms


def format_ms(ms: int) -> str:
    """Epoch ms → ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC)."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_ms_seconds(ms: int) -> str:
    """Epoch ms → ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


DAY_MS = 86_400_000
"""One UTC day."""


def day_of_ms(ms: int) -> str:
    """Epoch ms → ``YYYY-MM-DD`` (UTC): the archive partition of that instant."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%d")


def day_start_ms(ms: int) -> int:
    return ms - ms % DAY_MS


def window_start(ms: int, window_ms: int) -> int:
    """The start of the hot-tier window holding event time ``ms``."""
    return ms - ms % window_ms


def windows_between(since_ms: int, until_ms: int, window_ms: int) -> list[int]:
    """Window starts overlapping ``[since_ms, until_ms)``, ascending. Empty if the range is."""
    if until_ms <= since_ms:
        return []
    first = window_start(since_ms, window_ms)
    return list(range(first, until_ms, window_ms))
