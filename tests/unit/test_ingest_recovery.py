"""The pure rules of healing a Redis that lost acknowledged writes (``ingest.recovery``)."""

from __future__ import annotations

import pytest

from eventstrata.ingest.commit import Partition
from eventstrata.ingest.recovery import offset_field, parse_offset_field, resume_offset, rolled_back


def test_offset_field_round_trips_and_rejects_others() -> None:
    p = Partition("events.raw-2", 11)
    assert offset_field(p) == "events.raw-2|11"
    assert parse_offset_field(offset_field(p)) == p
    assert parse_offset_field(b"events.raw|0") == Partition("events.raw", 0)
    for bad in ("events.raw", "|3", "events.raw|x", "events.raw|"):
        with pytest.raises(ValueError):
            parse_offset_field(bad)


def test_resume_from_the_lower_of_committed_and_the_lowest_record() -> None:
    assert resume_offset(1000, [1000, 1200]) is None  # Redis holds everything committed
    assert resume_offset(1000, [1200, 700, None, 900]) == 700  # one tenant fell back to 700
    assert resume_offset(1000, []) is None  # nothing recorded: the committed offset stands
    assert resume_offset(1000, [None]) is None
    # a new group (nothing committed) starts at the earliest offset, below any record
    assert resume_offset(None, [5]) is None


def test_rolled_back_only_below_what_this_worker_saw_acknowledged() -> None:
    f0, f1 = offset_field(Partition("t", 0)), offset_field(Partition("t", 1))
    expected = {("a", f0): 500, ("b", f0): 500, ("a", f1): 80}
    started = {Partition("t", 0): 100, Partition("t", 1): 40}
    # equal or higher: nothing lost (higher: a later write landed first)
    assert rolled_back(expected, {("a", f0): 500, ("b", f0): 650, ("a", f1): 80}, started) == {}
    # below: resume there; the lowest per partition wins
    assert rolled_back(expected, {("a", f0): 300, ("b", f0): 200}, started) == {Partition("t", 0): 200}
    # the record is gone: resume where this worker began reading the partition
    assert rolled_back(expected, {("a", f1): None}, started) == {Partition("t", 1): 40}
    assert rolled_back(expected, {("a", f1): None}, {}) == {Partition("t", 1): 0}
    # pairs this worker never recorded (another tenant, not yet acknowledged) prove nothing
    assert rolled_back(expected, {("c", f0): None, ("c", f1): 3}, started) == {}
