"""The Redis key layout of the hot tier. Pure: builds key names, does no I/O.

Every key of one tenant carries the hash tag ``{<tenant>}``, so a tenant's keys live in one
Redis Cluster slot and one Lua call can dedupe, assign positions, store bodies, index and
announce a whole batch of that tenant atomically. Scale-out is across tenants (16,384 slots);
see docs/ARCHITECTURE.md for the trade-off.

Tenant ids are validated (``[A-Za-z0-9._-]{1,64}``) before they get here and contain no
``{``, ``}`` or ``:``. Every user-supplied part (user id, type, stream id) is encoded with
``encode_part`` so that no value can collide with another key, inject a separator or move a
key into another slot.

Layout, for prefix ``es`` and tenant ``T`` (``W`` = window start in epoch ms):

==================================  =====================================================
``es:{T}:ids``                      hash  event id → ``ts|gpos|spos`` (dedupe, positions, by-id)
``es:{T}:gpos``                     string counter: last global position of the tenant
``es:{T}:spos``                     hash  stream id → last stream position
``es:{T}:win``                      zset  window starts holding hot events (score = W)
``es:{T}:b:W``                      hash  event id → canonical JSON body (bodies per window)
``es:{T}:z``                        zset  every hot event of the tenant
``es:{T}:zu:<user>``                zset  hot events of one user
``es:{T}:zt:<type>``                zset  hot events of one type
``es:{T}:zut:<user>:<type>``        zset  hot events of one user and type
``es:{T}:seq``                      zset  score = global position, member as below
``es:{T}:tail``                     stream, one entry per write call: its new events, entry id
                                    ``<last gpos>-0`` (``hotstore.tailentry``)
``es:{T}:wm``                       string archive watermark W (ms); mirror of the manifest
``es:{T}:lease``                    string archiver lease holder (SET NX PX)
``es:{T}:offsets``                  hash  ``<topic>|<partition>`` → next Kafka offset whose records of
                                    this tenant are stored (written with the data, see
                                    ``ingest.recovery``)
``es:tenants``                      set   tenants that have ever stored an event
``es:apikey:<lookup>``              hash  API key record (hash, tenant, created, revoked)
``es:apikeys:<tenant>``             set   lookup prefixes of a tenant's keys
==================================  =====================================================

Windows are the unit of storage and archiving (bodies, ``win``); the four index families span the
whole hot tier, so a read is one range command per index key whatever its time range (a
per-window index cost one command per window: 168 for a 7-day user timeline). The archiver
removes archived events from the indexes member by member.

Sorted-set members are ``member(ts, id)`` = 13-digit zero-padded event time, ``|``, event id;
the score is the event time. Equal scores order by member, i.e. by id, so ``(time, id)`` is a
total order read without ``WITHSCORES``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

MEMBER_TS_DIGITS = 13
_LONG_PART = 96


def encode_part(value: str) -> str:
    """Encode a user-supplied key part into ``[A-Za-z0-9_-]`` with a one-letter form tag.

    Short values (≤ 96 UTF-8 bytes) → ``b`` + unpadded base64url (reversible, injective);
    longer ones → ``h`` + SHA-256 hex. The tag letter keeps the two forms disjoint.
    """
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= _LONG_PART:
        return "b" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return "h" + hashlib.sha256(raw).hexdigest()


def member(ts_ms: int, event_id: str) -> str:
    """Sorted-set member for an event: ``0001732406400000|<id>``."""
    return f"{ts_ms:0{MEMBER_TS_DIGITS}d}|{event_id}"


def parse_member(m: str | bytes) -> tuple[int, str]:
    """Inverse of ``member``: ``(ts_ms, id)``."""
    s = m.decode("utf-8", "surrogatepass") if isinstance(m, bytes) else m
    return int(s[:MEMBER_TS_DIGITS]), s[MEMBER_TS_DIGITS + 1 :]


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """Key names of one tenant. Build with ``KeyLayout.tenant``."""

    base: str  # "es:{T}"

    @property
    def ids(self) -> str:
        return f"{self.base}:ids"

    @property
    def gpos(self) -> str:
        return f"{self.base}:gpos"

    @property
    def spos(self) -> str:
        return f"{self.base}:spos"

    @property
    def windows(self) -> str:
        return f"{self.base}:win"

    @property
    def seq(self) -> str:
        return f"{self.base}:seq"

    @property
    def tail(self) -> str:
        return f"{self.base}:tail"

    @property
    def watermark(self) -> str:
        return f"{self.base}:wm"

    @property
    def lease(self) -> str:
        return f"{self.base}:lease"

    @property
    def offsets(self) -> str:
        return f"{self.base}:offsets"

    def bodies(self, window: int) -> str:
        return f"{self.base}:b:{window}"

    @property
    def all(self) -> str:
        return f"{self.base}:z"

    def by_user(self, user_id: str) -> str:
        return f"{self.base}:zu:{encode_part(user_id)}"

    def by_type(self, type_: str) -> str:
        return f"{self.base}:zt:{encode_part(type_)}"

    def by_user_type(self, user_id: str, type_: str) -> str:
        return f"{self.base}:zut:{encode_part(user_id)}:{encode_part(type_)}"


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """All key names under one prefix (``EVENTSTRATA_KEY_PREFIX``)."""

    prefix: str = "es"

    def tenant(self, tenant: str) -> TenantKeys:
        return TenantKeys(f"{self.prefix}:{{{tenant}}}")

    @property
    def tenants(self) -> str:
        return f"{self.prefix}:tenants"

    def api_key(self, lookup: str) -> str:
        return f"{self.prefix}:apikey:{lookup}"

    def api_keys_of(self, tenant: str) -> str:
        return f"{self.prefix}:apikeys:{tenant}"

    @property
    def cursor_secret(self) -> str:
        return f"{self.prefix}:cursor-secret"
