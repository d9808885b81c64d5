"""Prometheus metrics of the ingest worker (prometheus-client, default registry).

Served by ``worker`` on ``EVENTSTRATA_METRICS_PORT`` when it is not 0.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("eventstrata_ingest_consumed_total", "Messages consumed from the raw topic")
STORED = Counter("eventstrata_ingest_stored_total", "Events newly stored in the hot tier")
DUPLICATES = Counter(
    "eventstrata_ingest_duplicates_total", "Events whose id was already stored (idempotent re-delivery)"
)
DEAD_LETTERED = Counter(
    "eventstrata_ingest_dead_lettered_total", "Messages sent to the DLQ topic", ["code"]
)
BATCH_SECONDS = Histogram(
    "eventstrata_ingest_batch_seconds",
    "Wall time of one batch: normalize, hot write, DLQ, commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMIT_SECONDS = Histogram(
    "eventstrata_ingest_commit_seconds",
    "Wall time of one offset commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REDIS_ROUND_TRIPS = Counter("eventstrata_ingest_redis_round_trips_total", "Redis round trips of hot writes")
REDIS_RETRIES = Counter(
    "eventstrata_ingest_redis_retries_total", "Hot writes retried after a transient Redis error"
)
REPLAYS = Counter(
    "eventstrata_ingest_replays_total",
    "Partitions sought back because Redis had lost acknowledged writes (healed by replay)",
)
DLQ_RETRIES = Counter("eventstrata_ingest_dlq_retries_total", "DLQ produce attempts retried")
COMMIT_FAILURES = Counter(
    "eventstrata_ingest_commit_failures_total", "Offset commits that failed (batch will be re-delivered)"
)
CONSUMER_LAG = Gauge(
    "eventstrata_ingest_consumer_lag", "Messages behind the partition end", ["topic", "partition"]
)
