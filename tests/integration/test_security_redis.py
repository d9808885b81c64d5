"""Redis with TLS and an ACL user, as a managed Redis is run: a real ``redis-server`` that accepts
only TLS connections with a client certificate signed by the test's CA, and whose default user
is disabled. The ingest worker, the API (queries and the live tail's readers) and the archiver
work through ``rediss://`` + ``EVENTSTRATA_REDIS_USERNAME/PASSWORD`` + ``EVENTSTRATA_REDIS_TLS_*``;
a wrong password fails at once with a clear error instead of hanging. The same on a 3-master
Redis Cluster whose bus runs over TLS."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from ingest_util import jmsg, native, produce, run_until
from query_support import QueryStack
from tls_support import Pki, make_pki

from eventstrata.archive.service import run_archiver
from eventstrata.localstack.ports import free_cluster_port, free_port
from eventstrata.localstack.proc import spawn, stop, tail_text
from eventstrata.localstack.redis import ensure_redis_installed, render_cluster_node_args, render_redis_args
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration

PASSWORD = "ingest-secret"


def tls_args(port: int, data: Path, pki: Pki) -> list[str]:
    """TLS on ``port`` only, client certificates required, the default user disabled and one ACL
    user ``eventstrata``."""
    return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(pki.server_cert),
            "--tls-key-file", str(pki.server_key), "--tls-ca-cert-file", str(pki.ca),
            "--tls-auth-clients", "yes", "--aclfile", str(_aclfile(data))]


def tls_redis_args(binary: str, port: int, data: Path, pki: Pki) -> list[str]:
    return [*render_redis_args(binary=binary, port=0, data_dir=data), *tls_args(port, data, pki)]


def _aclfile(data: Path) -> Path:
    path = data / "users.acl"
    path.write_text(f"user default off\nuser eventstrata on >{PASSWORD} ~* &* +@all\n")
    return path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Pki]]:
    """(``rediss://`` URL, certificates) of a fresh TLS + ACL redis-server."""
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    popen, ref = spawn("redis-tls", tls_redis_args(ensure_redis_installed(), port, data, pki),
                       log=data / "redis.log", cwd=data)
    try:
        _wait_ready(data / "redis.log", popen)
        yield f"rediss://127.0.0.1:{port}/0", pki
    finally:
        stop(ref, popen=popen)


@pytest.fixture
def tls_redis_cluster(tmp_path: Path) -> Iterator[tuple[str, Pki]]:
    """(``rediss://`` seed URL, certificates) of a fresh 3-master Redis Cluster: TLS only, the
    cluster bus over TLS too, client certificates required, the default user disabled."""
    pki = make_pki(tmp_path / "pki")
    procs = []
    ports = [free_cluster_port() for _ in range(3)]  # P and the bus port P + 10000 both free
    try:
        for port in ports:
            data = tmp_path / f"node-{port}"
            data.mkdir()
            args = [*render_cluster_node_args(binary=ensure_redis_installed(), port=0, data_dir=data),
                    *tls_args(port, data, pki), "--tls-cluster", "yes"]
            procs.append(spawn(f"redis-tls-{port}", args, log=data / "redis.log", cwd=data))
        for port, (popen, _) in zip(ports, procs, strict=True):
            _wait_ready(tmp_path / f"node-{port}" / "redis.log", popen)
        create = subprocess.run(
            ["redis-cli", "--tls", "--cacert", str(pki.ca), "--cert", str(pki.client_cert), "--key",
             str(pki.client_key), "--user", "eventstrata", "--pass", PASSWORD, "--no-auth-warning", "--cluster",
             "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False)
        assert create.returncode == 0, create.stdout[-1500:] + create.stderr[-1500:]
        yield f"rediss://127.0.0.1:{ports[0]}/0", pki
    finally:
        for popen, ref in procs:
            stop(ref, popen=popen)


def _wait_ready(log: Path, popen: Any) -> None:
    deadline = time.monotonic() + 20
    while "Ready to accept connections" not in log.read_text():
        assert popen.poll() is None, tail_text(log)
        assert time.monotonic() < deadline, "TLS redis-server did not start"
        time.sleep(0.05)


def secure(pki: Pki, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"redis_username": "eventstrata", "redis_password": PASSWORD,
                              "redis_tls_ca": str(pki.ca), "redis_tls_cert": str(pki.client_cert),
                              "redis_tls_key": str(pki.client_key)}
    values.update(over)
    return values


def test_ingest_query_tail_and_archive_through_tls_and_acl(
        tls_redis: tuple[str, Pki], settings_factory: Any, kafka_bootstrap: str, tmp_path: Path) -> None:
    url, pki = tls_redis
    stack = QueryStack(url, tmp_path / "api", **secure(pki))
    s = settings_factory(redis_url=url, key_prefix=stack.settings.key_prefix, **secure(pki))
    n = 120

    async def ingest() -> None:
        await produce(kafka_bootstrap, s.topic, [jmsg(native(i, tenant="sec")) for i in range(n)])
        assert await run_until(s, lambda p: p.totals["stored"] >= n) == 0
        # a client without the ACL user's credentials is refused (the default user is off)
        plain = aioredis.Redis.from_url(url, ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.client_cert),
                                        ssl_keyfile=str(pki.client_key))
        with pytest.raises(Exception, match=r"(?i)auth|NOPERM|permission"):
            await plain.dbsize()
        await plain.aclose()
        r = connect_redis(s)
        try:
            assert await r.dbsize() > 0
        finally:
            await r.aclose()

    asyncio.run(ingest())
    stack.start()
    try:
        key = stack.create_key("sec")
        auth = {"Authorization": f"Bearer {key}"}
        body = httpx.get(stack.base_url + "/v1/events", params={"limit": 1000}, headers=auth, timeout=30).json()
        assert len(body["events"]) == n
        # the live tail's readers use their own connections: resume from the start gets every event
        with httpx.stream("GET", stack.base_url + "/v1/tail", params={"after": "0"}, headers=auth,
                          timeout=30) as resp:
            assert resp.status_code == 200
            seen = 0
            for line in resp.iter_lines():
                if line.startswith("id:"):
                    seen += 1
                    if seen == n:
                        break
        assert seen == n
    finally:
        stack.stop()
    asyncio.run(run_archiver(s, once=True))  # the archiver connects the same way (a clean pass)


async def test_wrong_credentials_fail_fast_with_a_clear_error(
        tls_redis: tuple[str, Pki], settings_factory: Any) -> None:
    url, pki = tls_redis
    t0 = time.monotonic()
    for over in ({"redis_password": "wrong"}, {"redis_tls_cert": "", "redis_tls_key": ""}):
        r = connect_redis(settings_factory(redis_url=url, **secure(pki, **over)))
        try:
            with pytest.raises(Exception) as info:
                await asyncio.wait_for(r.ping(), 10)
            assert not isinstance(info.value, TimeoutError)
            assert any(w in str(info.value).lower() for w in ("auth", "password", "ssl", "certificate", "closed",
                                                               "reset")), info.value
        finally:
            await r.aclose()
    assert time.monotonic() - t0 < 10
    with pytest.raises(ValueError, match="rediss"):  # TLS files with a plain URL: refused, never unencrypted
        connect_redis(settings_factory(redis_url=url.replace("rediss", "redis"), **secure(pki)))


def test_redis_cluster_with_tls_and_acl(tls_redis_cluster: tuple[str, Pki], settings_factory: Any,
                                        kafka_bootstrap: str, tmp_path: Path) -> None:
    url, pki = tls_redis_cluster
    stack = QueryStack(url, tmp_path / "api", redis_cluster=True, hot_shards=3, **secure(pki))
    s = settings_factory(redis_url=url, redis_cluster=True, hot_shards=3, key_prefix=stack.settings.key_prefix,
                         **secure(pki))
    n = 90

    async def ingest() -> None:
        await produce(kafka_bootstrap, s.topic, [jmsg(native(i, tenant="sec")) for i in range(n)])
        assert await run_until(s, lambda p: p.totals["stored"] >= n) == 0

    asyncio.run(ingest())
    stack.start()
    try:
        key = stack.create_key("sec")
        body = httpx.get(stack.base_url + "/v1/events", params={"limit": 1000},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        assert len(body["events"]) == n
    finally:
        stack.stop()
