"""How far the ingest workers' consumer group is behind the raw topic: its lag per partition.

``partition_lags`` is pure; ``read_lag`` is the Kafka edge (one admin client for the topic's
partitions and the group's committed offsets, one consumer without a group for the partitions'
first and end offsets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from eventstrata.ingest.commit import consumer_lag
from eventstrata.ingest.dlq_topic import partitions_of
from eventstrata.kafkaconn import PLAINTEXT, KafkaSecurity


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of the raw topic: the group's committed offset (None when the group has
    committed none), the partition's first and end offsets, and the records between the
    committed offset (or the first one) and the end: those the workers have not yet stored."""

    partition: int
    committed: int | None
    first: int
    end: int

    @property
    def lag(self) -> int:
        start = self.first if self.committed is None else max(self.committed, self.first)
        return consumer_lag(self.end, start) or 0


def partition_lags(firsts: Mapping[int, int], ends: Mapping[int, int],
                   committed: Mapping[int, int]) -> list[PartitionLag]:
    """The lag of every partition of ``ends`` (partition → end offset), in partition order;
    ``firsts`` and ``committed`` map partitions to their first and committed offsets (a
    partition absent from ``committed`` has none; a negative committed offset counts as none)."""
    out: list[PartitionLag] = []
    for p in sorted(ends):
        c = committed.get(p)
        out.append(PartitionLag(p, c if c is not None and c >= 0 else None, firsts.get(p, 0), ends[p]))
    return out


async def read_lag(bootstrap: str, topic: str, group: str, *, timeout_s: float = 10.0,
                   security: KafkaSecurity = PLAINTEXT) -> list[PartitionLag]:
    """The consumer group ``group``'s lag on ``topic`` now (empty when the topic does not
    exist). Blocks up to ``timeout_s``, retrying while the group's coordinator is not yet
    available; raises ``KafkaError`` when the broker is unreachable and ``TimeoutError`` when it
    does not answer in time."""
    return await asyncio.wait_for(_read_lag(bootstrap, topic, group, security), timeout_s)


async def _read_lag(bootstrap: str, topic: str, group: str, security: KafkaSecurity) -> list[PartitionLag]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.options())
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(admin, topic)]
        if not tps:
            return []
        delay = 0.1
        while True:
            try:
                offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
                break
            except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                # a broker creates its group offsets topic on the first question about a group
                # (a stack whose worker never committed); the caller's timeout bounds the wait
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                **security.options())
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        firsts = await consumer.beginning_offsets(tps)
    finally:
        await consumer.stop()
    return partition_lags({tp.partition: o for tp, o in firsts.items()},
                          {tp.partition: o for tp, o in ends.items()},
                          {tp.partition: m.offset for tp, m in offsets.items()})
