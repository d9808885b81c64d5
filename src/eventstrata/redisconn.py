"""Building the Redis client of a process (single node or Redis Cluster). The only I/O here
is the connection pool it creates; nothing connects until the first command.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeAlias, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
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


class DirectCommands:
    """One command at a time on connections of its own, made by a single-node client's pool
    (same address, TLS and credentials), without redis-py's per-command layers: its pool's
    lock and checks, retry wrapper, event dispatch and metrics cost ~50 µs of CPU per command
    on this project's machine, more than the rest of a command's client side (~26 µs).

    ``execute`` blocks on Redis and raises the client's ``RedisError``s (error replies
    included; the connection stays usable after one). A connection error or timeout on a
    connection that had been idle (Redis restarted, a failover) is retried once on a new
    connection, like the pool's retry: callers send only idempotent commands. At most
    ``max_connections`` commands run at once; more wait. A command cancelled midway drops its
    connection (its reply may still come)."""

    def __init__(self, pool: BlockingConnectionPool, max_connections: int) -> None:
        self._pool = pool
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def execute(self, *args: Any) -> Any:
        async with self._slots:
            fresh = not self._idle
            conn = self._connect() if fresh else self._idle.pop()
            try:
                return await self._run(conn, args)
            except (ConnectionError, TimeoutError, OSError):
                await conn.disconnect()
                if fresh:
                    raise
                return await self._run(self._connect(), args)

    def _connect(self) -> AbstractConnection:
        # what the pool's make_connection does (untyped there); it connects with its first command
        return self._pool.connection_class(**self._pool.connection_kwargs)

    async def _run(self, conn: AbstractConnection, args: tuple[Any, ...]) -> Any:
        try:
            await conn.send_command(*args)
            res = await conn.read_response()
        except ResponseError:
            self._idle.append(conn)  # an error reply: the connection is in step
            raise
        except BaseException:
            await asyncio.shield(conn.disconnect())
            raise
        self._idle.append(conn)
        return res

    async def close(self) -> None:
        """Close the idle connections (those of commands still running close when they end)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()


class PooledRedis(Redis):
    """The single-node client of ``connect_redis``: redis-py's, plus ``direct`` for the
    one-call reads of the request path (``execute``)."""

    def __init__(self, *, connection_pool: BlockingConnectionPool, max_connections: int) -> None:
        super().__init__(connection_pool=connection_pool)
        self.direct = DirectCommands(connection_pool, max_connections)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self.direct.close()
        await super().aclose(close_connection_pool)


async def execute(redis: RedisClient, *args: Any) -> Any:
    """Send one command: through ``DirectCommands`` when ``redis`` is a ``PooledRedis``, else
    through redis-py's ``execute_command`` (a Cluster client routes it by its first key).
    Blocks on Redis; raises the client's ``RedisError``s."""
    if isinstance(redis, PooledRedis):
        return await redis.direct.execute(*args)
    return await redis.execute_command(*args)


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
    return PooledRedis(connection_pool=pool, max_connections=max_connections)


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
