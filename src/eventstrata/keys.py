"""The Redis key layout of the hot tier. Pure: builds key names and members, does no I/O.

By default (``EVENTSTRATA_HOT_SHARDS=1``) every key of one tenant carries the hash tag
``{<tenant>}``, so a tenant's keys live in one Redis Cluster slot and one Lua call can dedupe,
assign positions, store bodies, index and announce a whole batch of that tenant atomically.
With ``S > 1`` shards, the tenant's user and type sets and the types registries (``u``,
``t``, ``ty``, and each shard's own ``days`` and ``wm`` mirror) live in ``S`` shards with the hash tags of
``shard_tags`` (a user's sets always in the shard ``TenantKeys.shard_index`` picks), and the
keys under ``{<tenant>}`` keep the positions, id buckets, tail, offsets, W, lease and windows, plus
``conf``/``cr`` (the confirmed positions, ``hotstore/write.lua``). See docs/ARCHITECTURE.md.

Tenant ids are validated (``[A-Za-z0-9._-]{1,64}``) before they get here and contain no
``{``, ``}`` or ``:``. Every user-supplied part (user id, type) is encoded with ``encode_part``
so that no value can collide with another key, inject a separator or move a key into another
slot; an event without a user id is kept under the user part ``NO_USER``.

Layout, for prefix ``es`` and tenant ``T`` (``D`` = UTC day start in epoch ms, ``W`` = window
start, ``<u>``/``<t>`` = encoded user id / type):

==================================  =====================================================
``es:{T}:u:<u>:S``                  zset  a user set: the user's events of the day from S (the
                                    day start D, or a later start the ``us`` registry lists) to
                                    the next start, score = event time, member =
                                    ``body_member`` (the stored body is *in* the member; a set
                                    holds at most ``KeyLayout.user_set_max``, so it stays
                                    listpack-encoded)
``es:{T}:us``                       hash  ``<u>:D`` → the later starts of the user's sets of
                                    day D (``user_set_starts``); no field: one set, ``u:<u>:D``
``es:{T}:t:<t>:H``                  zset  the type's events of the hour starting at H
                                    (``TYPE_SET_MS``), ``short_member``
``es:{T}:ty:H``                     zset  the type parts with a ``t:<t>:H`` set, each at score 0:
                                    the types registry of the hour (tenant-wide reads merge those
                                    sets; a sorted set, so that it stays a listpack where Redis
                                    7.0 would keep a set of strings as a hashtable)
``es:{T}:hc``                       hash  hour start H → how many members the hour's type sets
                                    hold (kept by every write and removal: a tenant-wide count
                                    of whole hours reads it)
``es:{T}:q:<B>``                    hash  global position → ``seq_value`` (``<u>|ts``), for the positions
                                    ``B * SEQ_BLOCK`` .. ``(B + 1) * SEQ_BLOCK - 1``
``es:{T}:qb``                       zset  blocks B holding positions (score = B)
``es:{T}:i:<k>``                    hash  id bucket k: event id → ``ids_value`` (dedupe, positions;
                                    get by id reads the user part and time from the position)
``es:{T}:ib``                       hash  ``b`` = how many id buckets, ``n`` = how many ids they
                                    hold (also the key that routes the scripts' calls)
``es:{T}:gpos``                     string counter: last global position of the tenant
``es:{T}:pnode``                    string  run id of the Redis node that gave the tenant's last
                                    positions: on another node the next position jumps
                                    (``POS_PER_MS``), so that none is ever given twice
``es:{T}:spos``                     hash  stream key (``stream_key``) → last stream position
``es:{T}:win``                      zset  window starts holding hot events (score = W)
``es:{T}:days``                     zset  day starts holding hot events (score = D)
``es:{T}:tail``                     stream, one entry per write call: its new events, entry id
                                    ``<last gpos>-0`` (``hotstore.tailentry``)
``es:{T}:wm``                       string archive watermark W (ms); mirror of the manifest
``es:{T}:lease``                    string archiver lease holder (SET NX PX)
``es:{T}:offsets``                  hash  ``<topic>|<partition>`` → next Kafka offset whose records of
                                    this tenant are stored (written with the data, see
                                    ``ingest.recovery``)
``es:{T}:tomb``                     hash  user part → time (ms) of the user's erasure: the writer drops
                                    that user's events from before it (``erasure``)
``es:{T}:erasures``                 zset  erasure job ids (score = request time)
``es:{T}:erasure:<id>``             hash  one erasure job: user, status, counts (``erasure``)
``es:{T}:conf``, ``es:{T}:cr``      string, zset  (sharded tenants) C, the highest position up to
                                    which every position's event is in its shard, and the
                                    confirmed ranges above it (``lo-hi``, score lo)
``es:tenants``                      set   tenants that have ever stored an event
``es:lineage``                      hash  ``<topic>|<partition>`` → an offset the hot tier covers
                                    for every tenant (``ingest.recovery``)
``es:apikey:<lookup>``              hash  API key record (hash, tenant, created, revoked)
``es:apikeys:<tenant>``             set   lookup prefixes of a tenant's keys
==================================  =====================================================

Members. Every member starts with the event id escaped by ``escape_id`` (NUL → NUL 0x01) and
the terminator NUL NUL; the escape preserves byte order and the terminator sorts below any
escaped byte, so members at equal score sort by id, and ``(time, id)`` is a total order read
without ``WITHSCORES``-side parsing of ids:

- ``body_member`` = id, terminator, ``<t>|gpos|spos|`` and the stored body (``hotstore.codec``);
- ``short_member`` = id, terminator, ``<u>`` (where the body lives: the user set of
  ``<u>`` holding the score, at the score);
and a position's ``seq_value`` = ``<u>|ts``, where its body member is (the one whose ``gpos``
is the position): positions are dense, so blocks of ``SEQ_BLOCK`` of them are small
listpack-encoded hashes instead of one skiplist entry each, and neither they nor the id buckets
repeat what the body member holds.

Id buckets. A tenant's ids are spread over ``b`` small hashes by linear hashing, so that each
stays a listpack (~47 B per id, where one hash of every id costs ~85 B; the price is one
``HSETNX`` per event in the write script: docs/ARCHITECTURE.md, "Id buckets"), and a sharded
tenant's own slot, which holds what must be tenant-wide (ids, positions), stays small. An id's
hash ``h`` is the first 32 bits of its SHA-1 (``id_hash``: the writer passes it, readers and a
split compute it with ``redis.sha1hex``); with ``2^L <= b < 2^(L+1)`` its bucket is ``h mod
2^(L+1)``, or ``h mod 2^L`` when that is ``>= b``. A write that brings ``n`` above ``b *
ID_BUCKET_LOAD`` splits bucket ``b - 2^L`` into itself and bucket ``b`` (its ids whose ``h mod
2^(L+1)`` is ``b``) and counts ``b + 1``, as often as needed, in the same atomic call;
``id_bucket_of`` is the same rule in Python.

User sets. A user's events of day D live in ``u:<u>:D`` while it holds at most
``KeyLayout.user_set_max`` members (``USER_SET_MAX``, Redis' default
``zset-max-listpack-entries``), so that it stays a listpack (a skiplist costs ~100 B more per
body member). A write that would take a set past that cuts it by time: members after every
member of the set start a new set at the first one's time; otherwise the set and the new
members are cut into sets of about three quarters of the maximum, at score changes (members
of one millisecond never split). Each set is named by the start of its time range, and
``us`` lists the later starts of the day under ``<u>:D`` as ascending offsets from D,
comma-separated; a read of the user's day reads the sets whose range meets its own, in order
(``user_set_starts``, ``user_set_of``). The archiver's removal drops a day's field once no set
of it is left.

User+type reads filter the user's sets by the type part of the member; there is no index per
(user, type). Tenant-wide reads merge the type sets of each hour that the hour's types
registry lists; there is no index of every event. A user's sets hold a day each; the type
index sets hold an hour, so that they stay small enough for Redis' compact listpack encoding
(``localstack.redis.LAYOUT_SETTINGS``) where a skiplist entry would cost ~150 B per event. A
read walks the days of its range that ``days`` lists, and the index sets of each day.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from binascii import crc_hqx
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import overload

DAY_MS = 86_400_000
"""A user's sets (``u:<u>:D`` and the later starts ``us`` lists) hold one UTC day of that user's
events."""
TYPE_SET_MS = 3_600_000
"""A type's index set (``t:<t>:H``) holds one hour of that type's events (divides a day)."""
NO_USER = "_"
"""The user part of events without a user id (``encode_part`` forms start with ``b``/``h``)."""
SEQ_BLOCK = 128
"""Global positions per ``q:<B>`` hash (Redis' default ``hash-max-listpack-entries``)."""
ID_END = b"\0\0"
"""Ends the escaped id at the start of every member."""
_LONG_PART = 96
MAX_SHARDS = 64
"""Most shards per tenant (``EVENTSTRATA_HOT_SHARDS``)."""
MAX_USER_SET = 4096
"""Largest ``KeyLayout.user_set_max``."""
USER_SET_MAX = 128
"""Default most members of one user set (``KeyLayout.user_set_max``): Redis' default
``zset-max-listpack-entries``, up to which a sorted set is a listpack."""
ID_BUCKET_LOAD = 48
"""Ids per id bucket, on average, before a write splits one (``id_bucket_of``); an unsplit
bucket holds up to about twice as many, below Redis' default ``hash-max-listpack-entries``."""
POS_EPOCH_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: where the clock term of a position jump starts (``POS_PER_MS``)."""
POS_PER_MS = 1000
"""More positions than one tenant can be given per millisecond (a million events a second).
When a tenant's positions are given on another Redis node than its last ones (a restart, a
failover, a restore from a copy: the node may have lost acknowledged writes and the positions
they gave, which readers may have seen), they continue above the greatest of the last position
the node holds, the highest the writer saw acknowledged, and the node's clock in ms since
``POS_EPOCH_MS`` times this -- above every position given before, whatever was lost -- plus
``POS_GAP`` (``hotstore/write.lua``)."""
POS_GAP = 1 << 20
"""Added to a position jump (``POS_PER_MS``): room for clocks that differ between nodes by up to
a second."""
CLUSTER_SLOTS = 16_384
"""Hash slots of a Redis Cluster (the slot of a key is CRC-16 of its hash tag mod this)."""


def encode_part(value: str) -> str:
    """Encode a user-supplied key part into ``[A-Za-z0-9_-]`` with a one-letter form tag.

    Short values (≤ 96 UTF-8 bytes) → ``b`` + unpadded base64url (reversible, injective);
    longer ones → ``h`` + SHA-256 hex. The tag letter keeps the two forms disjoint.
    """
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= _LONG_PART:
        return "b" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return "h" + hashlib.sha256(raw).hexdigest()


def user_part(user_id: str | None) -> str:
    """The user part of an event's keys: ``encode_part(user_id)``, ``NO_USER`` when None."""
    return NO_USER if user_id is None else encode_part(user_id)


def day_of(ts_ms: int) -> int:
    """Start (epoch ms) of the UTC day holding ``ts_ms``."""
    return ts_ms - ts_ms % DAY_MS


def type_set_of(ts_ms: int) -> int:
    """Start (epoch ms) of the type index set holding ``ts_ms`` (``TenantKeys.type_set``)."""
    return ts_ms - ts_ms % TYPE_SET_MS


def id_hash(event_id: str) -> str:
    """The id's hash as the scripts take it: the first 8 hex digits of the SHA-1 of its UTF-8."""
    return hashlib.sha1(event_id.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:8]


def id_bucket_of(event_id: str, buckets: int) -> int:
    """The id bucket (``TenantKeys.id_bucket``) holding ``event_id`` when the tenant has
    ``buckets`` of them: linear hashing on the first 32 bits of the id's SHA-1 (the scripts'
    rule, see the layout above)."""
    h = int(id_hash(event_id), 16)
    level = 1 << (buckets.bit_length() - 1)
    b = h % (2 * level)
    return b if b < buckets else h % level


def escape_id(event_id: str) -> bytes:
    """The id as it starts a member: UTF-8 with NUL escaped as NUL 0x01 (order-preserving)."""
    raw = event_id.encode("utf-8", "surrogatepass")
    return raw.replace(b"\0", b"\0\1") if b"\0" in raw else raw


def split_member(m: bytes) -> tuple[str, bytes]:
    """Any member → ``(event id, the rest after the terminator)``. Raises ``ValueError``."""
    end = m.index(ID_END)
    raw = m[:end]
    if b"\0" in raw:
        raw = raw.replace(b"\0\1", b"\0")
    return raw.decode("utf-8", "surrogatepass"), m[end + 2:]


def body_member(event_id: str, type_part: str, gpos: int, spos: int | None, body: bytes) -> bytes:
    """Member of a user set (``u:<u>:S``): id, terminator, ``<t>|gpos|spos|`` body."""
    s = b"" if spos is None else str(spos).encode()
    return escape_id(event_id) + ID_END + b"%s|%d|%s|" % (type_part.encode(), gpos, s) + body


def short_member(event_id: str, user: str) -> bytes:
    """Member of a ``t:<t>:D`` / ``a:D`` set: id, terminator, the user part ``user``."""
    return escape_id(event_id) + ID_END + user.encode()


def user_set_starts(day: int, registered: bytes | str | None) -> list[int]:
    """The starts of a user's sets of ``day``, ascending: ``day``, then the starts its ``us``
    field ``registered`` (None: no field) lists as comma-separated offsets from ``day``. Raises
    ``ValueError`` for a malformed field."""
    out = [day]
    if registered:
        raw = registered.decode() if isinstance(registered, bytes) else registered
        out += [day + int(off) for off in raw.split(",")]
    if any(b <= a for a, b in pairwise(out)) or out[-1] >= day + DAY_MS:
        raise ValueError(f"malformed user set starts {registered!r} for day {day}")
    return out


def user_set_of(starts: list[int], ts_ms: int) -> int:
    """The start of the user set holding ``ts_ms``, of a day's ascending ``starts``."""
    return starts[max(0, bisect_right(starts, ts_ms) - 1)]


def seq_value(user: str, ts_ms: int) -> bytes:
    """A position's value in its ``q:<B>`` block: ``<u>|ts`` (its body member is in
    the user set of ``<u>`` holding ``ts``, at score ``ts``: the one holding the position)."""
    return f"{user}|{ts_ms}".encode()


DEFAULT_STORE = "default"
"""The event store of events that name none (``model.Event.store``)."""


def stream_key(store: str, stream_id: str) -> bytes:
    """The field of a stream in the tenant's ``spos`` hash: stream positions count per (tenant,
    store, stream). A stream of the default store is its id as UTF-8, unless the id starts
    with NUL; any other stream is NUL, the store name, NUL, the id. Store names hold no NUL
    (``model.STORE_RE``), so no two (store, stream) pairs share a field."""
    raw = stream_id.encode("utf-8", "surrogatepass")
    if store == DEFAULT_STORE and not raw.startswith(b"\0"):
        return raw
    return b"\0" + store.encode("ascii") + b"\0" + raw


def ids_value(gpos: int, spos: int | None) -> bytes:
    """An event's value in its id bucket: ``gpos|spos`` (``spos`` empty when None)."""
    return b"%d|%s" % (gpos, b"" if spos is None else str(spos).encode())


def hash_tag(base: str) -> str:
    """The hash tag of a base ``<prefix>:{<tag>}``: the tenant for a tenant's own base, the
    shard's tag for a shard's. Offsets records are named by it (``ingest.recovery``)."""
    return base[base.index("{") + 1:base.rindex("}")]


@lru_cache(maxsize=4096)
def shard_tags(tenant: str, shards: int) -> tuple[str, ...]:
    """The hash tags of a tenant's shards: shard ``s``'s is ``<tenant>/<s>`` or, when that one's
    Cluster slot is not in the ``s``-th ``shards``-th of the slot space, ``<tenant>/<s>.<k>``
    with the smallest ``k`` whose slot is. A Cluster's masters own contiguous ranges of slots,
    so the shards spread over them as evenly as the ranges are (``redis-cli --cluster create``
    makes them equal). Pure; ``/`` and ``.`` never appear in a tenant's own tag (tenant ids
    have no ``/``), so no shard's tag is another tenant's."""
    out: list[str] = []
    for s in range(shards):
        lo, hi = s * CLUSTER_SLOTS // shards, (s + 1) * CLUSTER_SLOTS // shards
        tag, k = f"{tenant}/{s}", 0
        while not lo <= crc_hqx(tag.encode(), 0) % CLUSTER_SLOTS < hi:
            k += 1
            tag = f"{tenant}/{s}.{k}"
        out.append(tag)
    return tuple(out)


class _Key:
    """A fixed key of a tenant (or shard): read on a ``TenantKeys``, the name
    ``<base>:<suffix>`` (the layout table above names each one by its suffix)."""

    __slots__ = ("_suffix",)

    def __init__(self, suffix: str) -> None:
        self._suffix = ":" + suffix

    @overload
    def __get__(self, keys: None, owner: type[TenantKeys]) -> _Key: ...
    @overload
    def __get__(self, keys: TenantKeys, owner: type[TenantKeys]) -> str: ...
    def __get__(self, keys: TenantKeys | None, owner: type[TenantKeys]) -> str | _Key:
        return self if keys is None else keys.base + self._suffix


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """Key names of one tenant (or of one of its shards). Build with ``KeyLayout.tenant``.

    ``base`` is the tenant's own base ``es:{T}`` (positions, ids, tail, offsets, W, lease,
    windows); ``shard_bases`` are the bases of the shards holding its user and type sets
    (``(base,)`` when the tenant is not sharded, else ``es:{<tag>}`` for each of
    ``shard_tags``)."""

    base: str  # "es:{T}"
    shard_bases: tuple[str, ...] = ()

    @property
    def sharded(self) -> bool:
        return len(self.shard_bases) > 1

    @property
    def bases(self) -> tuple[str, ...]:
        """Every base holding keys of the tenant: its own, then its shards' when it has any."""
        return (self.base, *self.shard_bases) if self.sharded else (self.base,)

    def shards(self) -> tuple[TenantKeys, ...]:
        """The key names of each shard (the tenant itself when it is not sharded)."""
        if not self.sharded:
            return (self,)
        return tuple(TenantKeys(b, (b,)) for b in self.shard_bases)

    def shard_index(self, user: str) -> int:
        """The shard holding the events of user part ``user`` (``user_part``): every event of a
        user lives in one shard. Pure, stable across processes (CRC-32)."""
        n = len(self.shard_bases)
        return 0 if n <= 1 else zlib.crc32(user.encode()) % n

    def shard_for(self, user: str) -> TenantKeys:
        """The key names of the shard holding user part ``user``."""
        return self.shards()[self.shard_index(user)]

    id_buckets = _Key("ib")
    gpos = _Key("gpos")
    position_node = _Key("pnode")
    spos = _Key("spos")
    days = _Key("days")
    user_sets = _Key("us")
    hour_counts = _Key("hc")
    windows = _Key("win")
    seq_blocks = _Key("qb")
    tail = _Key("tail")
    watermark = _Key("wm")
    lease = _Key("lease")
    offsets = _Key("offsets")
    tombstones = _Key("tomb")
    erasures = _Key("erasures")

    def erasure(self, job_id: str) -> str:
        """``erasure:<id>``: one erasure job's record (``erasure.py``)."""
        return f"{self.base}:erasure:{job_id}"

    def id_bucket(self, k: int) -> str:
        """``i:<k>``: id bucket ``k`` of the tenant (``id_bucket_of``)."""
        return f"{self.base}:i:{k}"

    def seq_block(self, block: int) -> str:
        """``q:<B>``: the global positions ``B * SEQ_BLOCK`` .. ``(B + 1) * SEQ_BLOCK - 1``."""
        return f"{self.base}:q:{block}"

    def user_set(self, user: str, start: int) -> str:
        """``u:<u>:S``: the user set starting at ``start`` (a day start, or a start the ``us``
        field of the day lists); ``user`` is the encoded user part (``user_part``)."""
        return f"{self.base}:u:{user}:{start}"

    def user_sets_field(self, user: str, day: int) -> str:
        """The field of ``us`` listing the later starts of the user's sets of ``day``."""
        return f"{user}:{day}"

    def type_set(self, type_part: str, start: int) -> str:
        """``t:<t>:H``; ``type_part`` is ``encode_part(type)``, ``start`` a ``type_set_of``."""
        return f"{self.base}:t:{type_part}:{start}"

    def types_of_hour(self, start: int) -> str:
        """``ty:H``: the type parts with a type set of the hour; ``start`` is a ``type_set_of``."""
        return f"{self.base}:ty:{start}"


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """All key names under one prefix (``EVENTSTRATA_KEY_PREFIX``), with each tenant's hot data
    in ``shards`` shards (``EVENTSTRATA_HOT_SHARDS``)."""

    prefix: str = "es"
    shards: int = 1
    user_set_max: int = USER_SET_MAX
    """Most members a write lets one user set hold (``EVENTSTRATA_USER_SET_MAX``): Redis'
    ``zset-max-listpack-entries`` or less. Reads follow the ``us`` registry whatever it was."""

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"shards must be 1..{MAX_SHARDS}")
        if not 2 <= self.user_set_max <= MAX_USER_SET:
            raise ValueError(f"user_set_max must be 2..{MAX_USER_SET}")

    def tenant(self, tenant: str) -> TenantKeys:
        base = self.base_of(tenant)
        if self.shards == 1:
            return TenantKeys(base, (base,))
        return TenantKeys(base, tuple(self.base_of(tag) for tag in shard_tags(tenant, self.shards)))

    def base_of(self, tag: str) -> str:
        """The base with hash tag ``tag`` (a tenant's own, or one of its shards'; ``hash_tag``)."""
        return f"{self.prefix}:{{{tag}}}"

    @property
    def tenants(self) -> str:
        return f"{self.prefix}:tenants"

    @property
    def lineage(self) -> str:
        """Hash ``<topic>|<partition>`` → an offset whose earlier records the hot tier holds (every
        tenant's), max-set by the ingest workers once a second (``ingest.recovery``): gone while
        Kafka has committed offsets means Redis lost its data."""
        return f"{self.prefix}:lineage"

    def api_key(self, lookup: str) -> str:
        return f"{self.prefix}:apikey:{lookup}"

    def api_keys_of(self, tenant: str) -> str:
        return f"{self.prefix}:apikeys:{tenant}"

    def rate(self, lookup: str, kind: str, window: int) -> str:
        """The counter of API key ``lookup``'s ``kind`` of use in rate-limit window ``window``
        (``ratelimit``; the lookup is ``[a-z0-9]{8}``, the kind a fixed word)."""
        return f"{self.prefix}:rate:{lookup}:{kind}:{window}"

    @property
    def cursor_secret(self) -> str:
        return f"{self.prefix}:cursor-secret"
