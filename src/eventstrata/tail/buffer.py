"""The bounded buffer of one live-tail subscriber. Pure: no I/O, no clock, no asyncio.

The hub's reader pushes every matching live event into it; the subscriber's session pops.
When a push finds the buffer full the buffer switches to *overflowed*: it keeps what it holds
but accepts nothing more until ``reset``. Overflow is never silent: the session sees the flag,
tells the client it ``lagged`` and catches up from storage from its last delivered position
(see docs/ARCHITECTURE.md "Live tail").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import orjson

from eventstrata.model import Event
from eventstrata.native_shape import native_event


@dataclass(frozen=True, slots=True)
class TailEntry:
    """One stored event as the tail sees it: its global position, the event, and ``raw`` = its
    JSON in the native API shape (``native_shape.native_event``), rendered once per event and
    shared by every subscriber."""

    gpos: int
    event: Event
    raw: bytes


def make_entry(gpos: int, event: Event) -> TailEntry:
    """A ``TailEntry`` with the event rendered once in the native shape."""
    return TailEntry(gpos, event, orjson.dumps(native_event(event)))


class SubscriberBuffer:
    """A FIFO of at most ``capacity`` entries with an overflow flag.

    ``floor`` is the position from which the buffer is complete: every matching event with
    ``gpos > floor`` pushed since the last ``reset`` is in the buffer (or ``overflowed`` is set).
    """

    __slots__ = ("_items", "capacity", "dropped", "floor", "overflowed")

    def __init__(self, capacity: int, floor: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.floor = floor
        self.overflowed = False
        self.dropped = 0
        self._items: deque[TailEntry] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, entry: TailEntry) -> bool:
        """Append ``entry``; False (and ``overflowed`` set, ``dropped`` counted) when full."""
        if self.overflowed or len(self._items) >= self.capacity:
            self.overflowed = True
            self.dropped += 1
            return False
        self._items.append(entry)
        return True

    def pop(self) -> TailEntry | None:
        """The oldest entry, or None when empty."""
        return self._items.popleft() if self._items else None

    def reset(self, floor: int) -> None:
        """Empty the buffer and clear the overflow flag; it is complete again from ``floor``."""
        self._items.clear()
        self.overflowed = False
        self.floor = floor
