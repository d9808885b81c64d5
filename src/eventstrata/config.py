"""Typed configuration from ``EVENTSTRATA_*`` environment variables.

Every setting has a documented default (see docs/OPERATIONS.md, generated from ``FIELDS``).
``Settings.from_env`` validates everything at start and raises ``ConfigError`` naming the
bad variable; nothing else in the code reads the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from eventstrata.keys import MAX_SHARDS, KeyLayout

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


MAX_KEY_CACHE_MS = 5_000
"""The longest ``EVENTSTRATA_API_KEY_CACHE`` may be: how long a revoked key may still be
accepted by an API process (``auth.ResolvedCache``)."""


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


@dataclass(frozen=True, slots=True)
class Field:
    """Documentation of one environment variable."""

    env: str
    attr: str
    default: str
    kind: str
    help: str


FIELDS: tuple[Field, ...] = (
    Field("EVENTSTRATA_KAFKA_BOOTSTRAP", "kafka_bootstrap", "", "str",
          "Kafka bootstrap servers (host:port,...). Empty: `dev up` starts a local broker."),
    Field("EVENTSTRATA_TOPIC", "topic", "events.raw", "str", "Topic producers publish raw events to."),
    Field("EVENTSTRATA_DLQ_TOPIC", "dlq_topic", "events.dlq", "str", "Dead-letter topic for bad input."),
    Field("EVENTSTRATA_TOPIC_PARTITIONS", "topic_partitions", "4", "int",
          "Partitions of the raw topic when the project creates it (caps ingest workers)."),
    Field("EVENTSTRATA_CONSUMER_GROUP", "consumer_group", "eventstrata-ingest", "str",
          "Kafka consumer group of the ingest workers."),
    Field("EVENTSTRATA_REDIS_URL", "redis_url", "", "str",
          "redis://host:port/db of the hot tier. Empty: `dev up` starts a local redis-server."),
    Field("EVENTSTRATA_REDIS_CLUSTER", "redis_cluster", "false", "bool",
          "Treat EVENTSTRATA_REDIS_URL as a Redis Cluster seed node."),
    Field("EVENTSTRATA_KEY_PREFIX", "key_prefix", "es", "str",
          "Prefix of every Redis key (lets several deployments or tests share one Redis)."),
    Field("EVENTSTRATA_HOT_SHARDS", "hot_shards", "1", "int",
          "Shards of each tenant's hot data (1-64): a tenant's users are spread over this many "
          "Redis Cluster hash tags, so one tenant's memory and write load divide over the "
          "Cluster's masters. 1 keeps a tenant in one slot (one atomic call per write). Set it "
          "before the first event is stored: changing it needs an empty hot tier."),
    Field("EVENTSTRATA_ARCHIVE_URI", "archive_uri", "", "str",
          "Parquet archive: a local directory. Empty: `archive` under EVENTSTRATA_STATE_DIR. "
          "(s3://bucket/prefix is designed behind the Destination protocol but not implemented yet; "
          "it is rejected at start.)"),
    Field("EVENTSTRATA_HOT_RETENTION", "hot_retention_ms", "7d", "duration",
          "Windows older than this (by event time) are moved to the archive."),
    Field("EVENTSTRATA_WINDOW", "window_ms", "1h", "duration", "Hot-tier time window size (event time)."),
    Field("EVENTSTRATA_ARCHIVE_INTERVAL", "archive_interval_ms", "60s", "duration",
          "How often the archiver looks for due windows."),
    Field("EVENTSTRATA_ARCHIVE_GRACE", "archive_grace_ms", "30s", "duration",
          "Archived events stay in Redis this long after the watermark passed them, so a query "
          "that read the previous watermark still finds them hot (queries must finish within it)."),
    Field("EVENTSTRATA_ARCHIVE_LEASE", "archive_lease_ms", "30s", "duration",
          "Per-tenant archiver lease; another archiver takes over this long after one dies."),
    Field("EVENTSTRATA_ARCHIVE_COMPACT_FILES", "archive_compact_files", "8", "int",
          "A date with more archive files than this is compacted into one file."),
    Field("EVENTSTRATA_API_HOST", "api_host", "127.0.0.1", "str", "Address the API binds to."),
    Field("EVENTSTRATA_API_PORT", "api_port", "8080", "int", "API port; 0 = any free port."),
    Field("EVENTSTRATA_API_KEY_CACHE", "api_key_cache_ms", "1s", "duration or 0",
          "How long an API process trusts a key it found valid (0..5s; a revoked key is rejected "
          "within this time; 0 = read Redis on every request)."),
    Field("EVENTSTRATA_STATE_DIR", "state_dir", ".eventstrata", "path",
          "Pids, logs, broker and Redis data of the local stack."),
    Field("EVENTSTRATA_MAX_EVENT_BYTES", "max_event_bytes", "262144", "int",
          "Messages larger than this are dead-lettered (code `oversize`)."),
    Field("EVENTSTRATA_MAX_FUTURE_SKEW", "max_future_skew_ms", "1d", "duration",
          "Events timestamped further than this in the future are dead-lettered."),
    Field("EVENTSTRATA_DLQ_MAX_RATIO", "dlq_max_ratio", "0.5", "float",
          "Stop the worker when more than this share of a large enough batch window is invalid."),
    Field("EVENTSTRATA_DLQ_MAX_CONSECUTIVE", "dlq_max_consecutive", "10000", "int",
          "Stop the worker after this many invalid messages in a row."),
    Field("EVENTSTRATA_BATCH_MAX", "batch_max", "5000", "int", "Max messages per ingest batch (getmany)."),
    Field("EVENTSTRATA_OFFSETS_REFRESH", "offsets_refresh_ms", "1s", "duration",
          "How often an ingest worker records its partitions' offsets for tenants without new "
          "events and checks that Redis still holds what it recorded (heals a Redis that lost "
          "acknowledged writes by replaying from Kafka; bounds that replay for idle tenants)."),
    Field("EVENTSTRATA_HOT_COMPRESSION", "hot_compression", "zstd", "str",
          "How the ingest worker stores bodies in Redis: `zstd` (with the packaged dictionary, ~4x "
          "smaller) or `none` (the payload uncompressed). Readers accept both."),
    Field("EVENTSTRATA_TAIL_MAXLEN", "tail_maxlen", "100000", "int",
          "Events each tenant's live-tail stream in Redis keeps at least (trimmed by whole "
          "write calls); a tail resumed from further back catches up from the tiers."),
    Field("EVENTSTRATA_TAIL_MAX_SUBSCRIBERS", "tail_max_subscribers", "1000", "int",
          "Concurrent live-tail subscribers per tenant per API process (429 beyond)."),
    Field("EVENTSTRATA_TAIL_BUFFER", "tail_buffer", "10000", "int",
          "Live events buffered per tail subscriber; a subscriber that falls further behind gets "
          "`lagged` and catches up from storage."),
    Field("EVENTSTRATA_TAIL_HEARTBEAT", "tail_heartbeat_ms", "15s", "duration",
          "Idle live-tail connections get a heartbeat (with the position reached) this often."),
    Field("EVENTSTRATA_CURSOR_SECRET", "cursor_secret", "", "str",
          "HMAC secret for pagination cursors. Empty: derived from a random per-deployment value "
          "stored in Redis at first start."),
    Field("EVENTSTRATA_LOG_LEVEL", "log_level", "INFO", "str", "Log level (DEBUG, INFO, WARNING, ERROR)."),
    Field("EVENTSTRATA_METRICS_PORT", "metrics_port", "0", "int",
          "Prometheus port of worker processes (0 = none; the API serves /metrics itself)."),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings of one process. Build with ``Settings.from_env``."""

    kafka_bootstrap: str = ""
    topic: str = "events.raw"
    dlq_topic: str = "events.dlq"
    topic_partitions: int = 4
    consumer_group: str = "eventstrata-ingest"
    redis_url: str = ""
    redis_cluster: bool = False
    key_prefix: str = "es"
    hot_shards: int = 1
    archive_uri: str = ""
    """Empty means ``<state_dir>/archive`` (resolved at construction, see ``__post_init__``)."""
    hot_retention_ms: int = 7 * 86_400_000
    window_ms: int = 3_600_000
    archive_interval_ms: int = 60_000
    archive_grace_ms: int = 30_000
    archive_lease_ms: int = 30_000
    archive_compact_files: int = 8
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_key_cache_ms: int = 1_000
    state_dir: Path = Path(".eventstrata")
    max_event_bytes: int = 262_144
    max_future_skew_ms: int = 86_400_000
    dlq_max_ratio: float = 0.5
    dlq_max_consecutive: int = 10_000
    batch_max: int = 5000
    offsets_refresh_ms: int = 1_000
    hot_compression: str = "zstd"
    tail_maxlen: int = 100_000
    tail_max_subscribers: int = 1000
    tail_buffer: int = 10_000
    tail_heartbeat_ms: int = 15_000
    cursor_secret: str = ""
    log_level: str = "INFO"
    metrics_port: int = 0

    def __post_init__(self) -> None:
        if not self.archive_uri:  # the local stack's archive lives with the rest of its state
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
        if not (0 <= self.api_key_cache_ms <= MAX_KEY_CACHE_MS):
            raise ConfigError("EVENTSTRATA_API_KEY_CACHE must be 0..5s")
        if not (0.0 < self.dlq_max_ratio <= 1.0):
            raise ConfigError("EVENTSTRATA_DLQ_MAX_RATIO must be in (0, 1]")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", self.key_prefix):
            raise ConfigError("EVENTSTRATA_KEY_PREFIX must be 1-32 of [A-Za-z0-9._-]")
        if not 1 <= self.hot_shards <= MAX_SHARDS:
            raise ConfigError(f"EVENTSTRATA_HOT_SHARDS must be 1..{MAX_SHARDS}")
        if self.hot_compression not in ("zstd", "none"):
            raise ConfigError("EVENTSTRATA_HOT_COMPRESSION must be zstd or none")
        if self.batch_max < 1 or self.max_event_bytes < 1024:
            raise ConfigError("EVENTSTRATA_BATCH_MAX >= 1 and EVENTSTRATA_MAX_EVENT_BYTES >= 1024")

    def layout(self) -> KeyLayout:
        """The hot tier's key layout of these settings (prefix and shards)."""
        return KeyLayout(self.key_prefix, self.hot_shards)

    def to_env(self) -> dict[str, str]:
        """The settings as ``EVENTSTRATA_*`` variables (what `dev up` passes to children)."""
        out: dict[str, str] = {}
        by_attr = {f.attr: f for f in FIELDS}
        for fld in fields(self):
            meta = by_attr[fld.name]
            value = getattr(self, fld.name)
            if meta.kind == "duration" or (meta.kind == "duration or 0" and value):
                out[meta.env] = format_duration_ms(int(value))
            elif meta.kind == "duration or 0":
                out[meta.env] = "0"
            elif meta.kind == "bool":
                out[meta.env] = "true" if value else "false"
            else:
                out[meta.env] = str(value)
        return out


def _convert(kind: str, raw: str) -> Any:
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
