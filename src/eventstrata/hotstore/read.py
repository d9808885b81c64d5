"""Reading stored events back from the hot tier: bodies by ``(ts, id)`` with their positions.

One Redis command per call: the read-only Lua script ``read.lua`` (package data) fetches each
ref's body from ``b:W`` (the window derived from the ref's time) and its ``ids`` record (the
positions; stored bodies carry none, see ``codec``) -- a ref may give only the id, and the
script takes the event's time from its ``ids`` record; ``read_events_then_get`` also has it
``GET`` one string key after those reads, in the same atomic call (the query engine reads the
archive watermark there). Before 2026-12-02 this was a pipeline of one ``HMGET`` per window
plus one for ``ids``: a user's 50 newest events spread over 30+ hourly windows cost 30+
commands to pack, send and parse; the script is one command whatever the spread.

The call is ``EVALSHA``, falling back to ``EVAL`` when the server answers NOSCRIPT (a restart,
a failover, a new Cluster node). The only I/O is that call; it raises the client's
``RedisError``s, and ``codec.BodyError`` (or ``KeyError``/``TypeError``/``ValueError``) for a
corrupt body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.keys import TenantKeys
from eventstrata.model import Event
from eventstrata.redisconn import RedisClient

READ_SCRIPT: bytes = resources.files("eventstrata.hotstore").joinpath("read.lua").read_bytes()
READ_SCRIPT_SHA: str = hashlib.sha1(READ_SCRIPT, usedforsecurity=False).hexdigest()


Ref = tuple[int | None, str]
"""``(ts, id)`` of an event to read; ``ts`` None when only the id is known (a get by id: the
script takes the time from the id's ``ids`` record)."""


async def read_events(redis: RedisClient, tk: TenantKeys, refs: Sequence[Ref], *,
                      window_ms: int, codec: BodyCodec) -> list[Event | None]:
    """The events of ``refs`` in order, None where absent (removed by the archiver meanwhile,
    or never stored)."""
    if not refs:
        return []
    events, _ = await _read(redis, tk, refs, window_ms=window_ms, codec=codec, then_get="")
    return events


async def read_events_then_get(redis: RedisClient, tk: TenantKeys, refs: Sequence[Ref],
                               *, then_get: str, window_ms: int, codec: BodyCodec
                               ) -> tuple[list[Event | None], bytes | None]:
    """``read_events``, and the value of the string key ``then_get`` (which must be one of the
    tenant's keys) read after the bodies, atomically with them."""
    return await _read(redis, tk, refs, window_ms=window_ms, codec=codec, then_get=then_get)


def read_args(tk: TenantKeys, refs: Sequence[Ref], *, window_ms: int, then_get: str) -> list[Any]:
    """The ``ARGV`` of ``read.lua`` for ``refs``. Pure."""
    args: list[Any] = [tk.base, window_ms, then_get]
    for ts, eid in refs:
        args.append("" if ts is None else ts)
        args.append(eid)
    return args


async def _read(redis: RedisClient, tk: TenantKeys, refs: Sequence[Ref], *,
                window_ms: int, codec: BodyCodec, then_get: str
                ) -> tuple[list[Event | None], bytes | None]:
    args = read_args(tk, refs, window_ms=window_ms, then_get=then_get)
    try:
        res: list[Any] = await redis.execute_command("EVALSHA", READ_SCRIPT_SHA, 1, tk.ids, *args)
    except NoScriptError:
        res = await redis.execute_command("EVAL", READ_SCRIPT, 1, tk.ids, *args)
    n = len(refs)
    got: bytes | None = res[2 * n] if len(res) > 2 * n else None
    out: list[Event | None] = [None] * n
    for i in range(n):
        raw = res[2 * i]
        if raw is not None:
            out[i] = codec.stored_event(raw, res[2 * i + 1])
    return out, got
