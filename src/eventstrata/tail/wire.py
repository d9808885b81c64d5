"""Framing of tail items for Server-Sent Events and WebSocket. Pure.

SSE (``text/event-stream``):

- event: ``id: <gpos>`` + ``data: <event JSON, native API shape>`` (event type ``message``);
- ``event: lagged`` with ``data: {"position": P, "head": H}`` (catch-up from P follows);
- heartbeat: a comment line ``: heartbeat`` (keeps proxies from closing the connection) plus
  ``event: heartbeat``, ``id: <position>`` and ``data: {"position": P}``, so an idle filtered
  tail's ``Last-Event-ID`` advances to the position it has provably covered;
- ``event: reconnect`` with ``data: {"position": P}`` and ``retry: 1000`` before a shutdown;
- ``event: error`` with the native error body plus ``position`` when the tail cannot go on.

WebSocket: one JSON text message per item, ``{"type": "event", "id": G, "event": {...}}``,
``{"type": "lagged", "position": P, "head": H}``, ``{"type": "heartbeat", "position": P}``,
``{"type": "reconnect", "position": P}``, ``{"type": "error", "error": {...}, "position": P}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from eventstrata.tail.session import EventItem, Heartbeat, Lagged, Reconnect, TailFailed, TailItem


def _single_line(raw: bytes) -> bytes:
    if b"\n" in raw or b"\r" in raw:
        return orjson.dumps(orjson.loads(raw))
    return raw


def _error_body(item: TailFailed) -> dict[str, object]:
    return {"error": {"code": item.code, "message": item.message, "details": []}, "position": item.position}


def sse_frame(item: TailItem) -> bytes:
    """One SSE message (ends with a blank line)."""
    if isinstance(item, EventItem):
        return b"id: %d\ndata: %s\n\n" % (item.entry.gpos, _single_line(item.entry.raw))
    if isinstance(item, Heartbeat):
        pos = item.position
        return b': heartbeat\nevent: heartbeat\nid: %d\ndata: {"position":%d}\n\n' % (pos, pos)
    if isinstance(item, Lagged):
        return b'event: lagged\ndata: {"position":%d,"head":%d}\n\n' % (item.position, item.head)
    if isinstance(item, Reconnect):
        return b'event: reconnect\nretry: 1000\ndata: {"position":%d}\n\n' % item.position
    return b"event: error\ndata: %s\n\n" % orjson.dumps(_error_body(item))


def ws_message(item: TailItem) -> bytes:
    """One WebSocket JSON text message (UTF-8 bytes)."""
    if isinstance(item, EventItem):
        return b'{"type":"event","id":%d,"event":%s}' % (item.entry.gpos, item.entry.raw)
    if isinstance(item, Heartbeat):
        return b'{"type":"heartbeat","position":%d}' % item.position
    if isinstance(item, Lagged):
        return b'{"type":"lagged","position":%d,"head":%d}' % (item.position, item.head)
    if isinstance(item, Reconnect):
        return b'{"type":"reconnect","position":%d}' % item.position
    return orjson.dumps({"type": "error", **_error_body(item)})


@dataclass(frozen=True, slots=True)
class SseMessage:
    """One dispatched SSE message (``event`` defaults to ``message``; ``id`` as last set)."""

    event: str
    data: str
    id: str | None


class SseParser:
    """Incremental ``text/event-stream`` parser (the WHATWG algorithm, minus ``retry``).
    Feed decoded text chunks; get the complete messages. Pure."""

    __slots__ = ("_buf", "_data", "_event", "_last_id")

    def __init__(self) -> None:
        self._buf = ""
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None

    @property
    def last_id(self) -> str | None:
        return self._last_id

    def feed(self, text: str) -> list[SseMessage]:
        self._buf += text
        out: list[SseMessage] = []
        while True:
            cut = self._buf.find("\n")
            if cut < 0:
                return out
            line, self._buf = self._buf[:cut].rstrip("\r"), self._buf[cut + 1 :]
            if line == "":
                if self._data:
                    out.append(SseMessage(self._event or "message", "\n".join(self._data), self._last_id))
                self._data, self._event = [], ""
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._last_id = value
