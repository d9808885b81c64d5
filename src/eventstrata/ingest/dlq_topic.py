"""Reading and re-publishing the DLQ topic (the I/O around ``ingest.dlq``), shared by
``eventstrata dlq`` and the admin API.

``read_letters`` reads the DLQ topic without a consumer group (nothing is committed) from the
beginning of each partition, or from its ``newest`` last offsets, up to the end offsets at the
time of the call. ``republish`` sends dead letters back to the raw topic with their original
key and headers (the ``es-*`` DLQ headers removed) and waits for every acknowledgement; the
ingest worker then normalizes them again (idempotently: a replayed event that is now valid is
stored once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from eventstrata.ingest.dlq import (
    H_CODE,
    H_MESSAGE,
    H_OFFSET,
    H_PARTITION,
    H_TIME,
    H_TOPIC,
    header,
    letter_tenant,
    original_headers,
)
from eventstrata.kafkaconn import PLAINTEXT, KafkaSecurity
from eventstrata.timeutil import format_ms


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter as read from the DLQ topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    tenant: str | None
    """The tenant the rejected message named (``ingest.dlq.letter_tenant``), if any."""

    @classmethod
    def of(cls, r: Any) -> Letter:
        """The dead letter of a consumed DLQ record."""
        value = r.value or b""
        headers = tuple(r.headers)
        return cls(r.partition, r.offset, r.key, value, headers, letter_tenant(value, headers))

    def code(self) -> str:
        return _text(header(self.headers, H_CODE))

    def time_ms(self) -> int | None:
        """When it was dead-lettered (epoch ms), if the header says."""
        t = header(self.headers, H_TIME)
        return int(t) if t and t.isdigit() else None

    def summary(self) -> dict[str, Any]:
        """What ``dlq list`` and ``GET /v1/admin/dead-letters`` show of it (no payload)."""
        h = self.headers
        t = self.time_ms()
        return {
            "partition": self.partition,
            "offset": self.offset,
            "code": self.code(),
            "message": _text(header(h, H_MESSAGE)),
            "source": (
                f"{_text(header(h, H_TOPIC))}[{_text(header(h, H_PARTITION))}]@{_text(header(h, H_OFFSET))}"
            ),
            "time": format_ms(t) if t is not None else None,
            "tenant": self.tenant,
            "bytes": len(self.value),
        }

    def detail(self) -> dict[str, Any]:
        """``summary`` plus the key, every header and the original bytes (as UTF-8 text, invalid
        bytes replaced)."""
        return {
            **self.summary(),
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "headers": [[k, v.decode("utf-8", "replace")] for k, v in self.headers],
            "value": self.value.decode("utf-8", "replace"),
        }


def _text(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


async def topic_partitions(bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT) -> list[int]:
    """Partition numbers of ``topic`` (empty when it does not exist). Raises ``KafkaError``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.options())
    await admin.start()
    try:
        return await partitions_of(admin, topic)
    finally:
        await admin.close()


async def partitions_of(admin: AIOKafkaAdminClient, topic: str) -> list[int]:
    """Partition numbers of ``topic`` through a started ``admin`` client (empty when it does
    not exist). Raises ``KafkaError``."""
    described = await admin.describe_topics([topic])
    return sorted(int(p["partition"]) for d in described if d.get("error_code") == 0 for p in d["partitions"])


async def read_letters(bootstrap: str, topic: str, *, code: str | None = None, tenant: str | None = None,
                       newest: int | None = None, timeout_s: float = 30.0,
                       security: KafkaSecurity = PLAINTEXT) -> list[Letter]:
    """The dead letters currently in ``topic`` — only those with error ``code`` and naming
    ``tenant`` when given; of each partition only its ``newest`` last offsets when given — in
    (partition, offset) order. Blocks until read or ``timeout_s`` (then returns what it read).
    Raises ``KafkaError`` when the broker is unreachable."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", **security.options())
    await c.start()
    out: list[Letter] = []
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic, security=security)]
        if not tps:
            return []
        c.assign(tps)
        ends = await c.end_offsets(tps)
        begins = await c.beginning_offsets(tps)
        starts = {tp: begins[tp] if newest is None else max(begins[tp], ends[tp] - newest) for tp in tps}
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        for tp in remaining:
            c.seek(tp, starts[tp])
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            got = await c.getmany(*remaining, timeout_ms=500)
            for tp, recs in got.items():
                for r in recs:
                    if r.offset < ends[tp]:
                        out.append(Letter.of(r))
                    if r.offset >= ends[tp] - 1:
                        remaining.discard(tp)
    finally:
        await c.stop()
    out = [x for x in out if (code is None or x.code() == code) and (tenant is None or x.tenant == tenant)]
    return sorted(out, key=lambda x: (x.partition, x.offset))


async def republish(bootstrap: str, topic: str, letters: Sequence[Letter], *, max_request_size: int,
                    on_acked: Callable[[int], None] | None = None,
                    security: KafkaSecurity = PLAINTEXT) -> int:
    """Send ``letters`` to ``topic`` with their original key and headers; waits for every ack
    (``acks="all"``), calling ``on_acked(1)`` for each one as it arrives (for a progress bar).
    Returns the count. Raises ``KafkaError``."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                         max_request_size=max_request_size, **security.options())
    await p.start()
    try:
        def acked(fut: asyncio.Future[Any]) -> None:
            if on_acked is not None and not fut.cancelled() and fut.exception() is None:
                on_acked(1)

        futs = []
        for x in letters:
            fut = await p.send(topic, value=x.value, key=x.key, headers=list(original_headers(x.headers)))
            fut.add_done_callback(acked)
            futs.append(fut)
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return len(letters)


async def read_letter(bootstrap: str, topic: str, partition: int, offset: int, *,
                      timeout_s: float = 30.0, security: KafkaSecurity = PLAINTEXT) -> Letter | None:
    """The dead letter at ``partition``/``offset`` of ``topic``; None when there is none (no
    such partition, an offset outside the partition's current range, or not read within
    ``timeout_s``). Raises ``KafkaError`` when the broker is unreachable."""
    if partition not in await topic_partitions(bootstrap, topic, security=security):
        return None
    tp = TopicPartition(topic, partition)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", **security.options())
    await c.start()
    try:
        c.assign([tp])
        if not (await c.beginning_offsets([tp]))[tp] <= offset < (await c.end_offsets([tp]))[tp]:
            return None
        c.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for r in (await c.getmany(tp, timeout_ms=500)).get(tp, []):
                if r.offset == offset:
                    return Letter.of(r)
                if r.offset > offset:  # compacted away
                    return None
        return None
    finally:
        await c.stop()
