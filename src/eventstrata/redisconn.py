"""Building the Redis client of a process (single node or Redis Cluster). The only I/O here
is the connection pool it creates; nothing connects until the first command.
"""

from __future__ import annotations

from typing import TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from eventstrata.config import Settings

RedisClient: TypeAlias = Redis | RedisCluster


def connect_redis(settings: Settings, *, url: str | None = None) -> RedisClient:
    """A client for ``settings.redis_url`` (or ``url``); ``RedisCluster`` when
    ``EVENTSTRATA_REDIS_CLUSTER`` is on. Responses are bytes (``decode_responses=False``);
    socket timeouts are off for throughput (LIMITS.md) but connecting times out after 5 s.

    Raises ``ValueError`` when no URL is configured.
    """
    target = url or settings.redis_url
    if not target:
        raise ValueError("EVENTSTRATA_REDIS_URL is not set (or run `eventstrata dev up`)")
    if settings.redis_cluster:
        return RedisCluster.from_url(target, socket_connect_timeout=5.0)
    return Redis.from_url(target, socket_connect_timeout=5.0, socket_timeout=None, health_check_interval=30)
