"""Publishing events to the raw topic (the `eventstrata produce` command, the demo, tests,
and ``POST /v1/ingest``).

``parse_line`` is pure; ``publish`` does the I/O: it sends with an idempotent aiokafka producer,
waits for every acknowledgement, and reports progress through a callback. ``AckedProducer`` is
the long-lived producer of an API process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from eventstrata.kafkaconn import PLAINTEXT, KafkaSecurity

HEADER_FORMAT = "es-format"
HEADER_TENANT = "es-tenant"
HEADER_STORE = "es-store"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: the raw value and its Kafka headers and key."""

    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class PublishResult:
    sent: int
    failed: int
    skipped_lines: int = 0


def parse_line(
    line: bytes | str, *, fmt: str | None = None, tenant: str | None = None, store: str | None = None
) -> Outgoing | None:
    """A JSON line → an ``Outgoing`` message. Blank lines → ``None``.

    The line is sent as is (bytes preserved; bad JSON is the ingest worker's to dead-letter).
    ``fmt``/``tenant``/``store`` become the ``es-format``/``es-tenant``/``es-store`` headers.
    The key is ``tenant:user`` when both can be read from the object (per-user ordering).
    """
    raw = line.encode() if isinstance(line, str) else line
    raw = raw.strip()
    if not raw:
        return None
    headers: list[tuple[str, bytes]] = []
    if fmt:
        headers.append((HEADER_FORMAT, fmt.encode()))
    if tenant:
        headers.append((HEADER_TENANT, tenant.encode()))
    if store:
        headers.append((HEADER_STORE, store.encode()))
    return Outgoing(raw, tuple(headers), _key_of(raw, tenant))


def _key_of(raw: bytes, tenant: str | None) -> bytes | None:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    t = tenant or obj.get("tenant") or obj.get("dataset_id") or obj.get("tenantId")
    user = obj.get("user_id")
    u = obj.get("user")
    if user is None and isinstance(u, dict):
        user = u.get("id")
    if isinstance(t, str) and isinstance(user, str | int):
        return f"{t}:{user}".encode()
    return None


def new_producer(bootstrap: str, *, linger_ms: int, request_timeout_ms: int = 40_000,
                 security: KafkaSecurity = PLAINTEXT) -> AIOKafkaProducer:
    """An unstarted producer that waits for every in-sync replica (``acks=all``) and never
    writes a message twice on a retry (idempotent), batching up to 256 KB."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                            linger_ms=linger_ms, max_batch_size=256 * 1024,
                            request_timeout_ms=request_timeout_ms, **security.options())


async def publish(
    bootstrap: str,
    topic: str,
    messages: Iterable[Outgoing] | AsyncIterator[Outgoing],
    *,
    on_progress: Callable[[int], None] | None = None,
    in_flight: int = 2000,
    security: KafkaSecurity = PLAINTEXT,
) -> PublishResult:
    """Send every message and wait for all acknowledgements (acks=all, idempotent producer).

    Blocks (asynchronously) until the broker acknowledged or rejected each message; a rejected
    message counts as ``failed`` — nothing is dropped silently. Raises ``KafkaConnectionError``
    when the broker cannot be reached at all.
    """
    producer = new_producer(bootstrap, linger_ms=5, security=security)
    sent = failed = 0
    pending: list[asyncio.Future[object]] = []

    async def drain() -> None:
        nonlocal sent, failed
        results = await asyncio.gather(*pending, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                failed += 1
            else:
                sent += 1
        if on_progress:
            on_progress(len(results))
        pending.clear()

    try:
        await producer.start()  # inside: stop() also closes a producer whose start failed
        if isinstance(messages, AsyncIterator):
            async for m in messages:
                pending.append(await producer.send(topic, m.value, key=m.key, headers=list(m.headers)))
                if len(pending) >= in_flight:
                    await drain()
        else:
            for m in messages:
                pending.append(await producer.send(topic, m.value, key=m.key, headers=list(m.headers)))
                if len(pending) >= in_flight:
                    await drain()
        await drain()
    finally:
        await producer.stop()
    return PublishResult(sent=sent, failed=failed)


class ProducerUnavailable(Exception):
    """Kafka did not acknowledge every message in time (unreachable, or failing): the caller
    answers "retry later"; the messages that were acknowledged stay acknowledged."""


class AckedProducer:
    """One idempotent producer (``acks=all``) for the life of a process, started on first use
    and started again after a failed start. ``send_all`` returns only once Kafka acknowledged
    every message. Not thread-safe; use from one event loop."""

    def __init__(self, bootstrap: str, topic: str, *, timeout_ms: int,
                 security: KafkaSecurity = PLAINTEXT) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._topic = topic
        self._timeout_s = timeout_ms / 1000
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = new_producer(self._bootstrap, linger_ms=2, security=self._security,
                                        request_timeout_ms=int(self._timeout_s * 1000))
                try:
                    await asyncio.wait_for(producer.start(), self._timeout_s)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send_all(self, messages: Sequence[Outgoing]) -> None:
        """Send ``messages`` and wait for every acknowledgement, at most the timeout. Raises
        ``ProducerUnavailable`` when Kafka cannot be reached or does not acknowledge them all
        in time (some may still be delivered: the retry is made safe by ids)."""
        if not messages:
            return
        try:
            producer = await self._started()

            async def send() -> None:
                futures = [await producer.send(self._topic, m.value, key=m.key, headers=list(m.headers))
                           for m in messages]
                await asyncio.gather(*futures)

            await asyncio.wait_for(send(), self._timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ProducerUnavailable(f"Kafka did not acknowledge the events: {exc!r}") from exc

    async def close(self) -> None:
        """Flush and stop the producer (no-op when it never started). Never raises."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
