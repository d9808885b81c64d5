"""Where a tail starts and where its missed events come from. Pure functions.

Positions are tenant global positions (``gpos``) and the SSE ``id:`` of every tail event. They
are dense: the writer gives each new event the next position and appends a write call's new
events as one stream entry holding consecutive positions (``hotstore.tailentry``: entry id =
its last position), so the stream holds the consecutive positions ``F..L`` (``F`` = the first
position of the first entry still kept after ``MINID ~`` trimming). A jump of the positions
(Redis changed nodes) is covered too: its entry names the positions it left empty
(``past_empty``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from eventstrata.errors import ApiError, ErrorDetail

MAX_POSITION = 2**63 - 1
_POSITION = re.compile(r"^\s*(\d{1,19})(?:-0)?\s*$")

Source = Literal["stream", "tiers"]


def parse_position(value: str, *, path: str) -> int:
    """Parse a resume id (``"123"``; the stream form ``"123-0"`` is accepted too).

    Raises ``ApiError(400, "invalid_parameter")`` naming ``path`` for anything else.
    """
    m = _POSITION.match(value)
    if m is None or int(m.group(1)) > MAX_POSITION:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{path} must be a non-negative event position (the id of a tail event)",
            (ErrorDetail(path, f"not a position: {value[:64]!r}"),),
        )
    return int(m.group(1))


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a subscription starts: ``after`` = deliver matching events with ``gpos > after``;
    ``None`` = live only (from the position the hub has reached when the subscriber joins)."""

    after: int | None


def resolve_start(after: str | None, last_event_id: str | None, since_ms: int | None) -> StartPoint:
    """Combine ``?after=``, the ``Last-Event-ID`` header and ``?since=``.

    ``Last-Event-ID`` wins over ``?after=`` (an EventSource reconnects with its original URL,
    so the header is the newer position). ``since`` alone means "from the first stored event
    whose timestamp is >= since, in position order" (after = 0; the time bound itself is part
    of the filter). Nothing given: live only. Raises ``ApiError`` 400 on a malformed id.
    """
    if last_event_id is not None and last_event_id.strip() != "":
        return StartPoint(parse_position(last_event_id, path="Last-Event-ID"))
    if after is not None:
        return StartPoint(parse_position(after, path="after"))
    if since_ms is not None:
        return StartPoint(0)
    return StartPoint(None)


def plan_source(position: int, stream_first: int | None) -> Source:
    """Where to read the events after ``position``: the Redis stream when it still holds
    ``position + 1`` (its first id ``F`` satisfies ``position + 1 >= F``), else the query
    tiers (hot, then cold). An empty or missing stream (``None``) proves nothing: tiers."""
    if stream_first is not None and position + 1 >= stream_first:
        return "stream"
    return "tiers"


def stream_page_is_contiguous(position: int, first: int | None) -> bool:
    """True when a stream read after ``position`` (the entries whose last position is above
    it) starts at or before ``position + 1`` (or is empty): its first entry's first position
    is ``first``. False means the stream was trimmed past ``position`` meanwhile: read the
    tiers."""
    return first is None or first <= position + 1


def past_empty(position: int, empty: Sequence[tuple[int, int]]) -> int:
    """``position`` moved past every range of ``empty`` (``(lo, hi)``, inclusive: positions the
    tail stream says hold no event, ``hotstore.tailentry.Announcement.empty_range``) that holds
    ``position + 1``, so that a reader expecting dense positions passes over a jump."""
    moved = True
    while moved:
        moved = False
        for lo, hi in empty:
            if lo <= position + 1 <= hi:
                position, moved = hi, True
    return position


def needs_catch_up(position: int, floor: int) -> bool:
    """Events ``position < gpos <= floor`` were stored before the live buffer started."""
    return position < floor
