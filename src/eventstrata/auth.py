"""Tenant API keys (SPEC §9).

A key is ``es_<lookup>_<secret>``: ``lookup`` = 8 random characters of ``[a-z0-9]`` (the public
handle, used in key names and ``keys list``), ``secret`` = 32 random bytes, base64url. Only the
SHA-256 of the whole key is stored, in the hash ``KeyLayout.api_key(lookup)`` with ``tenant``,
``created`` (epoch ms) and ``revoked`` (``0``/``1``); the tenant's lookups are in the set
``KeyLayout.api_keys_of(tenant)``. ``resolve`` reads Redis on every call (no cache), so a revoked
key is rejected from the next request on. Keys are never logged; only lookups are.

Every method may block on Redis and raises its ``RedisError``s.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from eventstrata.keys import KeyLayout
from eventstrata.model import TENANT_RE
from eventstrata.redisconn import RedisClient, reply

KEY_RE = re.compile(r"^es_([a-z0-9]{8})_([A-Za-z0-9_-]{43,128})$")
_LOOKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What ``list`` shows about a key (never the key itself)."""

    lookup: str
    tenant: str
    created_ms: int
    revoked: bool


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _s(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


class ApiKeys:
    def __init__(self, redis: RedisClient, layout: KeyLayout) -> None:
        self._redis = redis
        self._layout = layout

    async def create(self, tenant: str, *, now_ms: int | None = None) -> str:
        """A new key for ``tenant``; the only time the key is returned. Raises ``ValueError``
        for an invalid tenant id."""
        if not TENANT_RE.match(tenant):
            raise ValueError("tenant ids are 1-64 of [A-Za-z0-9._-]")
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
                                                           "revoked": "0"}))
        n = await reply(self._redis.sadd(self._layout.api_keys_of(tenant), lookup))
        del n
        return key

    async def resolve(self, key: str) -> str | None:
        """The tenant of a valid, unrevoked ``key``; None otherwise (constant-time hash compare)."""
        m = KEY_RE.match(key)
        if not m:
            return None
        rec: list[Any] = await reply(self._redis.hmget(self._layout.api_key(m.group(1)),
                                                     ["hash", "tenant", "revoked"]))
        stored, tenant, revoked = rec
        if stored is None or tenant is None:
            return None
        if not hmac.compare_digest(_s(stored).encode(), _hash(key).encode()):
            return None
        if _s(revoked) != "0":
            return None
        return _s(tenant)

    async def revoke(self, lookup_or_key: str) -> bool:
        """Revoke by lookup (8 characters) or full key; True when a key was found."""
        m = KEY_RE.match(lookup_or_key)
        lookup = m.group(1) if m else lookup_or_key
        rkey = self._layout.api_key(lookup)
        exists: bool = await reply(self._redis.hexists(rkey, "hash"))
        if not exists:
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
                                                         ["tenant", "created", "revoked"]))
            if rec[0] is None:
                continue
            out.append(KeyInfo(lookup, _s(rec[0]), int(_s(rec[1] or b"0")), _s(rec[2]) != "0"))
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
