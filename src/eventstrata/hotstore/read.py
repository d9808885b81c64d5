"""Reading stored events back from the hot tier: bodies by ``(ts, id)`` with their positions.

One Redis command per call: the read-only Lua script ``read.lua`` (package data) fetches each
ref's body from ``b:W`` (the window derived from the ref's time) and its ``ids`` record (the
positions; stored bodies carry none, see ``codec``) -- a ref may give only the id, and the
script takes the event's time from its ``ids`` record; ``read_stored`` can also have it ``GET``
one string key after those reads, in the same atomic call (the query engine reads the archive
watermark there). Before 2026-12-02 this was a pipeline of one ``HMGET`` per window
plus one for ``ids``: a user's 50 newest events spread over 30+ hourly windows cost 30+
commands to pack, send and parse; the script is one command whatever the spread.

``read_first_page`` is the newest-first first page of one index key in one call
(``page.lua``: the archive watermark, the key's range clamped at it, and the first bodies), for
the query engine's commonest request. It and ``read_stored`` return the bodies undecoded (the
query engine decodes only what it must, see ``hotstore.stored``); ``read_events`` decodes.

The call is ``EVALSHA``, falling back to ``EVAL`` when the server answers NOSCRIPT (a restart,
a failover, a new Cluster node). The only I/O is that call; it raises the client's
``RedisError``s, and the decoding ones ``codec.BodyError`` (or ``KeyError``/``TypeError``/
``ValueError``) for a corrupt body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.keys import TenantKeys
from eventstrata.model import Event
from eventstrata.redisconn import RedisClient

READ_SCRIPT: bytes = resources.files("eventstrata.hotstore").joinpath("read.lua").read_bytes()
READ_SCRIPT_SHA: str = hashlib.sha1(READ_SCRIPT, usedforsecurity=False).hexdigest()
PAGE_SCRIPT: bytes = resources.files("eventstrata.hotstore").joinpath("page.lua").read_bytes()
PAGE_SCRIPT_SHA: str = hashlib.sha1(PAGE_SCRIPT, usedforsecurity=False).hexdigest()


Ref = tuple[int | None, str]
"""``(ts, id)`` of an event to read; ``ts`` None when only the id is known (a get by id: the
script takes the time from the id's ``ids`` record)."""


Stored = tuple[bytes | None, bytes | None]
"""What a read returns per ref: the stored body (None when absent) and its ``ids`` record."""


async def read_events(redis: RedisClient, tk: TenantKeys, refs: Sequence[Ref], *,
                      window_ms: int, codec: BodyCodec) -> list[Event | None]:
    """The events of ``refs`` in order, None where absent (removed by the archiver meanwhile,
    or never stored)."""
    if not refs:
        return []
    stored, _ = await read_stored(redis, tk, refs, window_ms=window_ms, then_get="")
    return [None if b is None else codec.stored_event(b, r) for b, r in stored]


def read_args(tk: TenantKeys, refs: Sequence[Ref], *, window_ms: int, then_get: str) -> list[Any]:
    """The ``ARGV`` of ``read.lua`` for ``refs``. Pure."""
    args: list[Any] = [tk.base, window_ms, then_get]
    for ts, eid in refs:
        args.append("" if ts is None else ts)
        args.append(eid)
    return args


async def read_stored(redis: RedisClient, tk: TenantKeys, refs: Sequence[Ref], *, window_ms: int,
                      then_get: str) -> tuple[list[Stored], bytes | None]:
    """The stored bodies and ``ids`` records of ``refs`` (undecoded: see ``hotstore.stored``),
    and the value of ``then_get`` (``""``: none) read after them, atomically."""
    args = read_args(tk, refs, window_ms=window_ms, then_get=then_get)
    res = await _script(redis, READ_SCRIPT, READ_SCRIPT_SHA, tk.ids, args)
    n = len(refs)
    got: bytes | None = res[2 * n] if len(res) > 2 * n else None
    return [(res[2 * i], res[2 * i + 1]) for i in range(n)], got


@dataclass(frozen=True, slots=True)
class FirstPage:
    """What ``read_first_page`` read, in one atomic call: the archive watermark ``w``, the
    index members (newest first) of the range clamped at ``w``, and the stored bodies of the
    first ``len(stored)`` of them (undecoded; a body None where absent)."""

    w: int
    members: list[bytes]
    stored: list[Stored]


async def read_first_page(redis: RedisClient, tk: TenantKeys, key: str, *, lo: int, hi: int | None,
                          limit: int, bodies: int, window_ms: int) -> FirstPage:
    """``page.lua``: W, then ``key``'s newest ``limit`` members with score in ``[max(lo, W),
    hi)``, then the bodies of the first ``bodies`` of them -- one Redis call instead of a GET,
    a range read and a body read. ``key`` must be one of the tenant's index keys."""
    args = [tk.base, window_ms, lo, "" if hi is None else hi, limit, bodies]
    res = await _script(redis, PAGE_SCRIPT, PAGE_SCRIPT_SHA, key, args)
    n = int(res[1])
    members: list[bytes] = res[2:2 + n]
    rest = res[2 + n:]
    return FirstPage(int(res[0]), members, [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)])


async def _script(redis: RedisClient, script: bytes, sha: str, key: str, args: Sequence[Any]) -> Any:
    """EVALSHA, and EVAL when the server does not have the script (NOSCRIPT)."""
    try:
        return await redis.execute_command("EVALSHA", sha, 1, key, *args)
    except NoScriptError:
        return await redis.execute_command("EVAL", script, 1, key, *args)
