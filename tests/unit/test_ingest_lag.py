"""``ingest.lag.partition_lags``: the consumer group's lag per partition (pure)."""

from __future__ import annotations

from eventstrata.ingest.lag import PartitionLag, partition_lags


def test_lag_is_the_records_between_the_committed_offset_and_the_end() -> None:
    lags = partition_lags({0: 0, 1: 0}, {1: 50, 0: 100}, {0: 60, 1: 50})
    assert [(x.partition, x.committed, x.lag) for x in lags] == [(0, 60, 40), (1, 50, 0)]


def test_a_partition_without_a_commit_lags_by_everything_still_in_it() -> None:
    lags = partition_lags({0: 30}, {0: 100}, {})
    assert lags == [PartitionLag(0, None, 30, 100)] and lags[0].lag == 70
    assert partition_lags({0: 0}, {0: 5}, {0: -1})[0].committed is None


def test_a_commit_before_the_first_retained_offset_counts_from_the_first() -> None:
    # retention deleted records the group never read: they are gone, not lag
    assert partition_lags({0: 80}, {0: 100}, {0: 10})[0].lag == 20
    assert partition_lags({0: 0}, {0: 100}, {0: 120})[0].lag == 0
