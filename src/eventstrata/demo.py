"""The `make run` tour: a demo tenant and key, a few thousand seed-shaped events spread over the
last 30 days (so both tiers hold data), and ready-to-paste curl commands.

``plan_events`` and ``tour_text`` are pure (they take ``now_ms`` and a seeded RNG);
``seed_demo`` does the I/O: creates the key in Redis, publishes to Kafka and waits until the
ingest worker has stored what it published.
"""

from __future__ import annotations

import asyncio
import random
import shlex
import time
from dataclasses import dataclass

import orjson

from eventstrata.auth import ApiKeys
from eventstrata.config import Settings
from eventstrata.formats.samples import sample_event
from eventstrata.ingest.lag import read_lag
from eventstrata.produce import Outgoing, publish
from eventstrata.redisconn import connect_redis

DAY_MS = 86_400_000
DEMO_FORMATS = ("native", "trieve", "thisdata", "fluidtopics", "eventstore")


@dataclass(frozen=True, slots=True)
class DemoPlan:
    messages: tuple[Outgoing, ...]
    users: tuple[str, ...]
    busiest_user: str


@dataclass(frozen=True, slots=True)
class DemoInfo:
    api: str
    tenant: str
    key: str
    events: int
    busiest_user: str


def plan_events(rng: random.Random, tenant: str, now_ms: int, n: int, *, days: int = 30) -> DemoPlan:
    """``n`` events of ``tenant`` in all five formats, over the ``days`` before ``now_ms``, from
    40 users with a long-tailed activity distribution (user k has weight 1/(k+1))."""
    users = tuple(f"user-{i:03d}" for i in range(40))
    weights = [1.0 / (i + 1) for i in range(len(users))]
    messages: list[Outgoing] = []
    for i in range(n):
        user = rng.choices(users, weights)[0]
        ts = now_ms - rng.randrange(days * DAY_MS)
        fmt = DEMO_FORMATS[i % len(DEMO_FORMATS)]
        obj, headers = sample_event(rng, fmt, tenant, user, ts)
        messages.append(Outgoing(orjson.dumps(obj), tuple((k, v.encode()) for k, v in headers.items()),
                                 f"{tenant}:{user}".encode()))
    return DemoPlan(tuple(messages), users, users[0])


def tour_text(info: DemoInfo) -> str:
    """The printed tour: where the API is, the key, and curl commands that work as printed."""
    api, key, tenant, user = info.api, info.key, info.tenant, info.busiest_user
    auth = shlex.quote(f"Authorization: Bearer {key}")
    trieve_body = shlex.quote(orjson.dumps({"filter": {"user_id": user}, "page": 1}).decode())
    ft_body = shlex.quote(orjson.dumps({
        "startDate": time.strftime("%Y-%m-%d", time.gmtime(time.time() - 29 * 86400)),
        "paging": {"page": 1, "perPage": 5}, "sortOrder": "latestFirst",
    }).decode())
    lines = [
        "",
        "eventstrata is running.",
        f"  console:  {api}/console   (open it in a browser and sign in with the key below)",
        f"  API:      {api}   (OpenAPI docs: {api}/docs)",
        f"  tenant:   {tenant}",
        f"  API key:  {key}   (read, ingest, admin; shown once; create more with "
        f"`eventstrata keys create --tenant {tenant}`)",
        f"  events:   {info.events} demo events over the last 30 days (older than the hot retention",
        "            are moved to Parquet by the archiver within one archive interval)",
        "",
        "Try:",
        "  # a user's timeline, newest first, across Redis and Parquet",
        f"  curl -s -H {auth} '{api}/v1/events?user_id={user}&limit=5'",
        "  # live tail of purchases (Ctrl-C to stop)",
        f"  curl -sN -H {auth} '{api}/v1/tail?type=purchase'",
        "  # Trieve-compatible",
        f"  curl -s -X POST -H {shlex.quote('Authorization: ' + key)} -H 'TR-Dataset: {tenant}' "
        f"-H 'Content-Type: application/json' -d {trieve_body} '{api}/api/analytics/events/all'",
        "  # ThisData-compatible",
        f"  curl -s '{api}/v1/events.json?api_key={key}&user_id={user}&limit=5'",
        "  # Fluid Topics-compatible",
        f"  curl -s -X POST -H {auth} -H 'Content-Type: application/json' -d {ft_body} "
        f"'{api}/analytics/api/v1/events'",
        "  # event-store-compatible",
        f"  curl -s -H {auth} '{api}/api/event-stores/accounts/events?limit=5&includeCount=true'",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


async def wait_ingested(settings: Settings, timeout_s: float) -> None:
    """Wait until the ingest group has committed everything published so far.

    Offsets are committed only after Redis acknowledged (docs/ARCHITECTURE.md), so lag 0 means
    stored. Raises ``TimeoutError`` after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        lags = await read_lag(settings.kafka_bootstrap, settings.topic, settings.consumer_group,
                              security=settings.kafka_security())
        lag = sum(x.lag for x in lags)
        if lag <= 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lag} events still not ingested after {timeout_s:.0f}s")
        await asyncio.sleep(0.5)


async def seed_demo(settings: Settings, api: str, *, tenant: str = "demo", n: int = 3000,
                    seed: int = 7, wait_s: float = 120.0) -> DemoInfo:
    """Create a key for ``tenant`` (every scope: the local stack's owner; the console's pipeline
    view needs ``admin``), publish ``n`` planned events and wait (up to ``wait_s``) until
    the ingest worker stored them all. Raises ``TimeoutError`` if it does not."""
    redis = connect_redis(settings)
    layout = settings.layout()
    try:
        key = await ApiKeys(redis, layout).create(tenant, scopes=("read", "ingest", "admin"))
        plan = plan_events(random.Random(seed), tenant, int(time.time() * 1000), n)
        result = await publish(settings.kafka_bootstrap, settings.topic, plan.messages,
                               security=settings.kafka_security())
        if result.failed:
            raise RuntimeError(f"{result.failed} demo events were rejected by the broker")
        await wait_ingested(settings, wait_s)
    finally:
        await redis.aclose()
    return DemoInfo(api=api, tenant=tenant, key=key, events=n, busiest_user=plan.busiest_user)
