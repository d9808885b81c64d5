"""Garbage-collector settings for the long-running processes (API, ingest worker).

CPython's cyclic collector is triggered by allocation counts. A page of 50 events or an ingest
batch of 5,000 records allocates tens of thousands of short-lived objects, so with the default
thresholds (700, 10, 10) the collector runs several times per request or batch, and every
full (generation-2) collection walks every object the process holds — the hundreds of
thousands that importing FastAPI, pydantic, aiokafka and redis-py created. Those pauses were
what turned a ~8 ms p50 page into a ~40 ms p99 (quick bench, user newest 50).

``tune_gc`` is called once, after start-up: ``gc.freeze()`` moves every object alive at that
moment into a permanent generation that collections skip, and a higher generation-0 threshold
makes young collections rarer (they stay cheap: only young objects are examined). Reference
counting still frees almost everything immediately; the collector only finds cycles.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
"""Allocations between young collections (default 700): a batch or a page is then a handful."""


def tune_gc() -> None:
    """Freeze the objects alive now and raise the young-generation threshold. Call once, after
    the process has imported and configured everything (never blocks, never raises)."""
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, g1, g2)
