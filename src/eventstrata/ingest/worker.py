"""The ingest worker process: wiring of consumer, producer, Redis and pipeline; signals.

``run_worker`` returns the process exit code: 0 after SIGTERM/SIGINT (the in-flight batches
are finished first: written, then committed in order), ``EXIT_DLQ_LIMIT`` when the DLQ limit
stopped the worker, and it raises on a fatal error (Redis down past the retry budget, broker
unreachable, ...).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from eventstrata import health
from eventstrata.config import Settings
from eventstrata.gctune import tune_gc
from eventstrata.health import LoopHeartbeat
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.writer import RedisHotWriter
from eventstrata.ingest.batch import Normalizer
from eventstrata.ingest.dlq import DeadLetter, DlqLimit
from eventstrata.ingest.pipeline import IngestPipeline, Stop
from eventstrata.ingest.rebalance import DrainOnRevoke
from eventstrata.redisconn import connect_redis

log = logging.getLogger("eventstrata.ingest")

EXIT_DLQ_LIMIT = 3


class KafkaDlqSink:
    """``DlqSink`` on an ``AIOKafkaProducer`` (``acks="all"``)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send_all(self, letters: Sequence[DeadLetter]) -> None:
        """Enqueue every letter, then wait for all acknowledgements; raises ``KafkaError``."""
        futures = [
            await self._producer.send(self._topic, value=d.value, key=d.key, headers=list(d.headers))
            for d in letters
        ]
        await asyncio.gather(*futures)


def make_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The group consumer of the raw topic (manual commits; starts at the earliest offset for
    a new group). Not started."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        client_id="eventstrata-ingest",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        # The broker answers a fetch as soon as fetch_min_bytes are ready in *any* partition of
        # it, else after fetch_max_wait_ms (aiokafka's default: 500). aiokafka has one fetch in
        # flight per broker and leaves out partitions whose records are still buffered, so a
        # fetch sent while a busy partition's records wait for `getmany` may hold only idle
        # partitions: it then sits out the whole max wait, and the busy partition's next records
        # (same broker) wait with it. 50 ms bounds that stall well inside the 100 ms freshness
        # target; the cost is at most 20 empty fetches/s per broker when everything is idle.
        fetch_min_bytes=1,
        fetch_max_wait_ms=50,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=min(3_000, settings.kafka_session_timeout_ms // 3),
        group_instance_id=settings.ingest_instance_id or None,
        max_poll_interval_ms=300_000,
        **settings.kafka_security().options(),
    )


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """The DLQ producer (``acks="all"``). Not started."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="eventstrata-ingest-dlq",
        acks="all",
        linger_ms=5,
        max_request_size=max(1_048_576, settings.max_event_bytes * 4 + 65_536),
        **settings.kafka_security().options(),
    )


def default_normalizer() -> Normalizer:
    from eventstrata.formats.normalize import normalize

    fn: Normalizer = normalize
    return fn


async def run_worker(
    settings: Settings,
    *,
    normalize: Normalizer | None = None,
    on_ready: Callable[[IngestPipeline], None] | None = None,
) -> int:
    """Run one ingest worker until SIGTERM/SIGINT or the DLQ limit. See module docstring.

    ``on_ready`` receives the pipeline once the consumer is subscribed (embedders and tests
    stop the worker with ``pipeline.request_stop()``)."""
    if not settings.kafka_bootstrap:
        raise ValueError("EVENTSTRATA_KAFKA_BOOTSTRAP is not set (or run `eventstrata dev up`)")
    heartbeat = LoopHeartbeat()
    if settings.metrics_port:
        health.serve(settings.metrics_port, heartbeat, host=settings.api_host)
    redis = connect_redis(settings)
    writer = RedisHotWriter(
        redis, settings.layout(), window_ms=settings.window_ms, tail_maxlen=settings.tail_maxlen,
        codec=BodyCodec(compress=settings.hot_compression == "zstd"),
    )
    consumer = make_consumer(settings)
    producer = make_producer(settings)
    pipeline = IngestPipeline(
        consumer,
        writer=writer,
        dlq=KafkaDlqSink(producer, settings.dlq_topic),
        limit=DlqLimit(settings.dlq_max_ratio, settings.dlq_max_consecutive),
        normalize=normalize or default_normalizer(),
        settings=settings,
        topic_partition=TopicPartition,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, pipeline, sig)
    beat = asyncio.create_task(heartbeat.run())
    try:
        try:
            await _start(producer, settings, "the DLQ producer")
            await _start(consumer, settings, "the consumer")
            consumer.subscribe([settings.topic], listener=DrainOnRevoke(pipeline))
            log.info(
                "ingest worker started: topic=%s group=%s dlq=%s redis=%s prefix=%s",
                settings.topic, settings.consumer_group, settings.dlq_topic,
                "cluster" if settings.redis_cluster else "single", settings.key_prefix,
            )
            # Everything is imported, connected and subscribed: freeze it and make young
            # collections rare (see gctune). With the default threshold (700) normalizing one
            # batch of 5,000 records ran 33 young and 2 middle collections, each walking the
            # batches in flight; with 50,000, fewer than one per batch. Full collections then
            # only walk what was created since start-up (the in-flight batches, caches).
            thresholds = gc.get_threshold()
            tune_gc()
            try:
                if on_ready is not None:
                    on_ready(pipeline)
                stop = await pipeline.run()
            finally:  # matters when embedded (tests): the host process gets its collector back
                gc.unfreeze()
                gc.set_threshold(*thresholds)
        finally:
            # consumer first (its revocation drains batches that may still dead-letter); aiokafka's
            # stop() is a no-op on a client that never started or failed to
            try:
                await consumer.stop()
            finally:
                await producer.stop()
    finally:
        beat.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        try:
            await redis.aclose()
        except Exception as exc:  # closing is best effort at exit, but never silent
            log.warning("closing the Redis client failed: %r", exc)
    t = pipeline.totals
    log.info(
        "ingest worker stopped (%s): consumed=%d stored=%d duplicates=%d dead_lettered=%d",
        stop.value, t["consumed"], t["stored"], t["duplicates"], t["dead_lettered"],
    )
    if stop is Stop.DLQ_LIMIT:
        return EXIT_DLQ_LIMIT
    return 0


class KafkaStartError(RuntimeError):
    """A Kafka client of the worker could not connect: the message names the broker, the
    security settings in use (never the password) and Kafka's own error."""


async def _start(client: AIOKafkaConsumer | AIOKafkaProducer, settings: Settings, what: str) -> None:
    """Start ``client``; a failure to reach or authenticate to the brokers (wrong password,
    untrusted certificate, unreachable host) raises ``KafkaStartError`` at once instead of
    retrying forever: it is a configuration error for an operator to fix."""
    try:
        await client.start()
    except KafkaError as exc:
        sec = settings.kafka_security()
        how = sec.protocol
        if sec.protocol.startswith("SASL"):
            how += f" {sec.mechanism} as {sec.username!r}"
        raise KafkaStartError(f"{what} cannot connect to Kafka at {settings.kafka_bootstrap} ({how}): "
                              f"{type(exc).__name__}: {exc}") from exc


def _on_signal(pipeline: IngestPipeline, sig: signal.Signals) -> None:
    log.info("ingest worker: %s received, finishing the in-flight batches and committing", sig.name)
    pipeline.request_stop()
