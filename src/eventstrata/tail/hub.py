"""The tail hub: one Redis stream reader per tenant with subscribers in this process, fanning
out in-process to every matching subscriber's bounded buffer.

Design (defended in docs/ARCHITECTURE.md "Live tail"):

- One reader task per tenant, each blocking on the tenant's tail stream (``XREAD BLOCK``,
  ``hotstore.tailentry.announced_after``) from the last position it has seen. A blocking call
  holds one pooled connection while it waits, so the process uses one Redis connection per
  *tenant with subscribers*, never one per subscriber. Readers
  are per tenant (not one XREAD over many keys) because a tenant's keys live in the tenant's
  own Cluster slot: a multi-key XREAD across slots is a CROSSSLOT error in Redis Cluster, and a
  busy tenant never delays another tenant's delivery.
- Each stream entry announces the new events of one write call (``hotstore.tailentry``: id
  ``<last gpos>-0`` and their count); the reader reads the announced events from the hot tier
  by position (one call per read of the stream), decodes each once and matches it once per
  distinct filter (subscribers with equal filters share the evaluation).
- Positions are dense (every new event gets the next gpos, and entries hold consecutive ones;
  an entry after a jump of the positions names the ones it left empty, which the reader passes
  over), so the reader notices when the stream was trimmed past it (the first position of the
  next entry > last + 1): every subscriber of that tenant is then marked overflowed and catches
  up from the query tiers — a gap is never silent.

``subscribe``/``unsubscribe`` are synchronous and run on the event loop, as does the reader's
fan-out, so a subscriber's ``floor`` (the head at the moment it joined) is exact: every event
with ``gpos <= floor`` was already stored, every later one reaches its buffer.

Readers are stopped, never cancelled in the middle of a Redis command: a reader runs while it
is its tenant state's ``task``; a tenant's last ``unsubscribe`` and ``request_stop`` clear that,
and the reader leaves when its current ``XREAD`` returns (within ``block_ms``). Cancelling a
blocking read makes redis-py drop the connection, and with a client-side socket timeout on
Python 3.11 the cancellation could be lost inside redis-py's read (its timeout context and
retries), leaving ``stop`` waiting for ever on a reader that kept reading: seen in the
integration tests under CPU load, the reader task "cancelling" but still awaiting socket data.
``stop`` cancels only a reader that outlives that bound, and waits for it at most
``CANCEL_WAIT_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from eventstrata.errors import ApiError
from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.interface import HotStore
from eventstrata.hotstore.tailentry import Announcement, empty_ranges
from eventstrata.query.filters import EventFilter
from eventstrata.tail.buffer import SubscriberBuffer, TailEntry, make_entry
from eventstrata.tail.resume import past_empty
from eventstrata.tail.routing import FilterIndex

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 1.0
"""How long ``TailHub.stop`` waits for a reader it had to cancel."""

READER_ERRORS = Counter("eventstrata_tail_reader_errors_total", "Tail stream read errors (retried).")
BAD_ENTRIES = Counter("eventstrata_tail_bad_entries_total",
                      "Tail stream entries, and events they announce, that failed to decode.")
STREAM_GAPS = Counter("eventstrata_tail_stream_gaps_total",
                      "Times a tail reader found the stream trimmed past its position.")
READERS_STUCK = Counter("eventstrata_tail_readers_stuck_total",
                        "Tail readers that did not stop within the bound at hub shutdown.")
DELIVERED = Counter("eventstrata_tail_live_events_total", "Live events pushed into subscriber buffers.")
SUBSCRIBERS = Gauge("eventstrata_tail_subscribers", "Live-tail subscribers (all API processes of a serve).",
                    multiprocess_mode="livesum")


_CODEC = BodyCodec()  # tail readers and catch-up run on the event loop: one context is enough


SEQ_PAGE = 1000
"""Positions read per call when a reader or a catch-up resolves announced positions."""


async def events_between(store: HotStore, tenant: str, after: int, last: int,
                         empty: Sequence[tuple[int, int]] = ()) -> list[TailEntry] | None:
    """The stored events with positions ``after < gpos <= last``, in position order, read from
    the hot tier by position (``HotStore.by_position``, one call per ``SEQ_PAGE``); None when
    one of them is not there (an event archived since, or removed): the caller reads that
    stretch from the query tiers. ``empty``: ranges ``(lo, hi)`` of positions the tail stream
    says hold no event (``Announcement.empty_range``: a jump), passed over. A body that does
    not decode is logged, counted and skipped. Raises the store's errors."""
    out: list[TailEntry] = []
    pos = past_empty(after, empty)
    while pos < last:
        rows = await store.by_position(tenant, after=pos, order="asc", limit=min(SEQ_PAGE, last - pos),
                                       greatest=last)
        for sr in rows:
            if sr.gpos != pos + 1 or sr.row is None:
                return None
            pos = past_empty(sr.gpos, empty)
            try:
                row = sr.row
                out.append(make_entry(sr.gpos, _CODEC.stored_event(row.body, row.ref, row.id, row.ts)))
            except (ValueError, KeyError, TypeError) as exc:
                BAD_ENTRIES.inc()
                log.error("tenant %s: the stored event at position %d does not decode (%s); skipped",
                          tenant, sr.gpos, exc)
        if not rows:
            return None
    return out


class Subscriber:
    """One live subscriber: tenant, filter, bounded buffer and a wake-up signal.

    Created only by ``TailHub.subscribe``. ``ready`` is set once ``buffer.floor`` is valid.
    """

    __slots__ = ("buffer", "filter", "id", "ready", "tenant", "wake")

    def __init__(self, sid: int, tenant: str, flt: EventFilter, capacity: int) -> None:
        self.id = sid
        self.tenant = tenant
        self.filter = flt
        self.buffer = SubscriberBuffer(capacity)
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()


def _filter_key(sub: Subscriber) -> Hashable:
    try:
        hash(sub.filter)
    except TypeError:  # data_eq holding a dict/list value: not hashable, evaluate on its own
        return ("subscriber", sub.id)
    return sub.filter


@dataclass(slots=True)
class _TenantState:
    tenant: str
    index: FilterIndex = field(default_factory=FilterIndex)
    count: int = 0
    head: int = 0
    ready: bool = False
    task: asyncio.Task[None] | None = None
    """The tenant's reader; a reader that is no longer this leaves after its current read."""


class TailHub:
    """Per-process fan-out of the tenants' tail streams. Start with ``start``, stop with ``stop``.

    ``store`` is the hot tier the readers read (``HotStore``; for Redis, on a client whose pool
    is the readers' own: each blocked read holds a connection); ``block_ms`` bounds how long a
    reader blocks per read; ``read_count`` the entries per read; ``buffer_capacity`` the size
    of each subscriber's buffer; ``max_subscribers`` the per-tenant limit (429 beyond).
    """

    def __init__(
        self,
        store: HotStore,
        *,
        max_subscribers: int,
        buffer_capacity: int = 10_000,
        block_ms: int = 1000,
        read_count: int = 1000,
        retry_max_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.max_subscribers = max_subscribers
        self.buffer_capacity = buffer_capacity
        self._block_ms = block_ms
        self._read_count = read_count
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._tenants: dict[str, _TenantState] = {}
        self._readers: set[asyncio.Task[None]] = set()  # every reader task not yet finished
        self._next_id = 0
        self.closing = False
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Allow subscriptions. Readers start lazily with a tenant's first subscriber."""
        self.closing = False
        self.started = True

    async def stop(self, grace_s: float = 2.0) -> None:
        """Clean shutdown: refuse new subscribers, wake every subscriber so its session sends
        ``reconnect`` and ends, wait up to ``grace_s`` for them to leave, then wait for the
        readers to leave (each within its current ``XREAD``'s ``block_ms``); a reader still
        running after that is cancelled and waited for at most ``CANCEL_WAIT_S`` (logged and
        counted if even that fails). Idempotent; never raises, never waits unboundedly."""
        self.request_stop()
        deadline = self._clock() + grace_s
        while self.subscriber_count() and self._clock() < deadline:
            await asyncio.sleep(0.02)
        readers = set(self._readers)
        if readers:
            _done, pending = await asyncio.wait(readers, timeout=self._block_ms / 1000 + 1.0)
            for task in pending:
                task.cancel()
            if pending:
                _done, stuck = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
                for task in stuck:
                    READERS_STUCK.inc()
                    log.error("tail reader %s did not stop after cancellation; abandoned", task.get_name())
            for task in readers:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("tail reader %s ended with %r", task.get_name(), task.exception())
        self.started = False

    def request_stop(self) -> None:
        """Synchronous first half of ``stop``: refuse new subscribers and wake every session so
        it sends ``reconnect`` and ends. Safe to call from a signal handler scheduled on the loop."""
        self.closing = True
        for state in list(self._tenants.values()):
            state.task = None  # the reader leaves after its current read
            for group in state.index.groups.values():
                for sub in group.subs.values():
                    sub.wake.set()
                    sub.ready.set()

    # -- subscriptions -------------------------------------------------------------------
    def subscribe(self, tenant: str, flt: EventFilter, *, capacity: int | None = None) -> Subscriber:
        """Register a subscriber (synchronous; call on the event loop before responding).

        Raises ``ApiError(429, "too_many_subscribers")`` beyond ``max_subscribers`` for the
        tenant and ``ApiError(503, "shutting_down")`` while the hub is stopping or stopped.
        """
        if self.closing or not self.started:
            raise ApiError(503, "shutting_down", "the live tail is not accepting subscribers; retry shortly")
        state = self._tenants.get(tenant)
        if state is None:
            state = _TenantState(tenant)
            self._tenants[tenant] = state
        if state.count >= self.max_subscribers:
            raise ApiError(
                429,
                "too_many_subscribers",
                f"this tenant already has {state.count} live-tail subscribers on this server "
                f"(limit {self.max_subscribers})",
            )
        self._next_id += 1
        sub = Subscriber(self._next_id, tenant, flt, capacity or self.buffer_capacity)
        key = _filter_key(sub)
        group = state.index.add(key, flt)
        group.subs[sub.id] = sub
        state.count += 1
        SUBSCRIBERS.inc()
        if state.ready:
            sub.buffer.reset(state.head)
            sub.ready.set()
        if state.task is None or state.task.done():
            state.ready = False
            task = asyncio.get_running_loop().create_task(self._run_reader(state),
                                                          name=f"tail-reader:{tenant}")
            state.task = task
            self._readers.add(task)
            task.add_done_callback(self._readers.discard)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Remove ``sub`` (idempotent). The tenant's reader stops with its last subscriber."""
        state = self._tenants.get(sub.tenant)
        if state is None:
            return
        key = _filter_key(sub)
        group = state.index.groups.get(key)
        if group is None or group.subs.pop(sub.id, None) is None:
            return
        if not group.subs:
            state.index.remove(key)
        state.count -= 1
        SUBSCRIBERS.dec()
        if state.count == 0:
            # the reader leaves after its current read (see the module docstring); a new
            # subscriber of this tenant gets a new state and a new reader meanwhile
            state.task = None
            state.ready = False
            del self._tenants[sub.tenant]

    def head(self, tenant: str) -> int:
        """The last position the tenant's reader has fanned out (0 when none)."""
        state = self._tenants.get(tenant)
        return state.head if state is not None else 0

    def subscriber_count(self, tenant: str | None = None) -> int:
        if tenant is not None:
            state = self._tenants.get(tenant)
            return state.count if state is not None else 0
        return sum(s.count for s in self._tenants.values())

    def is_ready(self, tenant: str) -> bool:
        state = self._tenants.get(tenant)
        return state is not None and state.ready

    # -- the reader ----------------------------------------------------------------------
    async def _initial_head(self, state: _TenantState) -> int:
        last = await self._store.last_announced(state.tenant)
        return last if last is not None else await self._store.last_position(state.tenant)

    async def _run_reader(self, state: _TenantState) -> None:
        """Loop: establish the head, then XREAD BLOCK and fan out, while this task is
        ``state.task`` (checked before each read and after it, so a reader that was stopped never
        fans out again). Redis errors are logged, counted and retried with capped exponential
        backoff from the same id."""
        me = asyncio.current_task()
        delay = 0.05
        while state.task is me:
            try:
                if not state.ready:
                    head = await self._initial_head(state)
                    if state.task is not me:  # stopped meanwhile: leave the state to its new reader
                        break
                    state.head = head
                    state.ready = True
                    for group in state.index.groups.values():
                        for sub in group.subs.values():
                            sub.buffer.reset(state.head)
                            sub.ready.set()
                entries, bad = await self._store.announced_after(state.tenant, state.head,
                                                     count=self._read_count, block_ms=self._block_ms)
                for entry_id in bad:
                    BAD_ENTRIES.inc()
                    log.error("tail stream of tenant %s: entry %r is not a tail entry; skipped",
                              state.tenant, entry_id)
                if entries and state.task is me:
                    await self._deliver(state, entries, me)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ValueError) as exc:
                READER_ERRORS.inc()
                log.warning("tail reader for tenant %s: %s; retrying in %.2fs", state.tenant, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue

    async def _deliver(self, state: _TenantState, entries: list[Announcement], me: object) -> None:
        """Read the events the entries announce after the head and fan them out (on the event
        loop, without awaiting, so a subscriber's floor stays exact). A stretch that cannot be
        read from the stream and the hot tier -- trimmed past the reader, or an announced
        event gone meanwhile -- marks every subscriber of the tenant overflowed: they catch up
        from the query tiers, a gap is never silent."""
        head = state.head
        gap = False
        last = head
        for entry in entries:
            if entry.last <= last:
                continue
            if entry.first > last + 1:
                gap = True
                STREAM_GAPS.inc()
                log.warning("tail stream of tenant %s jumped from %d to %d (trimmed past the reader); "
                            "subscribers catch up from the tiers", state.tenant, last, entry.first)
            last = entry.last
        if last == head:
            return
        events = None if gap else await events_between(self._store, state.tenant, head, last,
                                                       empty_ranges(entries, head))
        if state.task is not me:
            return
        if events is None and not gap:
            STREAM_GAPS.inc()
            log.warning("tail stream of tenant %s: events %d..%d are no longer all in the hot tier; "
                        "subscribers catch up from the tiers", state.tenant, head + 1, last)
        self._fan_out(state, events, last)

    def _fan_out(self, state: _TenantState, events: list[TailEntry] | None, last: int) -> None:
        """Push ``events`` (None: a gap) to the matching subscribers and move the head to ``last``."""
        touched: dict[int, Subscriber] = {}
        pushed = 0
        if events is None:
            for group in state.index.groups.values():
                for sub in group.subs.values():
                    sub.buffer.overflowed = True
                    touched[sub.id] = sub
            events = []
        for entry in events:
            event = entry.event
            for group in state.index.candidates(event):
                if group.flt.matches(event):
                    for sub in group.subs.values():
                        sub.buffer.push(entry)
                        touched[sub.id] = sub
                    pushed += len(group.subs)
        state.head = last
        if pushed:
            DELIVERED.inc(pushed)
        for sub in touched.values():
            sub.wake.set()
        # Idle filtered subscribers learn the new head from their heartbeats (TailSession).

