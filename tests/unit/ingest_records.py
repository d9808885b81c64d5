"""A stand-in for aiokafka's ``ConsumerRecord`` (the attributes the ingest pipeline reads), for
the pure ingest tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = b"{}"
    headers: tuple[tuple[str, bytes], ...] = ()
