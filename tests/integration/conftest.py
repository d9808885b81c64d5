"""Real servers for integration tests (issue 2).

Session-scoped, started once per test session by the same launchers `eventstrata dev up` uses
(``eventstrata.localstack``), each test isolated by unique topics and Redis key prefixes.

Fixtures (the contract other areas write against):

- ``kafka_bootstrap: str`` – ``host:port`` of a real Kafka broker.
- ``redis_url: str`` – ``redis://127.0.0.1:PORT/0`` of a real redis-server.
- ``redis_cluster_url: str`` – seed node of a 3-master Redis Cluster (started lazily, only for
  tests that request it).
- ``s3_archive: S3Archive`` – a real S3-compatible server (SeaweedFS, started lazily, only for
  tests that request it) with a bucket; the session's ``AWS_*`` variables hold its credentials
  (the standard chain through which the product finds them).
- ``key_prefix: str`` (function) – unique per test, valid as ``Settings.key_prefix``.
- ``topic_factory`` – ``(partitions: int = 4) -> str``: creates a fresh unique topic, returns
  its name. Blocking (safe to call from sync or async tests).
- ``settings_factory`` (function) – ``(**overrides) -> Settings`` with kafka_bootstrap,
  redis_url, key_prefix, a unique consumer group, a fresh topic + dlq topic, archive_uri and
  state_dir in tmp dirs, api_port 0.
  ``settings_factory(redis_cluster=True)`` points ``redis_url`` at the cluster seed node;
  ``settings_factory(archive_s3=True)`` puts the archive in ``s3_archive``'s bucket.

Where the servers come from, in order:

1. ``EVENTSTRATA_KAFKA_BOOTSTRAP`` / ``EVENTSTRATA_REDIS_URL`` (and
   ``EVENTSTRATA_TEST_REDIS_CLUSTER_URL`` for the cluster) – reuse existing servers.
2. ``EVENTSTRATA_TEST_BACKEND=testcontainers`` and a reachable Docker engine – Kafka and Redis
   from testcontainers (NOT exercised on the development machine, which has no Docker engine;
   the cluster always comes from the local launcher).
3. Otherwise the local launchers: Kafka 4.1.1 (jars from Maven Central, cached in
   ``~/.cache/eventstrata``) and Debian ``redis-server`` on free loopback ports, data under a
   pytest tmp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventstrata.config import Settings
from eventstrata.localstack.kafka import KafkaServer, broker_version, create_topics, wait_kafka_ready
from eventstrata.localstack.ports import free_port
from eventstrata.localstack.redis import RedisClusterServer, RedisServer, wait_redis_ready
from eventstrata.localstack.seaweed import REGION, S3Server

_TOPIC_CREATOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="topic-factory")
_KAFKA_VERSION_KEY = pytest.StashKey[str]()


SMALL_USER_SETS = 4
"""``user_set_max`` of the suites' stacks: a user's day of more than 4 events is cut into sets."""

def _run_sync(coro: Any) -> Any:
    """Run a coroutine to completion on a private thread (callers may be inside a running loop)."""
    return _TOPIC_CREATOR.submit(asyncio.run, coro).result()


def _use_testcontainers() -> bool:
    if os.environ.get("EVENTSTRATA_TEST_BACKEND", "").lower() != "testcontainers":
        return False
    try:
        import docker  # testcontainers dependency

        docker.from_env().ping()
    except Exception as exc:
        print(
            f"[eventstrata] EVENTSTRATA_TEST_BACKEND=testcontainers but no Docker engine ({exc}); "
            "falling back to the local launchers"
        )
        return False
    return True


def _report(config: pytest.Config, line: str) -> None:
    """Write ``line`` to the terminal now, bypassing output capture (so it shows in `make test`)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        print(f"[eventstrata] {line}")
        return
    if capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(f"[eventstrata] {line}")
    else:
        reporter.write_line(f"[eventstrata] {line}")


@contextlib.contextmanager
def _apache_kafka_container() -> Iterator[str]:
    """Apache Kafka 4.1.1 (official ``apache/kafka`` image, KRaft single node) via testcontainers.

    The host port is fixed up front so the advertised listener matches it. Untested on the
    development machine (no Docker engine there)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    container = (
        DockerContainer("apache/kafka:4.1.1")
        .with_bind_ports(9092, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_NUM_PARTITIONS="4",
        )
    )
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Kafka broker for the whole session; its reported version goes into the test log."""
    external = os.environ.get("EVENTSTRATA_KAFKA_BOOTSTRAP", "")
    if external:
        wait_kafka_ready(external, timeout=30.0)
        version = broker_version(external)
        request.config.stash[_KAFKA_VERSION_KEY] = f"{version} (existing broker {external})"
        _report(request.config, f"Kafka broker {external} (existing) reports version {version}")
        yield external
        return
    if _use_testcontainers():
        with _apache_kafka_container() as bootstrap:
            wait_kafka_ready(bootstrap, timeout=60.0)
            version = broker_version(bootstrap)
            request.config.stash[_KAFKA_VERSION_KEY] = f"{version} (testcontainers)"
            _report(request.config, f"Kafka broker {bootstrap} (testcontainers) reports version {version}")
            yield bootstrap
        return
    server = KafkaServer(tmp_path_factory.mktemp("kafka"))
    server.start()
    try:
        server.wait_ready(timeout=90.0)
        version = broker_version(server.bootstrap, log_file=server.log_file)
        request.config.stash[_KAFKA_VERSION_KEY] = f"{version} (started by the fixture)"
        _report(
            request.config,
            f"Kafka broker {server.bootstrap} started by the fixture reports version {version} "
            f"(ready in {server.ready_seconds:.1f} s, RSS {server.rss_mib():.0f} MiB)",
        )
        yield server.bootstrap
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the whole session (tests isolate themselves by ``key_prefix``)."""
    external = os.environ.get("EVENTSTRATA_REDIS_URL", "")
    if external:
        wait_redis_ready(external, timeout=30.0)
        yield external
        return
    if _use_testcontainers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.0") as container:
            url = f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
            wait_redis_ready(url, timeout=60.0)
            yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        server.wait_ready(timeout=30.0)
        _report(request.config, f"redis-server {server.version} started by the fixture at {server.url}")
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Seed node URL of a 3-master Redis Cluster on loopback, started on first request."""
    external = os.environ.get("EVENTSTRATA_TEST_REDIS_CLUSTER_URL", "")
    if external:
        yield external
        return
    cluster = RedisClusterServer(tmp_path_factory.mktemp("redis-cluster"), nodes=3)
    cluster.start()
    try:
        cluster.wait_ready(timeout=60.0)
        _report(request.config, f"Redis Cluster of {len(cluster.ports)} masters started at {cluster.url}")
        yield cluster.url
    finally:
        cluster.stop()


@dataclass(frozen=True, slots=True)
class S3Archive:
    """Where the tests' S3 archive is: ``s3://<bucket>/<prefix>`` at ``endpoint``."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture(scope="session")
def s3_archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Archive]:
    """SeaweedFS with one bucket for the session (tests isolate themselves by prefix). Sets
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_REGION`` for the session, so the
    product (in this process and in the processes it starts) finds the credentials the way it
    does in production."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    try:
        server.wait_ready(buckets=("eventstrata-tests",), timeout=90.0)
        _report(request.config, f"SeaweedFS S3 started by the fixture at {server.endpoint}")
        os.environ.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
                          AWS_REGION=REGION)
        yield S3Archive(server.endpoint, "eventstrata-tests", server.access_key, server.secret_key)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix unique to this test (``t`` + 10 hex digits)."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """``(partitions=4) -> str``: create a fresh uniquely named topic and return its name.

    Blocks until the broker has created it (and its leaders are known)."""

    def make(partitions: int = 4, *, prefix: str = "t") -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        _run_sync(create_topics(kafka_bootstrap, [(name, partitions)]))
        return name

    return make


@pytest.fixture
def settings_factory(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    redis_url: str,
    key_prefix: str,
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> Callable[..., Settings]:
    """``(**overrides) -> Settings`` for this test: real servers, a fresh topic (``topic_partitions``
    partitions, default 4) and a fresh 1-partition DLQ topic, a consumer group unique to the test
    (``g.<key_prefix>``; a shared group would rebalance across tests), tmp archive and state dirs.

    Topics are only created when ``topic`` / ``dlq_topic`` are not overridden. With
    ``redis_cluster=True`` and no ``redis_url`` override, ``redis_url`` is the cluster seed node.
    Ambient ``EVENTSTRATA_*`` variables are ignored: everything comes from the fixtures. User
    sets are cut at ``SMALL_USER_SETS`` members unless ``user_set_max`` is overridden, so that the
    suites run on users' days cut into several sets (``test_user_sets`` checks the default).
    """

    def make(**overrides: Any) -> Settings:
        archive_s3 = overrides.pop("archive_s3", False)
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_bootstrap,
            "redis_url": redis_url,
            "key_prefix": key_prefix,
            "consumer_group": f"g.{key_prefix}",
            "archive_uri": str(tmp_path / "archive"),
            "state_dir": tmp_path / "state",
            "api_port": 0,
            "user_set_max": SMALL_USER_SETS,
        }
        if archive_s3:
            s3: S3Archive = request.getfixturevalue("s3_archive")
            values.update(archive_uri=s3.uri(key_prefix), s3_endpoint=s3.endpoint)
        if overrides.get("redis_cluster") and "redis_url" not in overrides:
            values["redis_url"] = request.getfixturevalue("redis_cluster_url")
        partitions = int(overrides.get("topic_partitions", 4))
        values["topic_partitions"] = partitions
        if "topic" not in overrides:
            values["topic"] = topic_factory(partitions)
        if "dlq_topic" not in overrides:
            values["dlq_topic"] = topic_factory(1, prefix="dlq")
        values.update(overrides)
        return Settings.from_env(env={}, **values)

    return make


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Repeat the broker's version at the end of the log (it is also printed when it starts)."""
    version = config.stash.get(_KAFKA_VERSION_KEY, None)
    if version is not None:
        terminalreporter.write_line(f"[eventstrata] Kafka broker version: {version}")
