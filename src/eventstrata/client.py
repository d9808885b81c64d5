"""A Python client of the eventstrata API, sync (``Client``) and async (``AsyncClient``), on httpx.

```python
from eventstrata.client import Client, AsyncClient

with Client("http://127.0.0.1:8080", key) as es:
    for event in es.events(user_id="u1", type=["purchase", "refund"], since="2026-12-01"):
        print(event["id"], event["type"])          # follows next_cursor until the end
    one = es.get("evt-1")                          # raises NotFound when absent
    n = es.count(user_id="u1", bucket="1d", since="2026-12-01", until="2026-12-08")
    result = es.ingest([{"type": "signup", "user_id": "u9", "timestamp": "2026-12-06T10:00:00Z"}],
                       format="native")
    # with a key of the admin scope, its own tenant's administration:
    made = es.create_key(["ingest"]); es.revoke_key(made.lookup)
    letters = es.dead_letters(code="missing_field"); status = es.archive_status()

async with AsyncClient(url, key) as es:
    async for event in es.tail(type="purchase"):   # reconnects and resumes without a gap
        ...
```

Events are the native API's JSON objects (``dict``; docs/API.md). Filters are the parameters of
``GET /v1/events`` as keyword arguments: a list repeats a parameter, ``data={"plan": "pro"}``
becomes ``data.plan=pro``, times are ISO 8601 strings, epoch milliseconds or ``datetime``s.

Errors: an answer of 4xx/5xx raises ``ApiError`` carrying the API's ``status``, ``code``,
``message`` and ``details`` (``NotFound`` for 404). 429 and 503 are retried, waiting what
``Retry-After`` says (else an exponential backoff from ``backoff_s``), at most ``retries``
times; so are connection errors of reads. Ingest requests are retried too: the API stores
events once by id, so a retry never stores twice.

The tail (``AsyncClient.tail``) keeps the id of the last event or heartbeat it received and
reconnects with ``Last-Event-ID`` after a disconnect, a server restart (``reconnect``) or a
refused connection, so it yields every matching event once, in order; an ``error`` item from the
server raises ``ApiError``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from eventstrata.tail.wire import SseParser

Event = dict[str, Any]
"""An event in the native API's JSON shape."""
INGEST_CHUNK = 1000
"""Events per ``POST /v1/ingest`` request (the API's default limit)."""


class ApiError(Exception):
    """An error answer of the API: its HTTP ``status`` and the envelope's ``code``, ``message``
    and ``details``."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = tuple(details)


class NotFound(ApiError):
    """404: no such event (or route)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of ``GET /v1/events``."""

    events: tuple[Event, ...]
    next_cursor: str | None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Count:
    """``GET /v1/events/count``: the total and, with ``bucket``, ``(start, count)`` per bucket."""

    count: int
    buckets: tuple[tuple[str, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event ``ingest`` did not accept: its index in the call, dead-letter code and message."""

    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What ``ingest`` stored: the ids of the accepted events (``None`` where rejected, in the
    order given) and the rejected ones."""

    ids: tuple[str | None, ...]
    rejected: tuple[Rejected, ...]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key of the tenant as ``keys()`` lists it (never the key itself)."""

    lookup: str
    tenant: str
    scopes: tuple[str, ...]
    created: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key ``create_key`` made: ``key`` is shown only this once."""

    key: str
    lookup: str
    tenant: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """``dead_letters()``: the newest dead letters (summaries, oldest first) and the count per
    error code of all those the API read."""

    letters: tuple[dict[str, Any], ...]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class ArchiveStatus:
    """``archive_status()``: the tenant's archive watermark (``None`` before anything is
    archived), its files, bytes and rows, and the windows still hot."""

    tenant: str
    watermark: str | None
    watermark_ms: int
    redis_watermark_ms: int
    files: int
    bytes: int
    rows: int
    hot_windows: int


@dataclass(frozen=True, slots=True)
class ErasureJob:
    """An erasure job (``erase_user``, ``erasure``): ``status`` is ``pending``, ``running``,
    ``done`` or ``failed``; counts per tier once done; times in epoch ms."""

    id: str
    tenant: str
    user_id: str
    status: str
    requested_ms: int
    requested_by: str
    finished_ms: int
    hot_removed: int
    cold_removed: int
    files_rewritten: int
    error: str


def _erasure_job(body: Mapping[str, Any]) -> ErasureJob:
    return ErasureJob(**{f: body[f] for f in ErasureJob.__dataclass_fields__})


def _key_record(k: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(str(k["lookup"]), str(k["tenant"]), tuple(k["scopes"]), str(k["created"]),
                     bool(k["revoked"]))


def _new_key(k: Mapping[str, Any]) -> NewKey:
    return NewKey(str(k["key"]), str(k["lookup"]), str(k["tenant"]), tuple(k["scopes"]))


def _dead_letters(body: Mapping[str, Any]) -> DeadLetters:
    return DeadLetters(tuple(body["dead_letters"]), {str(c): int(n) for c, n in body["counts"].items()})


def _archive_status(body: Mapping[str, Any]) -> ArchiveStatus:
    return ArchiveStatus(**{f: body[f] for f in ArchiveStatus.__dataclass_fields__})


def _letter_params(code: str | None, limit: int) -> dict[str, Any]:
    return {"limit": limit} if code is None else {"limit": limit, "code": code}


def _time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def query_params(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query string of ``filters`` (see the module docstring). Pure; ``None`` values are
    left out. Raises ``TypeError`` for a ``data``/``metadata`` value that is not a mapping."""
    out: list[tuple[str, str]] = []
    for name, value in filters.items():
        if value is None:
            continue
        if name in ("data", "metadata"):
            if not isinstance(value, Mapping):
                raise TypeError(f"{name} must map paths to values")
            out += [(f"{name}.{path}", _scalar(v)) for path, v in value.items()]
        elif isinstance(value, list | tuple | set | frozenset):
            out += [(name, _scalar(v)) for v in value]
        elif name in ("since", "until"):
            out.append((name, _time(value)))
        else:
            out.append((name, _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def retry_delay(attempt: int, retry_after: str | None, backoff_s: float) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): ``Retry-After`` when it is a number
    of seconds, else ``backoff_s`` doubled per attempt, at most 30 s. Pure."""
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after.strip())
    return float(min(30.0, backoff_s * 2 ** (attempt - 1)))


RETRIED = frozenset({429, 503})


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        err = orjson.loads(response.content)["error"]
        code, message, details = str(err["code"]), str(err["message"]), err.get("details") or ()
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code, message, details = "http_error", response.text[:200] or response.reason_phrase, ()
    cls = NotFound if response.status_code == 404 else ApiError
    raise cls(response.status_code, code, message, details)


def _page(body: Mapping[str, Any]) -> Page:
    return Page(tuple(body["events"]), body.get("next_cursor"), body.get("total"))


def _count(body: Mapping[str, Any]) -> Count:
    buckets = body.get("buckets")
    return Count(int(body["count"]), None if buckets is None else
                 tuple((str(b["start"]), int(b["count"])) for b in buckets))


def _ingest_chunks(events: Sequence[Mapping[str, Any]]) -> Iterator[tuple[int, bytes]]:
    for start in range(0, len(events), INGEST_CHUNK):
        yield start, orjson.dumps(list(events[start : start + INGEST_CHUNK]))


def _merge_ingest(n: int, answers: Iterable[tuple[int, Mapping[str, Any]]]) -> IngestResult:
    ids: list[str | None] = [None] * n
    rejected: list[Rejected] = []
    for start, body in answers:
        for a in body["accepted"]:
            ids[start + int(a["index"])] = str(a["id"])
        rejected += [Rejected(start + int(r["index"]), str(r["code"]), str(r["message"]))
                     for r in body["rejected"]]
    return IngestResult(tuple(ids), tuple(sorted(rejected, key=lambda r: r.index)))


class Client:
    """The API at ``url`` with ``key`` (blocking calls; see the module docstring). Use as a
    context manager or call ``close``."""

    def __init__(self, url: str, key: str, *, timeout_s: float = 30.0, retries: int = 5,
                 backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, transport=transport,
                                  headers={"Authorization": f"Bearer {key}"})
        self.retries = retries
        self.backoff_s = backoff_s

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path, **kw)
            except httpx.TransportError:
                if attempt > self.retries:
                    raise
                time.sleep(retry_delay(attempt, None, self.backoff_s))
                continue
            if response.status_code in RETRIED and attempt <= self.retries:
                time.sleep(retry_delay(attempt, response.headers.get("retry-after"), self.backoff_s))
                continue
            _raise_for(response)
            return orjson.loads(response.content)

    def page(self, cursor: str | None = None, **filters: Any) -> Page:
        """One page of ``GET /v1/events`` (``cursor`` from the previous page)."""
        params = query_params({**filters, "cursor": cursor})
        return _page(self._call("GET", "/v1/events", params=params))

    def events(self, **filters: Any) -> Iterator[Event]:
        """Every matching event, page after page (``limit`` is the page size)."""
        cursor: str | None = None
        while True:
            page = self.page(cursor, **filters)
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, event_id: str) -> Event:
        """The event ``event_id`` from either tier. Raises ``NotFound``."""
        event: Event = self._call("GET", f"/v1/events/{quote(event_id, safe='')}")
        return event

    def count(self, **filters: Any) -> Count:
        """``GET /v1/events/count`` (``bucket="1h"`` etc. with ``since``/``until`` for buckets)."""
        return _count(self._call("GET", "/v1/events/count", params=query_params(filters)))

    def ingest(self, events: Sequence[Mapping[str, Any]], *, format: str | None = None) -> IngestResult:
        """Send ``events`` through ``POST /v1/ingest`` (chunks of ``INGEST_CHUNK``); returns once
        Kafka acknowledged them. ``format`` names the format of events that do not name theirs."""
        params = {"format": format} if format else None
        answers = [(start, self._call("POST", "/v1/ingest", content=body, params=params))
                   for start, body in _ingest_chunks(events)]
        return _merge_ingest(len(events), answers)

    # --- administration (keys with the admin scope; the key's tenant only) ----------------------

    def api_keys(self) -> list[KeyRecord]:
        """The tenant's API keys, oldest first (``GET /v1/admin/keys``)."""
        return [_key_record(k) for k in self._call("GET", "/v1/admin/keys")["keys"]]

    def create_key(self, scopes: Sequence[str] = ("read", "ingest")) -> NewKey:
        """A new key of the tenant with ``scopes`` (``read``, ``ingest``, ``admin``)."""
        return _new_key(self._call("POST", "/v1/admin/keys", content=orjson.dumps({"scopes": list(scopes)})))

    def revoke_key(self, lookup: str) -> None:
        """Revoke the tenant's key ``lookup``. Raises ``NotFound``."""
        self._call("DELETE", f"/v1/admin/keys/{quote(lookup, safe='')}")

    def dead_letters(self, code: str | None = None, limit: int = 100) -> DeadLetters:
        """The tenant's newest dead letters (``GET /v1/admin/dead-letters``)."""
        return _dead_letters(self._call("GET", "/v1/admin/dead-letters", params=_letter_params(code, limit)))

    def dead_letter(self, partition: int, offset: int) -> dict[str, Any]:
        """One dead letter with its key, headers and original bytes. Raises ``NotFound``."""
        letter: dict[str, Any] = self._call("GET", f"/v1/admin/dead-letters/{int(partition)}/{int(offset)}")
        return letter

    def archive_status(self) -> ArchiveStatus:
        """The tenant's archive (``GET /v1/admin/archive``)."""
        return _archive_status(self._call("GET", "/v1/admin/archive"))

    def erase_user(self, user_id: str) -> ErasureJob:
        """Start erasing ``user_id``'s events from both tiers (``DELETE /v1/users/{id}``)."""
        return _erasure_job(self._call("DELETE", f"/v1/users/{quote(user_id, safe='')}"))

    def erasure(self, job_id: str) -> ErasureJob:
        """An erasure job's progress. Raises ``NotFound``."""
        return _erasure_job(self._call("GET", f"/v1/erasures/{quote(job_id, safe='')}"))


class AsyncClient:
    """``Client`` for asyncio, plus ``tail``. Use as an async context manager or ``aclose``."""

    def __init__(self, url: str, key: str, *, timeout_s: float = 30.0, retries: int = 5,
                 backoff_s: float = 0.5, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s, transport=transport,
                                       headers={"Authorization": f"Bearer {key}"})
        self.retries = retries
        self.backoff_s = backoff_s

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, path, **kw)
            except httpx.TransportError:
                if attempt > self.retries:
                    raise
                await asyncio.sleep(retry_delay(attempt, None, self.backoff_s))
                continue
            if response.status_code in RETRIED and attempt <= self.retries:
                await asyncio.sleep(retry_delay(attempt, response.headers.get("retry-after"), self.backoff_s))
                continue
            _raise_for(response)
            return orjson.loads(response.content)

    async def page(self, cursor: str | None = None, **filters: Any) -> Page:
        """One page of ``GET /v1/events``."""
        params = query_params({**filters, "cursor": cursor})
        return _page(await self._call("GET", "/v1/events", params=params))

    async def events(self, **filters: Any) -> AsyncIterator[Event]:
        """Every matching event, page after page."""
        cursor: str | None = None
        while True:
            page = await self.page(cursor, **filters)
            for event in page.events:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, event_id: str) -> Event:
        """The event ``event_id``. Raises ``NotFound``."""
        event: Event = await self._call("GET", f"/v1/events/{quote(event_id, safe='')}")
        return event

    async def count(self, **filters: Any) -> Count:
        """``GET /v1/events/count``."""
        return _count(await self._call("GET", "/v1/events/count", params=query_params(filters)))

    async def ingest(self, events: Sequence[Mapping[str, Any]], *, format: str | None = None) -> IngestResult:
        """``Client.ingest`` for asyncio."""
        params = {"format": format} if format else None
        answers = [(start, await self._call("POST", "/v1/ingest", content=body, params=params))
                   for start, body in _ingest_chunks(events)]
        return _merge_ingest(len(events), answers)

    async def api_keys(self) -> list[KeyRecord]:
        """``Client.api_keys`` for asyncio."""
        return [_key_record(k) for k in (await self._call("GET", "/v1/admin/keys"))["keys"]]

    async def create_key(self, scopes: Sequence[str] = ("read", "ingest")) -> NewKey:
        """``Client.create_key`` for asyncio."""
        body = orjson.dumps({"scopes": list(scopes)})
        return _new_key(await self._call("POST", "/v1/admin/keys", content=body))

    async def revoke_key(self, lookup: str) -> None:
        """``Client.revoke_key`` for asyncio."""
        await self._call("DELETE", f"/v1/admin/keys/{quote(lookup, safe='')}")

    async def dead_letters(self, code: str | None = None, limit: int = 100) -> DeadLetters:
        """``Client.dead_letters`` for asyncio."""
        params = _letter_params(code, limit)
        return _dead_letters(await self._call("GET", "/v1/admin/dead-letters", params=params))

    async def dead_letter(self, partition: int, offset: int) -> dict[str, Any]:
        """``Client.dead_letter`` for asyncio."""
        path = f"/v1/admin/dead-letters/{int(partition)}/{int(offset)}"
        letter: dict[str, Any] = await self._call("GET", path)
        return letter

    async def archive_status(self) -> ArchiveStatus:
        """``Client.archive_status`` for asyncio."""
        return _archive_status(await self._call("GET", "/v1/admin/archive"))

    async def erase_user(self, user_id: str) -> ErasureJob:
        """``Client.erase_user`` for asyncio."""
        return _erasure_job(await self._call("DELETE", f"/v1/users/{quote(user_id, safe='')}"))

    async def erasure(self, job_id: str) -> ErasureJob:
        """``Client.erasure`` for asyncio."""
        return _erasure_job(await self._call("GET", f"/v1/erasures/{quote(job_id, safe='')}"))

    async def tail(self, *, after: str | None = None, **filters: Any) -> AsyncIterator[Event]:
        """Matching events from now (or after the id ``after``) as they arrive, forever:
        reconnects with ``Last-Event-ID`` and never yields an event twice. Raises ``ApiError``
        for an ``error`` item or an answer other than 429/503 (401, 403, 400 ...)."""
        last = after
        attempt = 0
        params = tuple(query_params(filters))
        stream_timeout = httpx.Timeout(self._http.timeout.connect, read=None)  # events may be rare
        while True:
            headers = {"Last-Event-ID": last} if last is not None else {}
            delay: float | None = None
            try:
                async with self._http.stream("GET", "/v1/tail", params=params, headers=headers,
                                             timeout=stream_timeout) as r:
                    if r.status_code in RETRIED:
                        attempt += 1
                        delay = retry_delay(attempt, r.headers.get("retry-after"), self.backoff_s)
                    else:
                        if r.status_code >= 400:
                            await r.aread()
                        _raise_for(r)
                        attempt = 0
                        parser = SseParser()
                        async for text in r.aiter_text():
                            for msg in parser.feed(text):
                                if msg.event == "message":
                                    if msg.id is not None and last is not None and _not_after(msg.id, last):
                                        continue
                                    last = msg.id if msg.id is not None else last
                                    yield orjson.loads(msg.data)
                                elif msg.event == "heartbeat" and msg.id is not None:
                                    last = msg.id
                                elif msg.event == "error":
                                    body = orjson.loads(msg.data)["error"]
                                    raise ApiError(500, str(body["code"]), str(body["message"]))
                        delay = self.backoff_s  # the server ended the stream (restart): reconnect
            except httpx.TransportError:
                attempt += 1
                delay = retry_delay(attempt, None, self.backoff_s)
            await asyncio.sleep(delay or 0)


def _not_after(candidate: str, last: str) -> bool:
    """Whether the tail id ``candidate`` is at or before ``last`` (ids are positions)."""
    return candidate.isdigit() and last.isdigit() and int(candidate) <= int(last)
