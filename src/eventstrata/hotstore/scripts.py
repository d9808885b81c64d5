"""The hot tier's Lua scripts (package data) and how they are called.

``write.lua`` stores events (``hotstore.writer``; for a sharded tenant it reserves positions,
stores into each shard and confirms the positions), ``read.lua`` answers every read
(``hotstore.read``), ``remove.lua`` removes archived events (``hotstore.handoff``),
``max_fields.lua`` raises hash fields (the lineage mark, tombstones). Each file's
header is its contract. ``layout.lua`` holds the layout rules the first three share
(constants, id buckets, user sets); ``compose`` puts it in front of each of them. Calls are
``EVALSHA``, falling back to ``EVAL`` when the server answers NOSCRIPT (a restart, a failover,
a new Cluster node).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from eventstrata.redisconn import RedisClient, execute


@dataclass(frozen=True, slots=True)
class Script:
    """A packaged script's source and SHA-1."""

    source: bytes = field(repr=False)
    sha: str


def _read(name: str) -> bytes:
    return resources.files("eventstrata.hotstore").joinpath(name).read_bytes()


LAYOUT = _read("layout.lua")
"""The layout rules shared by the hot-tier scripts (see ``compose``)."""


def compose(source: bytes) -> bytes:
    """``source`` with ``layout.lua`` in front of it, after its flags line (``#!lua ...``, which
    must stay the first line) when it has one. Pure."""
    if source.startswith(b"#!"):
        flags, _, rest = source.partition(b"\n")
        return flags + b"\n" + LAYOUT + rest
    return LAYOUT + source


def load(name: str, *, layout: bool = True) -> Script:
    """The packaged script ``name`` (composed with ``layout.lua`` when ``layout``)."""
    source = _read(name)
    if layout:
        source = compose(source)
    return Script(source, hashlib.sha1(source, usedforsecurity=False).hexdigest())


WRITE = load("write.lua")
READ = load("read.lua")
REMOVE = load("remove.lua")
MAX_FIELDS = load("max_fields.lua", layout=False)


async def call(redis: RedisClient, script: Script, key: str, args: Sequence[Any]) -> Any:
    """Run ``script`` with one key (the one that routes the call to its Cluster slot). Blocks
    on Redis; raises the client's ``RedisError``s (error replies included)."""
    try:
        return await execute(redis, "EVALSHA", script.sha, 1, key, *args)
    except NoScriptError:
        return await execute(redis, "EVAL", script.source, 1, key, *args)
