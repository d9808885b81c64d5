"""``StoredEvents``: hot-tier events as they were read, decoded only when looked at. Pure.

A native page of 50 events spends most of its CPU turning stored bodies into ``Event``s and
back into JSON (measured ~10 µs per event: decompress, parse, build, render, serialize). The
commonest pages need neither: the index member gives each event's sort position and id, the
member its positions (``gpos|spos``), and the body's lean payload the rest of the native JSON.
So the hot reader hands the engine this sequence; the merge orders it by ``positions`` and
``ids``; the native API renders it with ``native_json``; anything else that indexes or iterates
it (post-filters, compatible endpoints, the tail's catch-up) gets ``Event``s, decoded once and
kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.model import Event

TimePos = tuple[int, str]
"""``(timestamp, id)``: an event's position in the time sort."""


class StoredEvents(Sequence[Event]):
    """A sequence of stored events, each a body with its ref (``gpos|spos``) and time position.

    Filled by the hot reader with ``add`` while it reads, read-only after it hands
    the sequence on. Indexing decodes the item (``BodyCodec.stored_event``) and keeps the event;
    a slice is a ``StoredEvents`` sharing nothing mutable. Decoding raises ``BodyError`` (or
    ``KeyError``/``TypeError``/``ValueError``) for a corrupt body, at the first access. Not
    thread-safe (the codec is not)."""

    __slots__ = ("_body", "_codec", "_event", "_pos", "_ref")

    def __init__(self, codec: BodyCodec) -> None:
        self._codec = codec
        self._pos: list[TimePos] = []
        self._body: list[bytes] = []
        self._ref: list[bytes | None] = []
        self._event: list[Event | None] = []

    def add(self, pos: TimePos, body: bytes, ref: bytes | None, event: Event | None = None) -> None:
        """Append one item; ``event`` is its decoded form when the reader already has it."""
        self._pos.append(pos)
        self._body.append(body)
        self._ref.append(ref)
        self._event.append(event)

    @property
    def positions(self) -> Sequence[TimePos]:
        """Each item's ``(timestamp, id)``, without decoding."""
        return self._pos

    def native_json(self) -> list[bytes]:
        """Each item's native JSON (``BodyCodec.native_json``), without building events."""
        nj = self._codec.native_json
        return [nj(b, r, p[1], p[0]) for b, r, p in zip(self._body, self._ref, self._pos, strict=True)]

    def __len__(self) -> int:
        return len(self._pos)

    @overload
    def __getitem__(self, i: int) -> Event: ...

    @overload
    def __getitem__(self, i: slice) -> StoredEvents: ...

    def __getitem__(self, i: int | slice) -> Event | StoredEvents:
        if isinstance(i, slice):
            out = StoredEvents(self._codec)
            out._pos = self._pos[i]
            out._body = self._body[i]
            out._ref = self._ref[i]
            out._event = self._event[i]
            return out
        e = self._event[i]
        if e is None:
            ts, eid = self._pos[i]
            e = self._event[i] = self._codec.stored_event(self._body[i], self._ref[i], eid, ts)
        return e

    def __iter__(self) -> Iterator[Event]:
        for i in range(len(self._pos)):
            yield self[i]

    def __repr__(self) -> str:
        return f"StoredEvents({len(self)} events)"
