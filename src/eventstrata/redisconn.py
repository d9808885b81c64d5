"""Building the Redis client of a process (single node or Redis Cluster). The only I/O here
is the connection pool it creates; nothing connects until the first command.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any, TypeAlias, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from eventstrata.config import Settings

RedisClient: TypeAlias = Redis | RedisCluster
T = TypeVar("T")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis is unreachable or not serving right now (connection lost or
    refused, timeout, loading its data, a Cluster failover or reconfiguration), as opposed to a
    bug or bad data: callers retry it later (ingest) or answer 503 (API)."""
    if isinstance(exc, ConnectionError | TimeoutError | BusyLoadingError | ClusterDownError | TryAgainError):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(
        ("LOADING", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"))


async def reply(x: Awaitable[T] | T) -> T:
    """Await a redis-py reply. redis-py types many commands as ``Awaitable[X] | X`` (one stub
    for its sync and async clients); on the asyncio clients the value is always awaitable."""
    if inspect.isawaitable(x):
        return await x
    return x


def connect_redis(settings: Settings, *, url: str | None = None, max_connections: int = 256) -> RedisClient:
    """A client for ``settings.redis_url`` (or ``url``); ``RedisCluster`` when
    ``EVENTSTRATA_REDIS_CLUSTER`` is on. Responses are bytes (``decode_responses=False``);
    socket timeouts are off for throughput (pipelined writes from redis-py on a 2-vCPU machine:
    21.5k events/s with a socket timeout, 28-33k without) but connecting times out after 5 s.

    At most ``max_connections`` connections; a caller that finds them all busy waits up to
    10 s for one (then ``redis.exceptions.ConnectionError``). A command that fails with a
    connection error is retried once at once on a new connection: a pooled connection that went
    stale (Redis restarted, a failover) costs no error; every command the product sends is
    idempotent. Raises ``ValueError`` when no URL is configured.
    """
    target = url or settings.redis_url
    if not target:
        raise ValueError("EVENTSTRATA_REDIS_URL is not set (or run `eventstrata dev up`)")
    options = security_options(settings, target)
    if settings.redis_cluster:
        return RedisCluster.from_url(target, socket_connect_timeout=5.0, max_connections=max_connections,
                                     **options)
    # A blocking pool: when every connection is busy a caller waits (up to 10 s) for one
    # instead of failing at once with MaxConnectionsError (a burst of requests or tails).
    pool = BlockingConnectionPool.from_url(
        target, max_connections=max_connections, timeout=10, socket_connect_timeout=5.0,
        socket_timeout=None, health_check_interval=30,
        retry=Retry(NoBackoff(), 1), retry_on_error=[ConnectionError, TimeoutError], **options,
    )
    return Redis(connection_pool=pool)


def security_options(settings: Settings, url: str) -> dict[str, Any]:
    """The redis-py connection options of the ``EVENTSTRATA_REDIS_USERNAME/PASSWORD`` and
    ``EVENTSTRATA_REDIS_TLS_*`` settings (pure): credentials apply when the URL holds none
    (redis-py lets the URL's win); the TLS files only with a ``rediss://`` ``url`` (the
    settings refuse them with a plain ``EVENTSTRATA_REDIS_URL`` at start)."""
    out: dict[str, Any] = {}
    if settings.redis_username:
        out["username"] = settings.redis_username
    if settings.redis_password:
        out["password"] = settings.redis_password
    if url.startswith("rediss://"):
        tls = {"ssl_ca_certs": settings.redis_tls_ca, "ssl_certfile": settings.redis_tls_cert,
               "ssl_keyfile": settings.redis_tls_key}
        out.update({k: v for k, v in tls.items() if v})
    return out
