"""``logs.QuietTransients``: aiokafka's transient ERRORs re-levelled, repeats held back."""

from __future__ import annotations

import logging

from eventstrata.logs import QuietTransients


def rec(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_transient_broker_errors_become_warnings_and_repeats_are_held_back() -> None:
    now = [0.0]
    f = QuietTransients(every_s=10.0, clock=lambda: now[0])
    first = rec("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(first) and first.levelno == logging.WARNING and first.levelname == "WARNING"
    passed = 0
    for i in range(900):  # a broker restart: ~900 attempts in 15 s
        now[0] = 0.01 * (i + 1)
        passed += f.filter(rec("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "x"))
    assert passed == 0
    now[0] = 10.5
    later = rec("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(later) and "900 more like this" in later.getMessage()
    assert later.getMessage().startswith("Unable connect to node with id 1: refused")


def test_coordinator_not_elected_yet_is_info_other_coordinator_failures_warnings() -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    f = QuietTransients(clock=lambda: 0.0)
    start = rec("aiokafka.consumer.group_coordinator", logging.ERROR, "Group Coordinator Request failed: %s",
                "[Error 15] GroupCoordinatorNotAvailableError")
    assert f.filter(start) and start.levelno == logging.INFO
    other = rec("aiokafka.consumer.group_coordinator", logging.ERROR, "Group Coordinator Request failed: %s",
                "[Error 7] RequestTimedOutError")
    assert f.filter(other) and other.levelno == logging.WARNING
    root.setLevel(before)  # (left at INFO only if an assertion above failed)


def test_other_records_pass_untouched() -> None:
    f = QuietTransients(clock=lambda: 0.0)
    mine = rec("eventstrata.ingest", logging.ERROR, "redis hot write failed after %d attempt(s)", 3)
    assert f.filter(mine) and mine.levelno == logging.ERROR
    other_error = rec("aiokafka", logging.ERROR, "Attempt to join group failed due to fatal error: %s", "x")
    assert f.filter(other_error) and other_error.levelno == logging.ERROR
    for p in range(5):  # the product's own records are never held back
        assert f.filter(rec("eventstrata.ingest", logging.WARNING, "%s[%d]: replaying from %d", "t", p, 0))
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    try:
        for _ in range(5):  # nor records below WARNING that the process logs
            assert f.filter(rec("aiokafka", logging.INFO, "Discovered coordinator %s", 1))
    finally:
        root.setLevel(before)


def test_a_record_re_levelled_below_the_process_log_level_is_dropped() -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        f = QuietTransients(clock=lambda: 0.0)
        start = rec("aiokafka.consumer.group_coordinator", logging.ERROR, "Group Coordinator Request failed: %s",
                    "[Error 15] GroupCoordinatorNotAvailableError")
        assert not f.filter(start)
    finally:
        root.setLevel(before)


def _record(msg: str, *args: object, extra: dict[str, object] | None = None,
            exc: bool = False) -> logging.LogRecord:
    import sys

    lg = logging.getLogger("eventstrata.test")
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return lg.makeRecord("eventstrata.test", logging.WARNING, "f.py", 1, msg, args, exc_info, extra=extra)


def test_json_lines_carry_time_level_logger_message_and_the_context() -> None:
    import json

    from eventstrata.logs import JsonFormatter

    line = JsonFormatter().format(_record("stored %d", 3, extra={"tenant": "acme", "partition": "events.raw[1]"}))
    d = json.loads(line)
    assert set(d) == {"time", "level", "logger", "message", "tenant", "partition"}
    assert (d["level"], d["logger"], d["message"], d["tenant"]) == ("WARNING", "eventstrata.test", "stored 3", "acme")
    assert d["time"].endswith("Z") and d["time"][10] == "T" and len(d["time"]) == 24
    failed = json.loads(JsonFormatter().format(_record("failed", extra={"obj": object()}, exc=True)))
    assert "ValueError: boom" in failed["exc"] and failed["obj"].startswith("<object")


def test_text_lines_for_a_terminal_and_the_choice_between_the_two() -> None:
    import io

    from eventstrata.logs import JsonFormatter, TextFormatter, configure_logging

    line = TextFormatter().format(_record("stored %d", 3, extra={"tenant": "acme"}))
    assert line.endswith("WARNING eventstrata.test: stored 3 tenant=acme")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for stream, kind in ((io.StringIO(), JsonFormatter), (Tty(), TextFormatter)):
            configure_logging("INFO", stream=stream)
            assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, kind)
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
