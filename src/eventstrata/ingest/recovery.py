"""Healing a hot tier that lost acknowledged writes, by replaying from Kafka. Pure.

Kafka's committed offset says what the worker *had* stored when it committed. A Redis that
later loses acknowledged writes -- a failover to a replica that lagged, a restore from a
backup, a node restarted from an older AOF -- no longer holds what that offset promises, and
nothing would ever re-read those records. So every hot write also records, **in the same
atomic call as the data** (``hotstore/write.lua``), the Kafka offsets it covers: per tenant, a
hash ``<topic>|<partition>`` → next offset (the tenant's stored data holds every record of
that tenant in the partition before it). A sharded tenant's shards keep one each, written by
their own store calls; records are named by hash tag (``keys.hash_tag``: the tenant, or a
shard's tag), and everything below treats each as a tenant would be. A Redis that rolls back
rolls this record back with the data it describes, so the record is never ahead of the data.

The worker uses it in three places (``ingest.pipeline``):

1. **On assignment** it resumes each partition from the lower of Kafka's committed offset and
   the lowest offset any tenant recorded for it (``resume_offset``); a tenant without a record
   for the partition does not count.
2. **On every write** the script returns the record's previous values; a value below what
   this worker itself recorded and saw acknowledged earlier (``rolled_back``) means Redis lost
   writes since. The worker then finishes the batches in flight and seeks the partition back
   to the recorded value (or to where it started reading the partition, when the record is
   gone altogether). Every write and refresh passes what the worker expects the record to
   hold, and the script leaves a field below its expectation untouched: the writes that find
   the loss, and those already in flight, do not raise the record past the lost records, so a
   worker that dies before its replay finished still resumes before them. The replay's own
   writes carry no expectation for the partition and raise the record again as they go.
3. **Once a second** (``EVENTSTRATA_OFFSETS_REFRESH``) it records the offsets every batch so
   far covers for the tenants it knows that had no events in those batches, and checks the
   previous values the same way. This keeps idle tenants' records close to the partition's
   end, so a resume replays about a second of records, not everything since that tenant's
   last event; and it notices a rollback even when no new events arrive.

A Redis that lost *everything* (a wiped node, an empty volume) holds no tenant records at all,
so none of the above can see the loss. The deployment's **lineage** record
(``KeyLayout.lineage``: ``<topic>|<partition>`` → an offset covered, max-set by every worker
once a second, even by one that only dead-lettered) can: on assignment a partition with a
committed offset but no lineage mark resumes from the beginning (``resume_offset``), and a
worker that finds its own mark gone replays its partitions from 0 (``lineage_lost``). The hot
tier then refills from the topic as far as its retention reaches (events below the archive
watermark are stored again and found archived by the next archive pass).

Replayed records that are still stored are duplicates (the write is idempotent by id); the
ones Redis lost are stored again. Positions and tail entries of events that were lost are
assigned anew when they are stored again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventstrata.ingest.commit import Partition

FIELD_SEP = "|"
"""Separates topic and partition in a record's field (Kafka topic names cannot contain it)."""

TenantField = tuple[str, str]
"""``(tenant, offset field)``."""


def offset_field(p: Partition) -> str:
    """The field of partition ``p`` in a tenant's offsets record: ``<topic>|<partition>``."""
    return f"{p.topic}{FIELD_SEP}{p.partition}"


def parse_offset_field(field: str | bytes) -> Partition:
    """Inverse of ``offset_field``. Raises ``ValueError`` for anything else."""
    s = field.decode("utf-8") if isinstance(field, bytes) else field
    topic, sep, part = s.rpartition(FIELD_SEP)
    if not sep or not topic or not part.isdigit():
        raise ValueError(f"not an offsets field: {s!r}")
    return Partition(topic, int(part))


def resume_offset(committed: int | None, recorded: Iterable[int | None], *, lineage: bool = True
                  ) -> int | None:
    """Where a newly assigned partition must resume: the lower of Kafka's ``committed`` offset
    and the lowest offset recorded by any tenant (None = no record); the beginning (0) when
    something was committed but Redis has no ``lineage`` mark of the partition (it lost its
    data, or never held this deployment's: everything is replayed, idempotently). Returns None
    when the consumer's own position (committed, or the reset policy for a new group) is right:
    no tenant recorded an offset below ``committed``, or nothing was committed (a new group
    starts at the earliest offset, which is below any record anyway)."""
    if committed is None:
        return None
    if not lineage:
        return 0
    low = min((r for r in recorded if r is not None), default=None)
    if low is None or low >= committed:
        return None
    return low


def lineage_lost(marked: Iterable[Partition], previous: Mapping[str, int | None]) -> list[Partition]:
    """Partitions whose lineage mark, set earlier by this worker (``marked``), was found gone
    (``previous`` value None) when marking again: Redis lost its data; they replay from 0."""
    return sorted(p for p in marked if offset_field(p) in previous and previous[offset_field(p)] is None)


def rolled_back(expected: Mapping[TenantField, int],
                previous: Mapping[TenantField, int | None],
                started_at: Mapping[Partition, int]) -> dict[Partition, int]:
    """Partitions whose recorded offsets went backwards, with where to resume them.

    ``expected`` = what this worker recorded per ``(tenant, field)`` and saw acknowledged;
    ``previous`` = the values read back (atomically, in a later write or refresh) for some of
    those pairs; ``started_at`` = the offset the worker began reading each partition at. A
    pair whose previous value is below the expected one (or gone: None) proves that Redis
    lost acknowledged writes: its partition resumes at that previous value (at ``started_at``
    when the record is gone, or 0 if that is unknown). The lowest such value per partition
    wins. Pairs that ``expected`` does not know are ignored (another worker's, or not yet
    acknowledged)."""
    out: dict[Partition, int] = {}
    for key, prev in previous.items():
        exp = expected.get(key)
        if exp is None or (prev is not None and prev >= exp):
            continue
        p = parse_offset_field(key[1])
        to = prev if prev is not None else started_at.get(p, 0)
        if to < out.get(p, to + 1):
            out[p] = to
    return out
