"""Typed configuration from ``EVENTSTRATA_*`` environment variables.

Every setting is declared once, as a field of ``Settings`` carrying its variable, default,
kind and meaning; ``FIELDS`` (and the reference in docs/OPERATIONS.md generated from it) is
derived from those fields. ``Settings.from_env`` is the one parser of settings: it validates
everything at start and raises ``ConfigError`` naming the bad variable.

This module is the only one that reads the process environment (a unit test scans the
package for any other): besides ``Settings.from_env`` the small functions at the end serve
the variables that are not settings of the service (``api_url``, ``api_key``, ``cache_root``),
fill settings a tool takes from the running local stack (``fill_unset_settings``) and build a
child process's environment (``child_env``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from eventstrata.kafkaconn import KafkaSecurity
from eventstrata.keys import MAX_SHARDS, MAX_USER_SET, USER_SET_MAX, KeyLayout
from eventstrata.ratelimit import Budgets

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


MAX_KEY_CACHE_MS = 5_000
"""The longest ``EVENTSTRATA_API_KEY_CACHE`` may be: how long a revoked key may still be
accepted by an API process (``auth.ResolvedCache``)."""
MAX_API_PROCESSES = 64
"""Most API processes one ``serve`` runs (``EVENTSTRATA_API_PROCESSES``)."""


def parse_duration_ms(text: str) -> int:
    """Parse ``90m``, ``36h``, ``7d``, ``60s``, ``250ms`` into milliseconds.

    Raises ``ValueError`` for anything else (including a bare number and zero).
    """
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 250ms, 60s, 90m, 36h, 7d)")
    value = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value


def format_duration_ms(ms: int) -> str:
    """Inverse of ``parse_duration_ms`` using the largest exact unit."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


Kind = Literal["str", "int", "float", "bool", "duration", "duration or 0", "path"]
"""How a variable's text is parsed (``_convert``); shown in the configuration reference."""


def _convert(kind: Kind, raw: str) -> Any:
    """``raw`` (a variable's text) parsed as ``kind``. Raises ``ValueError``."""
    if kind == "str":
        return raw
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("expected true/false")
    if kind == "duration":
        return parse_duration_ms(raw)
    if kind == "duration or 0":  # a duration, or 0 (with or without a unit) for "off"
        m = _DURATION.match(raw)
        if raw.strip() == "0" or (m is not None and int(m.group(1)) == 0):
            return 0
        return parse_duration_ms(raw)
    if kind == "path":
        return Path(raw)
    raise ValueError(f"unknown kind {kind}")


@dataclass(frozen=True, slots=True)
class Field:
    """Documentation of one environment variable: its name, the ``Settings`` attribute it sets,
    its default as the variable's text, its kind (how the text is parsed) and what it means."""

    env: str
    attr: str
    default: str
    kind: Kind
    help: str


@overload
def _setting(env: str, default: str, kind: Literal["str"], help: str) -> str: ...
@overload
def _setting(env: str, default: str, kind: Literal["int", "duration", "duration or 0"], help: str) -> int: ...
@overload
def _setting(env: str, default: str, kind: Literal["float"], help: str) -> float: ...
@overload
def _setting(env: str, default: str, kind: Literal["bool"], help: str) -> bool: ...
@overload
def _setting(env: str, default: str, kind: Literal["path"], help: str) -> Path: ...
def _setting(env: str, default: str, kind: Kind, help: str) -> Any:
    """A ``Settings`` attribute declared by its variable: the attribute's default is ``default``
    parsed as ``kind`` (what an unset variable gives), and ``env``, ``default``, ``kind`` and
    ``help`` ride along as the field's metadata, from which ``FIELDS`` is built. ``help`` is
    prose wrapped like a docstring: its runs of white space become single spaces. Raises
    ``ValueError`` (at import) when ``default`` does not parse as ``kind``."""
    text = " ".join(help.split())
    return dataclasses.field(default=_convert(kind, default),
                             metadata={"env": env, "default": default, "kind": kind, "help": text})


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings of one process. Build with ``Settings.from_env``.

    Each attribute is declared once, with its variable (``_setting``): ``FIELDS`` and the
    configuration reference of docs/OPERATIONS.md are generated from these declarations."""

    kafka_bootstrap: str = _setting("EVENTSTRATA_KAFKA_BOOTSTRAP", "", "str", """
        Kafka bootstrap servers (host:port,...). Empty: `dev up` starts a local broker.""")
    kafka_security_protocol: str = _setting("EVENTSTRATA_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "str", """
        How every Kafka client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.""")
    kafka_sasl_mechanism: str = _setting("EVENTSTRATA_KAFKA_SASL_MECHANISM", "", "str", """
        With SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.""")
    kafka_username: str = _setting("EVENTSTRATA_KAFKA_USERNAME", "", "str", """
        With SASL: the user.""")
    kafka_password: str = _setting("EVENTSTRATA_KAFKA_PASSWORD", "", "str", """
        With SASL: the user's password (keep it in a secret).""")
    kafka_tls_ca: str = _setting("EVENTSTRATA_KAFKA_TLS_CA", "", "str", """
        With SSL or SASL_SSL: a PEM file of the CA(s) that signed the brokers' certificates (empty = the
        system's trust store).""")
    kafka_tls_cert: str = _setting("EVENTSTRATA_KAFKA_TLS_CERT", "", "str", """
        With SSL or SASL_SSL: a PEM client certificate, for brokers that require one.""")
    kafka_tls_key: str = _setting("EVENTSTRATA_KAFKA_TLS_KEY", "", "str", """
        The PEM private key of EVENTSTRATA_KAFKA_TLS_CERT.""")
    topic: str = _setting("EVENTSTRATA_TOPIC", "events.raw", "str", """
        Topic producers publish raw events to.""")
    dlq_topic: str = _setting("EVENTSTRATA_DLQ_TOPIC", "events.dlq", "str", """
        Dead-letter topic for bad input.""")
    topic_partitions: int = _setting("EVENTSTRATA_TOPIC_PARTITIONS", "4", "int", """
        Partitions of the raw topic when the project creates it (caps ingest workers).""")
    consumer_group: str = _setting("EVENTSTRATA_CONSUMER_GROUP", "eventstrata-ingest", "str", """
        Kafka consumer group of the ingest workers.""")
    kafka_session_timeout_ms: int = _setting("EVENTSTRATA_KAFKA_SESSION_TIMEOUT", "10s", "duration", """
        How long the group coordinator waits for a silent ingest worker (killed, partitioned) before its
        partitions go to the others (heartbeats go every third of it, at most every 3 s). The broker must
        allow it (`group.min.session.timeout.ms`, 6 s by default).""")
    ingest_instance_id: str = _setting("EVENTSTRATA_INGEST_INSTANCE_ID", "", "str", """
        Static group membership (Kafka's `group.instance.id`): a worker restarted with the same id gets its
        partitions back at once, without a rebalance and without waiting out the session timeout. Unique
        per worker (a second worker with the same id fences the first). A stopped static worker does not
        leave the group: its partitions wait for the session timeout. Empty = dynamic membership.""")
    redis_url: str = _setting("EVENTSTRATA_REDIS_URL", "", "str", """
        redis://host:port/db of the hot tier. Empty: `dev up` starts a local redis-server.""")
    redis_username: str = _setting("EVENTSTRATA_REDIS_USERNAME", "", "str", """
        Redis ACL user (when EVENTSTRATA_REDIS_URL names none); empty = the default user.""")
    redis_password: str = _setting("EVENTSTRATA_REDIS_PASSWORD", "", "str", """
        Redis password of that user (when EVENTSTRATA_REDIS_URL holds none): keep it in a secret, not in
        the URL.""")
    redis_tls_ca: str = _setting("EVENTSTRATA_REDIS_TLS_CA", "", "str", """
        With a rediss:// URL: a PEM file of the CA(s) that signed Redis' certificate (empty = the system's
        trust store).""")
    redis_tls_cert: str = _setting("EVENTSTRATA_REDIS_TLS_CERT", "", "str", """
        With a rediss:// URL: a PEM client certificate, for a Redis with tls-auth-clients on.""")
    redis_tls_key: str = _setting("EVENTSTRATA_REDIS_TLS_KEY", "", "str", """
        The PEM private key of EVENTSTRATA_REDIS_TLS_CERT.""")
    redis_cluster: bool = _setting("EVENTSTRATA_REDIS_CLUSTER", "false", "bool", """
        Treat EVENTSTRATA_REDIS_URL as a Redis Cluster seed node.""")
    key_prefix: str = _setting("EVENTSTRATA_KEY_PREFIX", "es", "str", """
        Prefix of every Redis key (lets several deployments or tests share one Redis).""")
    hot_shards: int = _setting("EVENTSTRATA_HOT_SHARDS", "1", "int", """
        Shards of each tenant's hot data (1-64): a tenant's users are spread over this many Redis Cluster
        hash tags, so one tenant's memory and write load divide over the Cluster's masters. 1 keeps a tenant
        in one slot (one atomic call per write). Set it before the first event is stored: changing it needs
        an empty hot tier.""")
    user_set_max: int = _setting("EVENTSTRATA_USER_SET_MAX", str(USER_SET_MAX), "int", f"""
        Most events one of a user's hot sorted sets holds before a write cuts it by time
        (2-{MAX_USER_SET}): Redis' zset-max-listpack-entries or less, so that every set stays a compact
        listpack (a set past that limit costs ~100 bytes more per event). Reads follow whatever cuts were
        made, so it may change at any time.""")
    archive_uri: str = _setting("EVENTSTRATA_ARCHIVE_URI", "", "str", """
        Parquet archive: a local directory, or s3://bucket/prefix (an S3 bucket or any S3-compatible store
        that supports conditional writes; credentials and region from the standard AWS_* variables, profiles
        or roles). Empty: `archive` under EVENTSTRATA_STATE_DIR.""")
    s3_endpoint: str = _setting("EVENTSTRATA_S3_ENDPOINT", "", "str", """
        Endpoint URL of an S3-compatible store (e.g. http://seaweedfs:8333); empty = AWS S3.""")
    archive_cache_mb: int = _setting("EVENTSTRATA_ARCHIVE_CACHE_MB", "1024", "int", """
        With an S3 archive: local copies of archive files the cold reader read, at most this many MiB
        (least recently used go first) under EVENTSTRATA_STATE_DIR/archive-local/cache. 0 = no copies:
        every cold query reads the row groups it needs from S3.""")
    archive_retention_ms: int = _setting("EVENTSTRATA_ARCHIVE_RETENTION", "0", "duration or 0", """
        Archived days whose whole day is older than this are deleted (0 = keep forever). Queries then find no
        event before the cut.""")
    hot_retention_ms: int = _setting("EVENTSTRATA_HOT_RETENTION", "7d", "duration", """
        Windows older than this (by event time) are moved to the archive.""")
    window_ms: int = _setting("EVENTSTRATA_WINDOW", "1h", "duration", """
        Hot-tier time window size (event time).""")
    archive_interval_ms: int = _setting("EVENTSTRATA_ARCHIVE_INTERVAL", "60s", "duration", """
        How often the archiver looks for due windows.""")
    archive_grace_ms: int = _setting("EVENTSTRATA_ARCHIVE_GRACE", "30s", "duration", """
        Archived events stay in Redis this long after the watermark passed them, so a query that read the
        previous watermark still finds them hot (queries must finish within it).""")
    archive_lease_ms: int = _setting("EVENTSTRATA_ARCHIVE_LEASE", "30s", "duration", """
        Per-tenant archiver lease; another archiver takes over this long after one dies.""")
    archive_compact_files: int = _setting("EVENTSTRATA_ARCHIVE_COMPACT_FILES", "8", "int", """
        A date with more archive files than this is compacted into one file.""")
    erasure_tombstone_ms: int = _setting("EVENTSTRATA_ERASURE_TOMBSTONE", "30d", "duration", """
        How long an erased user's tombstone lives: until then the ingest workers drop that user's events timed
        before the erasure (a topic replay, a producer resending). Keep it at least the raw topic's retention.
        Finished erasure jobs are kept as long.""")
    api_host: str = _setting("EVENTSTRATA_API_HOST", "127.0.0.1", "str", """
        Address the API binds to, and the workers' metrics and health port (EVENTSTRATA_METRICS_PORT);
        0.0.0.0 in a container.""")
    api_port: int = _setting("EVENTSTRATA_API_PORT", "8080", "int", """
        API port; 0 = any free port.""")
    api_processes: int = _setting("EVENTSTRATA_API_PROCESSES", "1", "int", """
        API processes sharing the port (one Python process uses one core): set it to the cores the API
        host gives the API. With more than one, a parent process supervises them (restarts one that dies)
        and `/metrics` sums every process's counters.""")
    api_key_cache_ms: int = _setting("EVENTSTRATA_API_KEY_CACHE", "1s", "duration or 0", """
        How long an API process trusts a key it found valid (0..5s; a revoked key is rejected within this
        time; 0 = read Redis on every request).""")
    state_dir: Path = _setting("EVENTSTRATA_STATE_DIR", ".eventstrata", "path", """
        Pids, logs, broker and Redis data of the local stack.""")
    max_event_bytes: int = _setting("EVENTSTRATA_MAX_EVENT_BYTES", "262144", "int", """
        Messages larger than this are dead-lettered (code `oversize`).""")
    ingest_max_bytes: int = _setting("EVENTSTRATA_INGEST_MAX_BYTES", "5242880", "int", """
        Largest body `POST /v1/ingest` takes, after gzip decompression (413 beyond).""")
    ingest_max_events: int = _setting("EVENTSTRATA_INGEST_MAX_EVENTS", "1000", "int", """
        Most events one `POST /v1/ingest` request may hold (413 beyond).""")
    ingest_timeout_ms: int = _setting("EVENTSTRATA_INGEST_TIMEOUT", "10s", "duration", """
        How long `POST /v1/ingest` waits for Kafka's acknowledgements before answering 503 (the client
        retries; events are stored once by id).""")
    rate_reads: int = _setting("EVENTSTRATA_RATE_READS", "0", "int", """
        Read requests (native, compatible, tail) per API key and second, over all API processes; 429 with
        `Retry-After` beyond. 0 = unlimited.""")
    rate_ingest: int = _setting("EVENTSTRATA_RATE_INGEST", "0", "int", """
        `POST /v1/ingest` requests per API key and second, over all API processes. 0 = unlimited.""")
    rate_ingest_events: int = _setting("EVENTSTRATA_RATE_INGEST_EVENTS", "0", "int", """
        Events sent to `POST /v1/ingest` per API key and second, over all API processes. 0 = unlimited.""")
    max_future_skew_ms: int = _setting("EVENTSTRATA_MAX_FUTURE_SKEW", "1d", "duration", """
        Events timestamped further than this in the future are dead-lettered.""")
    dlq_max_ratio: float = _setting("EVENTSTRATA_DLQ_MAX_RATIO", "0.5", "float", """
        Stop the worker when more than this share of a large enough batch window is invalid.""")
    dlq_max_consecutive: int = _setting("EVENTSTRATA_DLQ_MAX_CONSECUTIVE", "10000", "int", """
        Stop the worker after this many invalid messages in a row.""")
    batch_max: int = _setting("EVENTSTRATA_BATCH_MAX", "5000", "int", """
        Max messages per ingest batch (getmany).""")
    offsets_refresh_ms: int = _setting("EVENTSTRATA_OFFSETS_REFRESH", "1s", "duration", """
        How often an ingest worker records its partitions' offsets for tenants without new events and checks
        that Redis still holds what it recorded (heals a Redis that lost acknowledged writes by replaying
        from Kafka; bounds that replay for idle tenants).""")
    hot_compression: str = _setting("EVENTSTRATA_HOT_COMPRESSION", "zstd", "str", """
        How the ingest worker stores bodies in Redis: `zstd` (with the packaged dictionary, ~4x smaller) or
        `none` (the payload uncompressed). Readers accept both.""")
    tail_maxlen: int = _setting("EVENTSTRATA_TAIL_MAXLEN", "100000", "int", """
        Events each tenant's live-tail stream in Redis keeps at least (trimmed by whole write calls); a tail
        resumed from further back catches up from the tiers.""")
    tail_max_subscribers: int = _setting("EVENTSTRATA_TAIL_MAX_SUBSCRIBERS", "1000", "int", """
        Concurrent live-tail subscribers per tenant per API process (429 beyond).""")
    tail_buffer: int = _setting("EVENTSTRATA_TAIL_BUFFER", "10000", "int", """
        Live events buffered per tail subscriber; a subscriber that falls further behind gets `lagged` and
        catches up from storage.""")
    tail_heartbeat_ms: int = _setting("EVENTSTRATA_TAIL_HEARTBEAT", "15s", "duration", """
        Idle live-tail connections get a heartbeat (with the position reached) this often.""")
    cursor_secret: str = _setting("EVENTSTRATA_CURSOR_SECRET", "", "str", """
        HMAC secret for pagination cursors. Empty: derived from a random per-deployment value stored in
        Redis at first start.""")
    log_level: str = _setting("EVENTSTRATA_LOG_LEVEL", "INFO", "str", """
        Log level (DEBUG, INFO, WARNING, ERROR).""")
    metrics_port: int = _setting("EVENTSTRATA_METRICS_PORT", "0", "int", """
        Prometheus port of worker processes (0 = none; the API serves /metrics itself).""")

    def __post_init__(self) -> None:
        """An empty ``archive_uri`` means ``<state_dir>/archive``: the local stack's archive lives
        with the rest of its state."""
        if not self.archive_uri:
            object.__setattr__(self, "archive_uri", str(Path(self.state_dir) / "archive"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read and validate every ``EVENTSTRATA_*`` variable; ``overrides`` win over the env.

        Raises ``ConfigError`` naming the first bad variable.
        """
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in FIELDS:
            raw = source.get(f.env, f.default)
            try:
                values[f.attr] = _convert(f.kind, raw)
            except ValueError as exc:
                raise ConfigError(f"{f.env}={raw!r}: {exc}") from None
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field checks; raises ``ConfigError``."""
        if self.window_ms > 86_400_000 or 86_400_000 % self.window_ms != 0:
            raise ConfigError("EVENTSTRATA_WINDOW must divide one day (e.g. 15m, 1h, 6h, 1d)")
        if self.hot_retention_ms < self.window_ms:
            raise ConfigError("EVENTSTRATA_HOT_RETENTION must be at least one EVENTSTRATA_WINDOW")
        if not (0 <= self.api_port <= 65535):
            raise ConfigError("EVENTSTRATA_API_PORT must be 0..65535")
        if not 1 <= self.api_processes <= MAX_API_PROCESSES:
            raise ConfigError(f"EVENTSTRATA_API_PROCESSES must be 1..{MAX_API_PROCESSES}")
        if not (0 <= self.api_key_cache_ms <= MAX_KEY_CACHE_MS):
            raise ConfigError("EVENTSTRATA_API_KEY_CACHE must be 0..5s")
        if not (0.0 < self.dlq_max_ratio <= 1.0):
            raise ConfigError("EVENTSTRATA_DLQ_MAX_RATIO must be in (0, 1]")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", self.key_prefix):
            raise ConfigError("EVENTSTRATA_KEY_PREFIX must be 1-32 of [A-Za-z0-9._-]")
        if not 1 <= self.hot_shards <= MAX_SHARDS:
            raise ConfigError(f"EVENTSTRATA_HOT_SHARDS must be 1..{MAX_SHARDS}")
        if not 2 <= self.user_set_max <= MAX_USER_SET:
            raise ConfigError(f"EVENTSTRATA_USER_SET_MAX must be 2..{MAX_USER_SET}")
        if self.hot_compression not in ("zstd", "none"):
            raise ConfigError("EVENTSTRATA_HOT_COMPRESSION must be zstd or none")
        if min(self.rate_reads, self.rate_ingest, self.rate_ingest_events) < 0:
            raise ConfigError("EVENTSTRATA_RATE_* must be >= 0 (0 = unlimited)")
        if self.ingest_max_bytes < 1024 or self.ingest_max_events < 1:
            raise ConfigError("EVENTSTRATA_INGEST_MAX_BYTES >= 1024 and EVENTSTRATA_INGEST_MAX_EVENTS >= 1")
        if self.batch_max < 1 or self.max_event_bytes < 1024:
            raise ConfigError("EVENTSTRATA_BATCH_MAX >= 1 and EVENTSTRATA_MAX_EVENT_BYTES >= 1024")
        if not 1_000 <= self.kafka_session_timeout_ms <= 3_600_000:
            raise ConfigError("EVENTSTRATA_KAFKA_SESSION_TIMEOUT must be 1s..1h")
        if len(self.ingest_instance_id) > 249:
            raise ConfigError("EVENTSTRATA_INGEST_INSTANCE_ID must be at most 249 characters")
        problem = self.kafka_security().problem()
        if problem:
            raise ConfigError(problem)
        redis_tls = self.redis_tls_ca or self.redis_tls_cert or self.redis_tls_key
        if redis_tls and self.redis_url and not self.redis_url.startswith("rediss://"):
            raise ConfigError("EVENTSTRATA_REDIS_TLS_* are set but EVENTSTRATA_REDIS_URL is not rediss:// "
                              "(the connection would not be encrypted)")
        if self.archive_cache_mb < 0:
            raise ConfigError("EVENTSTRATA_ARCHIVE_CACHE_MB must be >= 0 (0 = no local copies)")
        if self.archive_retention_ms and self.archive_retention_ms < self.hot_retention_ms:
            raise ConfigError("EVENTSTRATA_ARCHIVE_RETENTION must be 0 (forever) or at least "
                              "EVENTSTRATA_HOT_RETENTION")
        if self.archive_uri.startswith("s3://") and not self.archive_uri[5:].split("/", 1)[0]:
            raise ConfigError("EVENTSTRATA_ARCHIVE_URI=s3://… must name a bucket")

    def kafka_security(self) -> KafkaSecurity:
        """How this deployment's Kafka clients connect (``kafkaconn``)."""
        return KafkaSecurity.of(self)

    def rate_budgets(self) -> Budgets:
        """The per-key rate limits of these settings (``ratelimit``)."""
        return Budgets(reads=self.rate_reads, ingest=self.rate_ingest, ingest_events=self.rate_ingest_events)

    def layout(self) -> KeyLayout:
        """The hot tier's key layout of these settings (prefix and shards)."""
        return KeyLayout(self.key_prefix, self.hot_shards, self.user_set_max)

    def to_env(self) -> dict[str, str]:
        """The settings as ``EVENTSTRATA_*`` variables (what `dev up` passes to children);
        ``Settings.from_env`` of them gives these settings back."""
        out: dict[str, str] = {}
        for f in FIELDS:
            value = getattr(self, f.attr)
            if f.kind == "duration" or (f.kind == "duration or 0" and value):
                out[f.env] = format_duration_ms(int(value))
            elif f.kind == "duration or 0":
                out[f.env] = "0"
            elif f.kind == "bool":
                out[f.env] = "true" if value else "false"
            else:
                out[f.env] = str(value)
        return out


FIELDS: tuple[Field, ...] = tuple(
    Field(f.metadata["env"], f.name, f.metadata["default"], f.metadata["kind"], f.metadata["help"])
    for f in dataclasses.fields(Settings)
)
"""Every setting's variable, in declaration order (built from the ``Settings`` fields)."""

_ENV_OF = {f.attr: f.env for f in FIELDS}


# -- the rest of the process environment ---------------------------------------------------------
# Variables that are not settings of the service: where tools find the API and its key, where the
# local stack caches downloads, and what child processes inherit. Read here and nowhere else.

API_URL_ENV = "EVENTSTRATA_API_URL"
"""The API base URL command-line clients (``eventstrata tail``) connect to."""
API_KEY_ENV = "EVENTSTRATA_API_KEY"
"""The API key command-line clients send."""
DEFAULT_API_PORT = 8080


def api_url(env: Mapping[str, str] | None = None) -> str:
    """The API base URL a command-line client uses when none is given: ``EVENTSTRATA_API_URL``,
    else ``http://<EVENTSTRATA_API_HOST>:<EVENTSTRATA_API_PORT>`` (port 0 counts as 8080), else,
    when those settings are invalid, ``http://127.0.0.1:8080``. ``env`` ``None`` means this
    process's environment. Never raises."""
    source = os.environ if env is None else env
    url = source.get(API_URL_ENV, "")
    if url:
        return url
    try:
        s = Settings.from_env(source)
    except ConfigError:
        return f"http://127.0.0.1:{DEFAULT_API_PORT}"
    return f"http://{s.api_host}:{s.api_port or DEFAULT_API_PORT}"


def api_key(env: Mapping[str, str] | None = None) -> str | None:
    """``EVENTSTRATA_API_KEY`` (``None`` when unset or empty); ``env`` ``None`` means this
    process's environment."""
    source = os.environ if env is None else env
    return source.get(API_KEY_ENV) or None


def fill_unset_settings(values: Mapping[str, str | None],
                        environ: MutableMapping[str, str] | None = None) -> None:
    """Set the variable of each ``Settings`` attribute named in ``values`` to its value where
    ``environ`` (``None``: this process's environment, which later ``Settings.from_env()`` calls
    read) leaves it unset or empty: set variables always win. ``None`` values are skipped.
    Raises ``KeyError`` for a name that is not a ``Settings`` attribute."""
    target = os.environ if environ is None else environ
    for attr, value in values.items():
        var = _ENV_OF[attr]
        if value is not None and not target.get(var):
            target[var] = value


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: a copy of this process's, with ``extra`` set over it
    (e.g. ``Settings.to_env()`` of the settings the child must run with)."""
    return {**os.environ, **(extra or {})}


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess mode: the directory where every process of a multi-process
``serve`` writes its metric values (read by prometheus_client when it is imported)."""


def shared_metrics_dir() -> str | None:
    """The multiprocess metrics directory of this process's environment, or None."""
    return os.environ.get(METRICS_DIR_ENV) or None


def share_metrics_dir(directory: str) -> None:
    """Make ``directory`` the multiprocess metrics directory of the processes this one starts
    from now on (they inherit its environment)."""
    os.environ[METRICS_DIR_ENV] = directory


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/eventstrata`` (default ``~/.cache/eventstrata``): downloads the local
    stack keeps across checkouts (the broker's jars, tools)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eventstrata"
