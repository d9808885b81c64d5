"""Pure planning of the archiver: due windows, watermark, removal grace, compaction."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstrata.archive.plan import (
    Advance,
    dates_to_compact,
    due_windows,
    expired_dates,
    new_watermark,
    prune_advances,
    removable_below,
    restamp_pending,
    target_watermark,
)

H = 3_600_000
D = 24 * H


def test_target_is_now_minus_retention_floored_to_window() -> None:
    assert target_watermark(10 * D + 5 * H + 17, D, H) == 9 * D + 5 * H
    assert target_watermark(10 * D, D, H) == 9 * D
    assert target_watermark(5, D, H) == 0  # nothing is old enough yet


def test_watermark_never_decreases() -> None:
    assert new_watermark(20 * D, 10 * D, D, H) == 20 * D
    assert new_watermark(0, 10 * D, D, H) == 9 * D


def test_due_windows_are_entirely_below_the_new_watermark() -> None:
    now = 3 * D + 30 * 60_000  # W = 2 D
    wins = [0, H, 2 * D - H, 2 * D, 2 * D + H, 3 * D]
    assert due_windows(wins, now, D, H) == [0, H, 2 * D - H]


def test_late_window_below_current_watermark_is_due() -> None:
    # W is already 5 D; a window at 1 D that got a late event is due although W does not move
    assert due_windows([D, 5 * D], 5 * D + 10, 7 * D, H, current_watermark_ms=5 * D) == [D]


@given(st.lists(st.integers(0, 400), max_size=40), st.integers(0, 500 * H), st.integers(1, 48))
def test_due_windows_property(slots: list[int], now: int, retention_h: int) -> None:
    wins = [s * H for s in slots]
    due = due_windows(wins, now, retention_h * H, H)
    w = new_watermark(0, now, retention_h * H, H)
    assert due == sorted(set(due))
    for x in set(wins):
        assert (x in due) == (x + H <= w)
        # every event of a due window is below W; every event of a kept window may be >= W
        assert (x in due) == (x + H - 1 < w)


def test_removal_waits_for_the_grace() -> None:
    adv = (Advance(5 * H, 1000), Advance(6 * H, 2000))
    assert removable_below(adv, 1500, 1000) == 0
    assert removable_below(adv, 2000, 1000) == 5 * H
    assert removable_below(adv, 3000, 1000) == 6 * H
    assert removable_below((), 10**12, 0) == 0


def test_prune_keeps_newest_settled_and_pending() -> None:
    adv = (Advance(H, 0), Advance(2 * H, 10), Advance(3 * H, 100), Advance(4 * H, 200))
    pruned = prune_advances(adv, 150, 100)
    assert pruned == (Advance(2 * H, 10), Advance(3 * H, 100), Advance(4 * H, 200))
    assert removable_below(pruned, 150, 100) == removable_below(adv, 150, 100)
    assert prune_advances(adv, 10_000, 100) == (Advance(4 * H, 200),)


def test_restamp_only_delays() -> None:
    # W = 2 H was published at 900 but the mirror still shows H: readers see 2 H only from now
    adv = (Advance(H, 0), Advance(2 * H, 900))
    out = restamp_pending(adv, 1000, H)
    assert out == (Advance(H, 0), Advance(2 * H, 1000))
    assert removable_below(out, 1400, 500) == H
    # however old the unseen advance is (the repair ran long after the crash)
    assert restamp_pending((Advance(2 * H, 5),), 10**9, H) == (Advance(2 * H, 10**9),)
    assert restamp_pending(adv, 1000, 2 * H) == adv


def test_dates_to_compact() -> None:
    assert dates_to_compact({"2026-01-02": 9, "2026-01-01": 10, "2026-01-03": 8}, 8) == ["2026-01-01", "2026-01-02"]


def test_expired_dates_are_whole_days_past_the_retention() -> None:
    day = 86_400_000
    jan3 = 1_767_398_400_000  # 2026-01-03T00:00:00Z
    dates = ["2026-01-01", "2026-01-02", "2026-01-02", "2026-01-03"]
    assert expired_dates(dates, jan3 + day, 0) == []  # 0 keeps everything
    # at Jan 3 + 1 day, 1 day of retention: Jan 1 ended 2 days ago, Jan 2 ended exactly 1 day ago
    assert expired_dates(dates, jan3 + day, day) == ["2026-01-01", "2026-01-02"]
    assert expired_dates(dates, jan3 + day - 1, day) == ["2026-01-01"]  # Jan 2 not over long enough
    assert expired_dates(dates, jan3, 30 * day) == []
