"""A raw Kafka ``ApiVersions`` (v3) exchange over a socket: the cheapest proof that a broker
answers the Kafka protocol, and what it reports about itself (API ranges, finalized features
such as ``metadata.version``). Pure encode/decode functions plus one blocking probe.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

_API_VERSIONS = 18
_CLIENT_SOFTWARE = "eventstrata-stack"
_CLIENT_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class BrokerApiInfo:
    """What a broker reported in its ApiVersions response."""

    api_ranges: dict[int, tuple[int, int]]
    finalized_features: dict[str, tuple[int, int]]

    @property
    def metadata_version_level(self) -> int | None:
        rng = self.finalized_features.get("metadata.version")
        return rng[1] if rng else None


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _compact_str(text: str) -> bytes:
    raw = text.encode()
    return _uvarint(len(raw) + 1) + raw


def encode_request(correlation_id: int) -> bytes:
    """A length-prefixed ApiVersions v3 request (request header v2)."""
    client_id = b"eventstrata"
    header = struct.pack(">hhih", _API_VERSIONS, 3, correlation_id, len(client_id)) + client_id + b"\x00"
    body = _compact_str(_CLIENT_SOFTWARE) + _compact_str(_CLIENT_VERSION) + b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated ApiVersions response")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def compact_str(self) -> str:
        n = self.uvarint() - 1
        return self.take(n).decode() if n > 0 else ""

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def decode_response(frame: bytes, correlation_id: int) -> BrokerApiInfo:
    """Decode an ApiVersions v3 response frame (without its length prefix).

    Raises ``ValueError`` on a malformed frame, a wrong correlation id or a broker error code."""
    r = _Reader(frame)
    if r.int32() != correlation_id:
        raise ValueError("ApiVersions correlation id mismatch")
    error = r.int16()
    if error != 0:
        raise ValueError(f"ApiVersions error code {error}")
    ranges: dict[int, tuple[int, int]] = {}
    for _ in range(r.uvarint() - 1):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        r.skip_tags()
        ranges[key] = (lo, hi)
    r.int32()  # throttle_time_ms
    finalized: dict[str, tuple[int, int]] = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag != 2:
            r.take(size)
            continue
        for _ in range(r.uvarint() - 1):
            name = r.compact_str()
            max_level, min_level = r.int16(), r.int16()
            r.skip_tags()
            finalized[name] = (min_level, max_level)
    return BrokerApiInfo(ranges, finalized)


def probe(host: str, port: int, *, timeout: float = 3.0) -> BrokerApiInfo:
    """Blocking ApiVersions exchange with ``host:port``; raises ``OSError`` / ``ValueError``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode_request(1))
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        return decode_response(_recv_exact(sock, size), 1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf.extend(chunk)
    return bytes(buf)
