"""The foundation against real servers: produce/consume on the broker, Redis and Redis Cluster
reads/writes, the launchers' Redis settings, and `eventstrata dev up/status/down` as real
subprocesses (own Kafka + Redis on free ports in a temp state dir; no process left behind)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from eventstrata.config import Settings
from eventstrata.localstack.kafka import broker_version
from eventstrata.localstack.proc import ProcRef
from eventstrata.localstack.redis import RedisServer
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration


# ----- broker --------------------------------------------------------------------------------------


async def test_produce_and_consume_on_the_broker(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = {f"k{i}".encode(): f'{{"n": {i}}}'.encode() for i in range(30)}
        for key, value in sent.items():
            await producer.send(topic, value, key=key, headers=[("es-format", b"native")])
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    got: dict[bytes, bytes] = {}
    partitions: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for rec in records:
                    assert rec.key is not None and rec.value is not None
                    assert dict(rec.headers)["es-format"] == b"native"
                    got[rec.key] = rec.value
                    partitions.add(tp.partition)
    finally:
        await consumer.stop()
    assert got == sent
    assert len(partitions) > 1, "keys should spread over the topic's partitions"
    print(f"produced and consumed {len(got)} messages on {kafka_bootstrap} topic {topic}")


def test_broker_reports_its_version(kafka_bootstrap: str) -> None:
    version = broker_version(kafka_bootstrap)
    print(f"Kafka broker {kafka_bootstrap} reports: {version}")
    assert "metadata.version level" in version


def test_topic_factory_creates_fresh_topics_with_partitions(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    a, b = topic_factory(2), topic_factory()
    assert a != b

    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics([a, b])}
        finally:
            await admin.close()

    assert asyncio.run(describe()) == {a: 2, b: 4}


# ----- Redis ---------------------------------------------------------------------------------------


async def test_redis_write_and_read(
    redis_url: str, key_prefix: str, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    assert settings.key_prefix == key_prefix and settings.redis_url == redis_url
    assert settings.consumer_group == f"g.{key_prefix}", "each test needs its own consumer group"
    assert settings.topic != settings.dlq_topic
    client = connect_redis(settings)
    assert isinstance(client, Redis)
    try:
        key = f"{key_prefix}:hello"
        await client.set(key, b"world")
        await client.zadd(f"{key_prefix}:z", {b"a": 1, b"b": 2})
        assert await client.get(key) == b"world"
        assert await client.zrange(f"{key_prefix}:z", 0, -1) == [b"a", b"b"]
    finally:
        await client.delete(f"{key_prefix}:hello", f"{key_prefix}:z")
        await client.aclose()


def test_redis_launcher_uses_aof_everysec_and_noeviction(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        server.wait_ready()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            assert client.config_get("dir") == {"dir": str(tmp_path / "redis")}
            client.set("k", "v")
        finally:
            client.close()
        assert server.version.startswith("7.")
    finally:
        server.stop()
    assert server.ref is not None and not server.ref.alive()
    assert any((tmp_path / "redis").glob("appendonlydir/*.aof")), "AOF files live in the state dir"


async def test_redis_cluster_write_and_read_across_slots(
    redis_cluster_url: str, key_prefix: str, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(redis_cluster=True)
    assert settings.redis_url == redis_cluster_url
    client = connect_redis(settings)
    assert isinstance(client, RedisCluster)
    try:
        await client.initialize()
        keys = [f"{key_prefix}:{{tenant{i}}}:k" for i in range(24)]
        nodes = {client.get_node_from_key(k).port for k in keys}
        assert len(nodes) == 3, "keys should land on all three masters"
        for i, key in enumerate(keys):
            await client.set(key, str(i).encode())
        assert [await client.get(k) for k in keys] == [str(i).encode() for i in range(len(keys))]
        tagged = [f"{key_prefix}:{{same}}:{n}" for n in ("a", "b", "c")]
        pipe = client.pipeline()
        for k in tagged:
            pipe.incr(k)
        assert await pipe.execute() == [1, 1, 1]
        for k in keys + tagged:
            await client.delete(k)
    finally:
        await client.aclose()


# ----- eventstrata dev up / status / down ------------------------------------------------------------

CLI = [sys.executable, "-m", "eventstrata"]


def _env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTRATA_")}
    env.update({"EVENTSTRATA_STATE_DIR": str(state), "EVENTSTRATA_API_PORT": "0", **extra})
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _recorded(state: Path) -> list[ProcRef]:
    data = json.loads((state / "stack.json").read_text())
    return [ProcRef.from_json(p) for p in data["processes"]]


def _assert_all_gone(refs: list[ProcRef]) -> None:
    deadline = time.monotonic() + 10
    while any(r.alive() for r in refs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r for r in refs if r.alive()] == []


def test_dev_up_detach_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = _env(state)
    up = _run(["dev", "up", "--detach", "--json", "--no-apps"], env)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    assert info["kafka"].startswith("127.0.0.1:") and info["redis"].startswith("redis://127.0.0.1:")
    assert info["topic"] == "events.raw" and info["dlq_topic"] == "events.dlq"
    assert "api" in info
    refs = _recorded(state)
    assert {r.name for r in refs} == {"kafka", "redis"}
    assert all(r.alive() for r in refs)
    assert (state / "pids" / "kafka.pid").read_text().strip() == str(
        next(r.pid for r in refs if r.name == "kafka")
    )
    try:
        client = redis.Redis.from_url(info["redis"])
        assert client.ping()
        client.close()

        status = _run(["dev", "status", "--json"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["running"] is True and report["kafka_answers"] and report["redis_answers"]
        assert report["kafka"] == info["kafka"]
        assert "4.1.1" in report["kafka_version"]

        again = _run(["dev", "up", "--detach", "--json", "--no-apps"], env)
        assert again.returncode != 0
        assert "already running" in again.stderr
        assert again.stdout == ""
        assert all(r.alive() for r in refs), "a refused second `up` must not disturb the running stack"
    finally:
        down = _run(["dev", "down"], env)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    _assert_all_gone(refs)
    assert not (state / "stack.json").exists()
    assert (state / "kafka" / "data" / "meta.properties").exists(), "down keeps the broker's data"
    after = _run(["dev", "status", "--json"], env)
    assert after.returncode == 1 and json.loads(after.stdout)["running"] is False


def test_dev_up_uses_existing_servers_from_env(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, topic_factory: Callable[..., str]
) -> None:
    state = tmp_path / "state"
    topic = f"t.devup.{time.time_ns()}"
    env = _env(
        state,
        EVENTSTRATA_KAFKA_BOOTSTRAP=kafka_bootstrap,
        EVENTSTRATA_REDIS_URL=redis_url,
        EVENTSTRATA_TOPIC=topic,
        EVENTSTRATA_DLQ_TOPIC=topic + ".dlq",
    )
    up = _run(["dev", "up", "--detach", "--json", "--no-apps"], env, timeout=60)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    assert info["kafka"] == kafka_bootstrap and info["redis"] == redis_url and info["topic"] == topic
    assert _recorded(state) == [], "no server may be started when existing ones are configured"
    down = _run(["dev", "down"], env)
    assert down.returncode == 0
    client = redis.Redis.from_url(redis_url)
    assert client.ping(), "dev down must not touch servers it did not start"
    client.close()


def _start_foreground(state: Path) -> tuple[subprocess.Popen[str], list[ProcRef]]:
    proc = subprocess.Popen(
        [*CLI, "dev", "up", "--no-apps"],
        env=_env(state),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("state "):
            break
    else:
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"foreground dev up ended before it was ready: {''.join(lines)} {err}")
    return proc, _recorded(state)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.parametrize(("victim", "survivor"), [("redis", "kafka"), ("kafka", "redis")])
def test_foreground_dev_up_reports_a_dead_component(tmp_path: Path, victim: str, survivor: str) -> None:
    state = tmp_path / "state"
    proc, refs = _start_foreground(state)
    try:
        dead = next(r for r in refs if r.name == victim)
        os.kill(dead.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=90)
    finally:
        _stop(proc)
    assert proc.returncode == 1
    assert f"ERROR: {victim} (pid {dead.pid}) exited unexpectedly with signal SIGKILL" in err
    assert f"stopped {survivor}" in err
    _assert_all_gone(refs)
    assert not (state / "stack.json").exists()


def test_foreground_dev_up_stops_everything_on_sigint(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, refs = _start_foreground(state)
    try:
        assert all(r.alive() for r in refs)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        _stop(proc)
    assert proc.returncode == 0, err
    assert "stopping (signal received)" in err
    _assert_all_gone(refs)
    assert not (state / "stack.json").exists()


async def test_pool_makes_callers_wait_when_every_connection_is_busy(redis_url: str) -> None:
    """``connect_redis``'s pool is a blocking one: with 2 connections, 40 concurrent commands
    all succeed — the ones that find the pool exhausted wait for a connection instead of
    failing with ``MaxConnectionsError`` — and the pool never opens a third connection."""
    from redis.asyncio import BlockingConnectionPool

    settings = Settings.from_env(env={}, redis_url=redis_url)
    r = connect_redis(settings, max_connections=2)
    pool = r.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    peak = 0

    async def call(i: int) -> Any:
        nonlocal peak
        reply = await r.execute_command("EVAL", "return ARGV[1]", 0, str(i))
        peak = max(peak, len(pool._in_use_connections) + len(pool._available_connections))
        return reply

    try:
        got = await asyncio.gather(*(call(i) for i in range(40)))
        assert [int(x) for x in got] == list(range(40))
        assert 1 <= peak <= 2
        # the exhausted case really waits: hold both connections, a third caller blocks until
        # one is released
        c1 = await pool.get_connection()
        c2 = await pool.get_connection()
        waiter = asyncio.ensure_future(r.ping())
        await asyncio.sleep(0.2)
        assert not waiter.done()
        await pool.release(c1)
        assert await asyncio.wait_for(waiter, 5) is True
        await pool.release(c2)
    finally:
        await r.aclose()
