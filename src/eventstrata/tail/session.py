"""One subscriber's sequence of tail items: catch-up, then live, with lag recovery.

The KurrentDB catch-up-subscription model:

1. the subscriber is registered with the hub first (``TailHub.subscribe``), so its buffer
   receives every matching event with ``gpos > floor`` (``floor`` = the reader's head when it
   joined);
2. while ``position < floor`` it catches up from storage (``CatchUp.read_page``: the stream
   while it still holds the positions, else the query tiers), page by page, in position order;
   a page read after joining that finds nothing more proves everything ``<= floor`` was sent;
3. it then drains the buffer, skipping ``gpos <= position`` — exactly once, no gap.

Backpressure: when the buffer overflowed while live, the session emits ``Lagged(position, head)``,
resets the buffer (new ``floor`` = current head) and goes back to step 2 from ``position``. An
overflow during catch-up just resets the buffer and catches up further (the client is not live
yet, so there is nothing to tell it). Idle live subscribers get ``Heartbeat(position)`` every
``heartbeat_s``: ``position`` is the reader's head when the buffer is empty, so an idle filtered
tail learns how far it has got. On hub shutdown the session ends with ``Reconnect(position)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import Counter
from redis.exceptions import RedisError

from eventstrata.errors import ApiError
from eventstrata.tail.buffer import TailEntry
from eventstrata.tail.catchup import CatchUp, CatchUpUnavailable, TierCursor
from eventstrata.tail.hub import Subscriber, TailHub
from eventstrata.tail.resume import StartPoint, needs_catch_up

log = logging.getLogger(__name__)

LAGGED = Counter("eventstrata_tail_lagged_total", "Lagged signals sent to live-tail subscribers.")
CATCHUP_PAGES = Counter("eventstrata_tail_catchup_pages_total", "Catch-up pages read.", ["source"])
CATCHUP_RETRIES = Counter("eventstrata_tail_catchup_retries_total", "Catch-up reads retried after an error.")


@dataclass(frozen=True, slots=True)
class EventItem:
    entry: TailEntry


@dataclass(frozen=True, slots=True)
class Lagged:
    """The subscriber fell behind: ``position`` = last position delivered (or proven covered),
    ``head`` = the newest position stored. Catch-up from ``position`` follows."""

    position: int
    head: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    position: int


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The server is shutting down; reconnect with ``after=position``."""

    position: int


@dataclass(frozen=True, slots=True)
class TailFailed:
    """The tail cannot continue (e.g. catch-up impossible); the stream ends after this item."""

    status: int
    code: str
    message: str
    position: int


TailItem = EventItem | Lagged | Heartbeat | Reconnect | TailFailed


class TailSession:
    """Iterate ``items()`` once. The caller owns ``sub`` and must ``hub.unsubscribe(sub)``
    when done (also when the iteration is cancelled)."""

    def __init__(
        self,
        hub: TailHub,
        sub: Subscriber,
        start: StartPoint,
        catchup: CatchUp,
        *,
        heartbeat_s: float = 15.0,
        retry_limit: int = 5,
    ) -> None:
        self._hub = hub
        self._sub = sub
        self._start = start
        self._catchup = catchup
        self._heartbeat_s = heartbeat_s
        self._retry_limit = retry_limit
        self.position = 0
        """The last position delivered or proven covered (the resume id)."""

    @property
    def subscriber(self) -> Subscriber:
        return self._sub

    async def items(self) -> AsyncIterator[TailItem]:
        """The subscriber's items, in position order; never returns an event twice, never skips
        one silently. Ends after ``Reconnect`` or ``TailFailed``; otherwise runs until cancelled."""
        hub, sub = self._hub, self._sub
        await sub.ready.wait()
        if hub.closing:
            yield Reconnect(self._start.after or 0)
            return
        buf = sub.buffer
        self.position = buf.floor if self._start.after is None else self._start.after
        live = False
        errors = 0
        resume: TierCursor | None = None
        while True:
            if hub.closing:
                yield Reconnect(self.position)
                return
            if buf.overflowed:
                head = hub.head(sub.tenant)
                if live:
                    LAGGED.inc()
                    yield Lagged(self.position, head)
                    live = False
                buf.reset(head)
            if needs_catch_up(self.position, buf.floor):
                try:
                    page = await self._catchup.read_page(sub.tenant, sub.filter, self.position, resume)
                    errors = 0
                except CatchUpUnavailable as exc:
                    yield TailFailed(410, "position_unavailable", str(exc), self.position)
                    return
                except ApiError as exc:
                    yield TailFailed(exc.status, exc.code, exc.message, self.position)
                    return
                except (RedisError, OSError) as exc:
                    errors += 1
                    CATCHUP_RETRIES.inc()
                    if errors > self._retry_limit:
                        yield TailFailed(503, "unavailable", f"catch-up read failed: {exc}", self.position)
                        return
                    log.warning("tail catch-up for %s failed (%s); retry %d", sub.tenant, exc, errors)
                    await asyncio.sleep(min(0.05 * 2**errors, 2.0))
                    continue
                CATCHUP_PAGES.labels(page.source).inc()
                resume = page.resume
                for entry in page.entries:
                    if entry.gpos > self.position:
                        self.position = entry.gpos
                        yield EventItem(entry)
                self.position = max(self.position, page.position)
                if page.exhausted:
                    self.position = max(self.position, buf.floor)
                continue
            live = True
            resume = None
            popped = buf.pop()
            if popped is not None:
                if popped.gpos > self.position:
                    self.position = popped.gpos
                    yield EventItem(popped)
                continue
            sub.wake.clear()
            try:
                async with asyncio.timeout(self._heartbeat_s):  # no task per wait (unlike wait_for)
                    await sub.wake.wait()
            except TimeoutError:
                if len(buf) == 0 and not buf.overflowed and not hub.closing:
                    self.position = max(self.position, hub.head(sub.tenant))
                    yield Heartbeat(self.position)
