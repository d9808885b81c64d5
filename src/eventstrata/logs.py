"""How every eventstrata process logs: one format, levels that tell an operator what needs
action, and no floods. The formatters are pure; ``configure_logging`` installs them.

**Format.** ``configure_logging`` (called once at start by the API, the ingest worker and the
archiver) sends every record, the libraries' included, through one handler on stderr:

- not attached to a terminal (a container, systemd, a file, a pipe): one JSON object per line,
  ``{"time", "level", "logger", "message", ...context, "exc"?}``; ``time`` is ISO 8601 UTC with
  milliseconds and ``Z``; the context is every attribute passed with ``extra=`` (the API's
  ``request_id``, ``tenant``, ``status``, ...; the ingest worker's ``partition``);
- attached to a terminal: one plain line, ``HH:MM:SS.mmm LEVEL logger: message key=value ...``.

**Levels.** aiokafka logs every failed connection attempt to a broker, every failed metadata
refresh and every failed coordinator lookup as ERROR: during a broker restart an ingest worker
would write hundreds of ERROR lines in seconds, and every start would log a harmless
``GroupCoordinatorNotAvailableError`` (the coordinator is elected just after a group's first
request). ``QuietTransients`` is a handler filter that

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

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson

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


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                           "taskName", "color_message"}
"""Attributes every ``LogRecord`` has (and uvicorn's ``color_message``, the message again with
terminal colour codes): anything else on a record came with ``extra=``."""


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The context a record carries: the attributes passed with ``extra=`` (in their order)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _utc(record: logging.LogRecord, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(record.created)) + f".{int(record.msecs):03d}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the record's
    context (``context_of``; values JSON cannot hold are written as their ``str``), then ``exc``
    (the formatted traceback) when there is one. Never raises."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _utc(record, "%Y-%m-%dT%H:%M:%S") + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k, v in context_of(record).items():
            out.setdefault(k, v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(out, default=str).decode()
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the slow, lenient path
            return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One plain line for a person at a terminal: ``HH:MM:SS.mmm LEVEL logger: message k=v ...``
    (UTC), the traceback below it when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = "".join(f" {k}={v}" for k, v in context_of(record).items())
        line = f"{_utc(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: {record.getMessage()}{ctx}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, *, stream: TextIO | None = None, json_lines: bool | None = None) -> None:
    """Route every logger through one handler on ``stream`` (default stderr) at ``level``: JSON
    lines, or plain text when ``json_lines`` is False (default: JSON unless ``stream`` is a
    terminal), with ``QuietTransients``. Replaces the root logger's handlers, and those that
    uvicorn installs on its own loggers; call once at start, before serving. Never blocks."""
    out = sys.stderr if stream is None else stream
    if json_lines is None:
        json_lines = not out.isatty()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(QuietTransients())  # aiokafka's transient ERRORs: re-levelled, rate-limited
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
