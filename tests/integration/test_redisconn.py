"""The request path's direct commands (``redisconn.DirectCommands``) against a real Redis: an
error reply, a cancelled command and a connection Redis closed never hand one command's reply
to another, and a stale connection costs no error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from eventstrata.config import Settings
from eventstrata.redisconn import PooledRedis, connect_redis, execute

pytestmark = pytest.mark.integration


def _client(redis_url: str) -> PooledRedis:
    redis = connect_redis(Settings.from_env(env={}, redis_url=redis_url))
    assert isinstance(redis, PooledRedis)
    return redis


async def test_error_replies_and_cancellation_keep_replies_in_step(redis_url: str) -> None:
    redis = _client(redis_url)
    key, empty = f"dc:{uuid.uuid4().hex}", f"dc:{uuid.uuid4().hex}"
    try:
        await execute(redis, "SET", key, "v")
        with pytest.raises(NoScriptError):
            await execute(redis, "EVALSHA", "0" * 40, 0)
        with pytest.raises(ResponseError):
            await execute(redis, "INCR", key)  # not an integer
        assert await execute(redis, "GET", key) == b"v"
        # a command cancelled while Redis has not answered: its connection must not serve the
        # next command (which would then read the first one's reply)
        blocked = asyncio.create_task(execute(redis, "BLPOP", empty, 5))
        await asyncio.sleep(0.2)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        await execute(redis, "RPUSH", empty, "x")
        assert await execute(redis, "GET", key) == b"v"
        assert await execute(redis, "LRANGE", empty, 0, -1) == [b"x"]  # nobody popped it
        # many at once: each gets its own reply
        got = await asyncio.gather(*(execute(redis, "ECHO", str(i)) for i in range(200)))
        assert got == [str(i).encode() for i in range(200)]
    finally:
        await execute(redis, "DEL", key, empty)
        await redis.aclose()


async def test_a_connection_redis_closed_is_replaced_without_an_error(redis_url: str) -> None:
    redis = _client(redis_url)
    admin = Redis.from_url(redis_url)
    name = f"dc-{uuid.uuid4().hex[:8]}"
    try:
        await execute(redis, "CLIENT", "SETNAME", name)  # the one idle connection
        (mine,) = [c for c in await admin.client_list() if c.get("name") == name]
        assert await admin.client_kill_filter(_id=mine["id"]) == 1
        assert await execute(redis, "ECHO", "ok") == b"ok"  # on a new connection
        assert name not in {c.get("name") for c in await admin.client_list()}
    finally:
        await admin.aclose()
        await redis.aclose()
