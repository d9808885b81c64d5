"""Per-key rate limits, shared by every API process through Redis.

Each API key has, per kind of use, a budget per one-second window: ``reads`` (requests to the
native read routes, the compatible endpoints and the tail), ``ingest`` (``POST /v1/ingest``
requests) and ``ingest_events`` (events in them). A use adds its cost to the key's counter of
the current window (``KeyLayout.rate``: ``INCRBY`` + ``EXPIRE`` in one pipelined round trip);
when the counter passes the budget the request is refused with 429 and ``Retry-After``: the
seconds until the window ends (at least 1). Windows are fixed (aligned on the second), so a
client may reach twice the budget across a window boundary; over any two seconds it gets at
most three budgets. A budget of 0 turns that limit off and costs no Redis call.

``window_of`` and ``retry_after_s`` are pure; ``RateLimiter.spend`` blocks on Redis and raises
its ``RedisError``s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from eventstrata.keys import KeyLayout

if TYPE_CHECKING:  # redisconn imports config, which imports Budgets from here
    from eventstrata.redisconn import RedisClient

Kind = Literal["reads", "ingest", "ingest_events"]
WINDOW_MS = 1000


@dataclass(frozen=True, slots=True)
class Budgets:
    """Uses allowed per key and second, per kind; 0 = unlimited."""

    reads: int = 0
    ingest: int = 0
    ingest_events: int = 0

    def of(self, kind: Kind) -> int:
        budget: int = getattr(self, kind)
        return budget


def window_of(now_ms: int) -> int:
    """The window holding ``now_ms``."""
    return now_ms // WINDOW_MS


def retry_after_s(now_ms: int) -> int:
    """Whole seconds until the window holding ``now_ms`` ends (at least 1)."""
    return max(1, math.ceil((WINDOW_MS - now_ms % WINDOW_MS) / 1000))


class RateLimited(Exception):
    """A key spent its budget of ``kind`` in this window; retry after ``retry_after`` seconds."""

    def __init__(self, kind: Kind, budget: int, retry_after: int) -> None:
        super().__init__(f"rate limit: at most {budget:,} {kind.replace('_', ' ')} per second for this key")
        self.kind = kind
        self.budget = budget
        self.retry_after = retry_after


class RateLimiter:
    """Spends a key's budgets (see the module docstring). Stateless apart from the client."""

    def __init__(self, redis: RedisClient, layout: KeyLayout, budgets: Budgets) -> None:
        self._redis = redis
        self._layout = layout
        self.budgets = budgets

    async def spend(self, lookup: str, kind: Kind, now_ms: int, cost: int = 1) -> None:
        """Add ``cost`` uses of ``kind`` for the key ``lookup`` at ``now_ms``. Raises
        ``RateLimited`` when the window's total passes the budget (the cost stays counted: a
        client that keeps sending stays refused until the window ends). No Redis call when the
        kind is unlimited."""
        budget = self.budgets.of(kind)
        if budget <= 0:
            return
        key = self._layout.rate(lookup, kind, window_of(now_ms))
        pipe = self._redis.pipeline(transaction=False)
        pipe.incrby(key, cost)
        pipe.pexpire(key, 2 * WINDOW_MS)
        total, _ = await pipe.execute()
        if int(total) > budget:
            raise RateLimited(kind, budget, retry_after_s(now_ms))
