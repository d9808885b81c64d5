"""The benchmark's dataset: several tenants, users with Zipf-distributed activity, events of all
five formats (~600 bytes), timestamps spread over a history window.

Pure given its inputs: ``generate(spec, now_ms)`` is a deterministic iterator (seeded RNG);
the format bodies come from ``eventstrata.formats.samples.sample_event`` when that module
exists, else from a built-in native-format generator of the same size.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from eventstrata.model import FORMATS
from eventstrata_bench.stats import zipf_weights

DAY_MS = 86_400_000

SampleFn = Callable[[random.Random, str, str, str, int], tuple[dict[str, Any], Any]]

NATIVE_TYPES = (
    "page_view",
    "click",
    "search",
    "add_to_cart",
    "purchase",
    "login",
    "logout",
    "signup",
    "share",
    "comment",
    "download",
    "video_play",
    "rating",
    "refund",
)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """What to generate. ``span_days`` of history ending at ``now``; ``tenant_weights`` gives
    each tenant's share of events; users per tenant follow Zipf(``zipf_s``)."""

    events: int
    tenants: tuple[str, ...] = ("acme", "globex", "initech", "umbrella")
    tenant_weights: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    users_per_tenant: int = 20_000
    zipf_s: float = 1.0
    span_days: float = 7.0
    end_margin_ms: int = 1_000
    formats: tuple[str, ...] = FORMATS
    seed: int = 42
    user_prefix: str = "u"


@dataclass(frozen=True, slots=True)
class GenEvent:
    """One generated Kafka message and the facts the harness needs about it."""

    tenant: str
    user_id: str
    ts_ms: int
    fmt: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    key: bytes


class ZipfSampler:
    """Draws ranks 0..n-1 with Zipf(s) probabilities (rank 0 most active)."""

    __slots__ = ("_cum",)

    def __init__(self, n: int, s: float) -> None:
        cum: list[float] = []
        acc = 0.0
        for w in zipf_weights(n, s):
            acc += w
            cum.append(acc)
        cum[-1] = 1.0
        self._cum = cum

    def draw(self, rng: random.Random) -> int:
        return bisect.bisect_left(self._cum, rng.random())


def user_name(spec: DatasetSpec, rank: int) -> str:
    """The id of the user of a given activity rank (rank 0 = most active)."""
    return f"{spec.user_prefix}{rank:06d}"


def load_sample_fn() -> SampleFn | None:
    """``formats.samples.sample_event`` when the formats package exists, else ``None``."""
    try:
        from eventstrata.formats import samples
    except ImportError:
        return None
    fn: SampleFn = samples.sample_event
    return fn


def native_event(rng: random.Random, tenant: str, user_id: str, ts_ms: int) -> dict[str, Any]:
    """A native-format event of about 600 bytes of JSON (fallback generator)."""
    etype = NATIVE_TYPES[min(len(NATIVE_TYPES) - 1, int(rng.expovariate(0.35)))]
    return {
        "id": f"{rng.getrandbits(64):016x}{rng.getrandbits(64):016x}",
        "tenant": tenant,
        "type": etype,
        "name": etype.replace("_", " "),
        "user_id": user_id,
        "timestamp": ts_ms,
        "source": rng.choice(("web", "ios", "android", "api")),
        "session_id": f"s{rng.getrandbits(48):012x}",
        "data": {
            "path": f"/catalog/{rng.randrange(5000)}/item/{rng.randrange(100000)}",
            "referrer": rng.choice(("https://www.google.com/", "https://news.example.org/", None)),
            "price": round(rng.uniform(1, 500), 2),
            "currency": "EUR",
            "ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Safari/537.36",
            "tags": [f"tag{rng.randrange(200)}" for _ in range(rng.randrange(2, 6))],
            "note": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(120)),
        },
    }


def _headers(raw: Any, fmt: str, tenant: str) -> tuple[tuple[str, bytes], ...]:
    if raw is None:
        return (("es-format", fmt.encode()), ("es-tenant", tenant.encode()))
    items = list(raw.items()) if isinstance(raw, dict) else list(raw)
    out: list[tuple[str, bytes]] = []
    for k, v in items:
        out.append((str(k), v if isinstance(v, bytes) else str(v).encode()))
    names = {k for k, _ in out}
    if "es-format" not in names:
        out.append(("es-format", fmt.encode()))
    if "es-tenant" not in names:
        out.append(("es-tenant", tenant.encode()))
    return tuple(out)


def generate(spec: DatasetSpec, now_ms: int, sample: SampleFn | None = None) -> Iterator[GenEvent]:
    """Yield ``spec.events`` events, timestamps uniform over ``[now - span, now - margin)``,
    formats round-robin, tenants by weight, users by Zipf rank. Deterministic for a spec."""
    rng = random.Random(spec.seed)
    users = ZipfSampler(spec.users_per_tenant, spec.zipf_s)
    tenant_cum: list[float] = []
    acc = 0.0
    total_w = sum(spec.tenant_weights)
    for w in spec.tenant_weights:
        acc += w / total_w
        tenant_cum.append(acc)
    tenant_cum[-1] = 1.0
    start = now_ms - int(spec.span_days * DAY_MS)
    end = now_ms - spec.end_margin_ms
    for i in range(spec.events):
        tenant = spec.tenants[bisect.bisect_left(tenant_cum, rng.random())]
        user = user_name(spec, users.draw(rng))
        ts = rng.randrange(start, end)
        fmt = spec.formats[i % len(spec.formats)]
        if sample is not None:
            obj, raw_headers = sample(rng, fmt, tenant, user, ts)
            headers = _headers(raw_headers, fmt, tenant)
        else:
            fmt = "native"
            obj = native_event(rng, tenant, user, ts)
            headers = _headers(None, fmt, tenant)
        yield GenEvent(tenant, user, ts, fmt, orjson.dumps(obj), headers, f"{tenant}:{user}".encode())
