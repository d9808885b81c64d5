"""Rebalance listener: before partitions are revoked, every in-flight batch finishes — written,
acknowledged, then its offsets committed, in order — so the partitions' next owner starts
exactly after them. On assignment, each partition resumes from the lower of its committed
offset and the offsets Redis recorded with the data (``recovery``)."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener

from eventstrata.ingest.pipeline import IngestPipeline

log = logging.getLogger(__name__)


class DrainOnRevoke:
    """``ConsumerRebalanceListener`` (registered as a virtual subclass, aiokafka checks
    ``isinstance``). aiokafka awaits these callbacks inside the group rebalance, before
    leaving the old assignment; ``on_partitions_revoked`` blocks until every batch the
    pipeline has in flight is done (write, DLQ, then commit) or failed. It never raises."""

    def __init__(self, pipeline: IngestPipeline) -> None:
        self._pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._pipeline.drain()
        try:  # record the final offsets for idle tenants, so the next owner replays little
            await self._pipeline.refresh_offsets()
        except Exception as exc:
            log.warning("recording offsets before revocation failed: %r", exc)
        self._pipeline.forget(revoked)
        log.info("partitions revoked after draining in-flight batches: %s", _names(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", _names(assigned))
        try:
            await self._pipeline.heal_assigned(assigned)
        except Exception as exc:
            # Without Redis' record the committed offsets are used as they are; a write that
            # later reads back a lower record still rewinds (see recovery).
            log.error("reading the offsets recorded in Redis failed: %r; resuming from the "
                      "committed offsets", exc)


ConsumerRebalanceListener.register(DrainOnRevoke)


def _names(tps: Any) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in tps)) or "none"
