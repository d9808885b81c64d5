"""Reading stored events back from the hot tier: bodies by ``(ts, id)`` with their positions.

One pipeline per call: one ``HMGET`` of ``b:W`` per window the refs fall in (the window is
derived from each ref's time) and one ``HMGET`` of ``ids`` for the positions (the stored bodies
carry none, see ``codec``). The only I/O is that pipeline; it raises the client's
``RedisError``s, and ``codec.BodyError`` (or ``KeyError``/``TypeError``/``ValueError``) for a
corrupt body.
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
    out: list[Event | None] = [None] * len(refs)
    if not refs:
        return out
    by_window: dict[int, list[int]] = {}
    for i, (ts, _) in enumerate(refs):
        by_window.setdefault(window_start(ts, window_ms), []).append(i)
    pipe = redis.pipeline(transaction=False)
    order = list(by_window.items())
    for w, idx in order:
        pipe.hmget(tk.bodies(w), [refs[i][1] for i in idx])
    pipe.hmget(tk.ids, [eid for _, eid in refs])
    results = await pipe.execute()
    positions = results[-1]
    for (_, idx), values in zip(order, results, strict=False):
        for i, raw in zip(idx, values, strict=True):
            if raw is None:
                continue
            out[i] = codec.stored_event(raw, positions[i])
    return out
