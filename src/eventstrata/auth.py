"""Tenant API keys (docs/API.md, "Authentication").

A key is ``es_<lookup>_<secret>``: ``lookup`` = 8 random characters of ``[a-z0-9]`` (the public
handle, used in key names and ``keys list``), ``secret`` = 32 random bytes, base64url. Only the
SHA-256 of the whole key is stored, in the hash ``KeyLayout.api_key(lookup)`` with ``tenant``,
``created`` (epoch ms), ``revoked`` (``0``/``1``) and ``scopes``; the tenant's lookups are in
the set ``KeyLayout.api_keys_of(tenant)``. Keys are never logged; only lookups are.

Scopes: a key may ``read`` (queries, counts, the tail, the compatible endpoints), ``ingest``
(``POST /v1/ingest``) and/or ``admin`` (its tenant's keys, dead letters and archive status under
``/v1/admin``); ``create`` gives ``read`` and ``ingest`` unless told otherwise, so a write-only
key can be embedded in a client app without exposing reads, and administration is never given
by default. A key stored without a ``scopes`` field reads only. ``resolve`` answers the tenant
of a key that holds the scope asked for and raises ``MissingScope`` for a valid key that does not.

Revocation and the resolve cache: ``resolve`` remembers a key it found valid for
``cache_ttl_ms`` (``EVENTSTRATA_API_KEY_CACHE``, default 1 s, at most 5 s; 0 = read Redis on
every request), keyed by the key's SHA-256, never the key itself. A revoked key is therefore
rejected by every API process within that TTL (from the next request when it is 0). Only
successes are cached: a new key works at once and invalid keys cost no memory. Why: the
lookup is one Redis round trip, as many as a first hot page or a get by id needs for
everything else; at a steady request rate per key it now happens at most once per TTL.

Every method may block on Redis and raises its ``RedisError``s.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, get_args

from eventstrata.config import MAX_KEY_CACHE_MS
from eventstrata.keys import KeyLayout
from eventstrata.model import TENANT_RE
from eventstrata.redisconn import RedisClient, reply

KEY_RE = re.compile(r"^es_([a-z0-9]{8})_([A-Za-z0-9_-]{43,128})$")
LOOKUP_RE = re.compile(r"^[a-z0-9]{8}\Z")
_LOOKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


Scope = Literal["read", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
DEFAULT_SCOPES: tuple[Scope, ...] = ("read", "ingest")
"""What ``create`` gives a key when no scopes are named (never ``admin``)."""
LEGACY_SCOPES: frozenset[Scope] = frozenset({"read"})
"""The scopes of a key stored without a ``scopes`` field."""


class MissingScope(Exception):
    """A valid, unrevoked key that lacks the scope a request needs (answered 403)."""

    def __init__(self, tenant: str, scope: Scope, scopes: frozenset[Scope]) -> None:
        super().__init__(f"this key may not {scope} (its scopes: {', '.join(sorted(scopes)) or 'none'})")
        self.tenant = tenant
        self.scope = scope
        self.scopes = scopes


def lookup_of(key: str) -> str | None:
    """The lookup (public handle) of a well-formed key, else None. Pure."""
    m = KEY_RE.match(key)
    return m.group(1) if m else None


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """``read``, ``ingest``, ``read,ingest`` (any order, blanks ignored) → the scopes, in
    ``SCOPES`` order. Raises ``ValueError`` for an empty list or an unknown scope."""
    return _checked({part.strip() for part in text.split(",") if part.strip()})


def _checked(names: set[str]) -> tuple[Scope, ...]:
    """``names`` as scopes in ``SCOPES`` order. Raises ``ValueError`` for none or an unknown one."""
    if not names or names - set(SCOPES):
        got = ",".join(sorted(names))
        raise ValueError(f"scopes are a comma-separated list of {', '.join(SCOPES)}; got {got!r}")
    return tuple(sc for sc in SCOPES if sc in names)


def _stored_scopes(raw: Any) -> frozenset[Scope]:
    if raw is None:
        return LEGACY_SCOPES
    text = _s(raw)
    return frozenset(sc for sc in SCOPES if sc in text.split(","))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What ``list`` shows about a key (never the key itself)."""

    lookup: str
    tenant: str
    created_ms: int
    revoked: bool
    scopes: tuple[Scope, ...] = ("read",)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _s(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


V = TypeVar("V")


class ResolvedCache(Generic[V]):
    """Key hash → what the key grants (``ApiKeys``: tenant and scopes) for at most ``ttl_ms``
    after it was read from Redis. Pure: callers
    pass ``now_ms`` (monotonic). At most ``max_entries``: when full, expired entries are
    dropped, and if none were, everything (the next requests read Redis again)."""

    def __init__(self, ttl_ms: int, max_entries: int = 10_000) -> None:
        if not 0 <= ttl_ms <= MAX_KEY_CACHE_MS:
            raise ValueError(f"the key cache TTL must be 0..{MAX_KEY_CACHE_MS} ms")
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._entries: dict[str, tuple[V, int]] = {}

    def get(self, key_hash: str, now_ms: int) -> V | None:
        """The cached grant, None when absent or expired (``now_ms`` ≥ read time + TTL)."""
        hit = self._entries.get(key_hash)
        if hit is None:
            return None
        grant, expires = hit
        if now_ms >= expires:
            del self._entries[key_hash]
            return None
        return grant

    def put(self, key_hash: str, grant: V, read_ms: int) -> None:
        """Remember a valid key read from Redis at ``read_ms`` (a no-op when the TTL is 0)."""
        if self.ttl_ms == 0:
            return
        if len(self._entries) >= self.max_entries and key_hash not in self._entries:
            self._entries = {h: v for h, v in self._entries.items() if v[1] > read_ms}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key_hash] = (grant, read_ms + self.ttl_ms)

    def __len__(self) -> int:
        return len(self._entries)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class ApiKeys:
    def __init__(self, redis: RedisClient, layout: KeyLayout, *, cache_ttl_ms: int = 0,
                 clock: Callable[[], int] = _monotonic_ms) -> None:
        """``cache_ttl_ms``: how long ``resolve`` may trust a key it found valid (0..5,000;
        raises ``ValueError`` beyond). ``clock``: monotonic milliseconds."""
        self._redis = redis
        self._layout = layout
        self._cache: ResolvedCache[tuple[str, frozenset[Scope]]] = ResolvedCache(cache_ttl_ms)
        self._clock = clock

    async def create(self, tenant: str, *, now_ms: int | None = None,
                     scopes: tuple[Scope, ...] = DEFAULT_SCOPES) -> str:
        """A new key for ``tenant`` with ``scopes``; the only time the key is returned. Raises
        ``ValueError`` for an invalid tenant id or an empty or unknown scope."""
        if not TENANT_RE.match(tenant):
            raise ValueError("tenant ids are 1-64 of [A-Za-z0-9._-]")
        scopes = _checked(set(scopes))
        created = int(time.time() * 1000) if now_ms is None else now_ms
        while True:
            lookup = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(8))
            key = f"es_{lookup}_{secrets.token_urlsafe(32)}"
            rkey = self._layout.api_key(lookup)
            # HSETNX on the hash field claims the lookup atomically.
            claimed: int = await reply(self._redis.hsetnx(rkey, "hash", _hash(key)))
            if claimed:
                break
        n: int = await reply(self._redis.hset(rkey, mapping={"tenant": tenant, "created": str(created),
                                                           "revoked": "0", "scopes": ",".join(scopes)}))
        n = await reply(self._redis.sadd(self._layout.api_keys_of(tenant), lookup))
        del n
        return key

    async def resolve(self, key: str, scope: Scope = "read") -> str | None:
        """The tenant of a valid, unrevoked ``key`` that holds ``scope``; None for an unknown,
        malformed or revoked key (constant-time hash compare). Raises ``MissingScope`` for a
        valid key without ``scope``. A key found valid within the cache TTL is answered
        without Redis."""
        grant = await self.grant(key)
        if grant is None:
            return None
        if scope not in grant[1]:
            raise MissingScope(grant[0], scope, grant[1])
        return grant[0]

    async def grant(self, key: str) -> tuple[str, frozenset[Scope]] | None:
        """The tenant and scopes of a valid, unrevoked ``key``; None for an unknown, malformed
        or revoked one. Reads Redis unless the key was found valid within the cache TTL."""
        m = KEY_RE.match(key)
        if not m:
            return None
        key_hash = _hash(key)
        read_ms = self._clock()
        grant = self._cache.get(key_hash, read_ms)
        if grant is None:
            rec: list[Any] = await reply(self._redis.hmget(self._layout.api_key(m.group(1)),
                                                         ["hash", "tenant", "revoked", "scopes"]))
            stored, tenant, revoked, scopes = rec
            if stored is None or tenant is None:
                return None
            if not hmac.compare_digest(_s(stored).encode(), key_hash.encode()):
                return None
            if _s(revoked) != "0":
                return None
            grant = (_s(tenant), _stored_scopes(scopes))
            self._cache.put(key_hash, grant, read_ms)
        return grant

    async def revoke(self, lookup_or_key: str, *, tenant: str | None = None) -> bool:
        """Revoke by lookup (8 characters) or full key; True when a key was found (and, with
        ``tenant``, only a key of that tenant: another tenant's key counts as not found)."""
        lookup = lookup_of(lookup_or_key) or lookup_or_key
        if not LOOKUP_RE.match(lookup):
            return False
        rkey = self._layout.api_key(lookup)
        owner: Any = await reply(self._redis.hget(rkey, "tenant"))
        if owner is None or (tenant is not None and _s(owner) != tenant):
            return False
        n: int = await reply(self._redis.hset(rkey, "revoked", "1"))
        del n
        return True

    async def list(self, tenant: str | None = None) -> list[KeyInfo]:
        """Keys of ``tenant`` (or of every tenant that has keys), oldest first."""
        lookups: list[str] = []
        if tenant is not None:
            members: set[bytes | str] = await reply(self._redis.smembers(self._layout.api_keys_of(tenant)))
            lookups = sorted(_s(x) for x in members)
        else:
            pattern = self._layout.api_key("*")
            async for k in self._redis.scan_iter(match=pattern, count=500):
                lookups.append(_s(k).rsplit(":", 1)[1])
        out: list[KeyInfo] = []
        for lookup in lookups:
            rec: list[Any] = await reply(self._redis.hmget(self._layout.api_key(lookup),
                                                         ["tenant", "created", "revoked", "scopes"]))
            if rec[0] is None:
                continue
            scopes = tuple(sc for sc in SCOPES if sc in _stored_scopes(rec[3]))
            out.append(KeyInfo(lookup, _s(rec[0]), int(_s(rec[1] or b"0")), _s(rec[2]) != "0", scopes))
        out.sort(key=lambda k: (k.created_ms, k.lookup))
        return out


async def cursor_secret(redis: RedisClient, layout: KeyLayout, configured: str) -> bytes:
    """The HMAC secret for cursors: ``configured`` if set, else a random value stored once in
    Redis (SET NX) so every API process of the deployment shares it."""
    if configured:
        return hashlib.sha256(configured.encode("utf-8")).digest()
    stored: Any = await reply(redis.set(layout.cursor_secret, secrets.token_hex(32), nx=True))
    del stored  # SET NX: the first process to start stores the secret; everyone reads it back
    raw: Any = await reply(redis.get(layout.cursor_secret))
    return hashlib.sha256(_s(raw).encode("ascii")).digest()
