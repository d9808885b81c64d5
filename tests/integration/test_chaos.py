"""The chaos suite's short version (``chaos_support``; ``make chaos`` runs the long one): every
fault in sequence under a steady load, against the whole stack as separate processes. No
acknowledged event may be missing or stored twice, no dead letter may appear, no request may be
answered 500, the live tail never misses an event, and across the faults that lose no
acknowledged write (workers, rebalance, Redis killed or restarted with its data, the broker,
the archiver) it never repeats one either.

Across a rollback of Redis or a wipe the tail repeats events (docs/OPERATIONS.md, "Chaos
suite"): the replay that heals them stores the lost events again under new positions, above
every position given before, so a subscriber that received them before receives them again.
Those rows' repeats are reported, not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos_support import SHORT, TAIL_REPEATS, run, table

pytestmark = pytest.mark.integration


async def test_every_fault_keeps_every_event_exactly_once_and_never_answers_500(tmp_path: Path) -> None:
    rows = await run(tmp_path, SHORT)
    print("\n" + table(rows))
    assert len(rows) == 9
    twice = 0
    for r in rows:
        assert r.produced > 0 and r.missing == 0 and r.duplicates == 0 and r.dead_letters == 0, table(rows)
        assert r.http_500 == 0, table(rows)
        assert r.tail_missing == 0, table(rows)  # never a gap, whatever Redis lost
        if r.fault not in TAIL_REPEATS:
            assert r.tail_twice == twice, table(rows)  # no new repeat
        twice = r.tail_twice
