"""Reading stored events back from the hot tier: bodies by ``(ts, id)`` with their positions.

One pipeline per call: one ``HMGET`` of ``b:W`` per window the refs fall in (the window is
derived from each ref's time) and one ``HMGET`` of ``ids`` for the positions (the stored bodies
carry none, see ``codec``); ``read_events_then_get`` adds one ``GET`` at the end of the same
pipeline, executed after the reads (the query engine reads the archive watermark there). The
only I/O is that pipeline; it raises the client's ``RedisError``s, and ``codec.BodyError`` (or
``KeyError``/``TypeError``/``ValueError``) for a corrupt body.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.keys import TenantKeys
from eventstrata.model import Event
from eventstrata.redisconn import RedisClient
from eventstrata.timeutil import window_start


async def read_events(redis: RedisClient, tk: TenantKeys, refs: Sequence[tuple[int, str]], *,
                      window_ms: int, codec: BodyCodec) -> list[Event | None]:
    """The events of ``refs`` (``(ts, id)`` pairs) in order, None where absent (removed by the
    archiver meanwhile, or never stored)."""
    if not refs:
        return []
    events, _ = await _read(redis, tk, refs, window_ms=window_ms, codec=codec, then_get=None)
    return events


async def read_events_then_get(redis: RedisClient, tk: TenantKeys, refs: Sequence[tuple[int, str]],
                               *, then_get: str, window_ms: int, codec: BodyCodec
                               ) -> tuple[list[Event | None], bytes | None]:
    """``read_events``, and the value of the string key ``then_get`` read after the bodies in
    the same pipeline (commands of a pipeline run in order on one connection)."""
    return await _read(redis, tk, refs, window_ms=window_ms, codec=codec, then_get=then_get)


async def _read(redis: RedisClient, tk: TenantKeys, refs: Sequence[tuple[int, str]], *,
                window_ms: int, codec: BodyCodec, then_get: str | None
                ) -> tuple[list[Event | None], bytes | None]:
    out: list[Event | None] = [None] * len(refs)
    by_window: dict[int, list[int]] = {}
    for i, (ts, _) in enumerate(refs):
        by_window.setdefault(window_start(ts, window_ms), []).append(i)
    pipe = redis.pipeline(transaction=False)
    order = list(by_window.items())
    for w, idx in order:
        pipe.hmget(tk.bodies(w), [refs[i][1] for i in idx])
    if refs:
        pipe.hmget(tk.ids, [eid for _, eid in refs])
    if then_get is not None:
        pipe.get(then_get)
    results = await pipe.execute()
    got: bytes | None = results.pop() if then_get is not None else None
    if not refs:
        return out, got
    positions = results[-1]
    for (_, idx), values in zip(order, results, strict=False):
        for i, raw in zip(idx, values, strict=True):
            if raw is None:
                continue
            out[i] = codec.stored_event(raw, positions[i])
    return out, got
