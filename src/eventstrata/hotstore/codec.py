"""How event bodies are stored in the hot tier (the bodies in users' sorted-set members). Pure.

A stored body is a *payload* either

- compressed, as the writer stores it: one byte naming the packaged dictionary's version
  (``\x04`` for dictionary 4, ``TAGGED``) + a zstd frame made with that dictionary, without
  the frame's magic number and dictionary id (``FORMAT_ZSTD1_MAGICLESS``, ``write_dict_id=0``:
  the tag byte says both, 7 bytes less per body than a whole frame);
- compressed with an older dictionary (1-3): one whole zstd frame whose header names the
  dictionary's id; readers accept it, the writer does not write it; or
- plain (``EVENTSTRATA_HOT_COMPRESSION=none``).

Payload layouts, told apart by their first byte:

- **lean** (``\x03``, the layout the writer writes): ``\x03`` + ``received_at`` in decimal +
  ``\n`` + the two JSON objects of ``native_shape.native_parts`` (the native fields without the
  id, the two times and the positions), each followed by ``\n``, + the ``vendor`` block's JSON.
  The id, the event time and the positions are not in it: the body's sorted-set member starts
  with the id and holds the positions, its score is the time (``keys``), and a reader passes
  them in. A native page splices the id, the two times as text and the positions around the
  two objects' bytes (``native_json``): no JSON parse, no ``Event`` (~2 against ~10 µs per
  event through ``Event``). No part can hold a raw newline (orjson escapes control
  characters), so the newlines cut the parts. Leaving out what the member and the score
  hold saves ~45 of ~205 compressed bytes per sample event (the id is random, so it does not
  compress).
- **split** (``\x02``): ``\x02`` + the native JSON without positions + ``\n`` +
  ``{"timestamp", "received_at", "vendor"}``. Readers accept it; the writer does not write it.
- **canonical** (``{``): the canonical JSON of the event (``Event.to_json``), compressed with
  dictionary 1 and null positions, or plain with its positions inline. Readers accept it; the
  writer does not write it.

Positions are not in a body: they are assigned inside the atomic Lua write, after the body was
encoded by the worker, and kept next to it -- the body's sorted-set member holds ``gpos|spos``
before the body (``keys``). Readers put them back, with the id and the time of a lean body
(``event``, ``stored_event``, ``native_json``).

Why a dictionary: a body is ~850 bytes of JSON whose key names and vendor-block shapes repeat in
every event; zstd alone saves little on inputs this small, with a dictionary trained on stored
payloads the sample events shrink ~4-6x (measured on 20,000 of the benchmark's sample events:
canonical 851 -> 183 bytes with dictionary 1, split 887 -> 205 bytes with dictionary 2, lean
719 -> 149 bytes with dictionary 3, all 16 KB; on 5,000 held-out training samples, lean 729 ->
131.5 bytes with dictionary 3 and 119.0 with dictionary 4, 32 KB, tagged; 2 us to compress,
1 us to decompress). The
dictionaries are package data (``zstd-dict-<n>.bin``, made by ``python -m
eventstrata_bench.traindict``), never changed in place and never removed while bodies may
name them; a new one is added to ``DICTIONARIES`` and becomes ``CURRENT``.

``BodyCodec`` instances are not thread-safe (zstd contexts); use one per thread.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import zstandard

from eventstrata.formats.common import iso_ms
from eventstrata.model import Event
from eventstrata.native_shape import native_event, native_parts

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DICTIONARIES: dict[int, str] = {1: "zstd-dict-1.bin", 2: "zstd-dict-2.bin", 3: "zstd-dict-3.bin",
                                4: "zstd-dict-4.bin"}
"""Version -> packaged file. Versions are only ever added. 1 was trained on canonical payloads,
2 on split ones, 3 and 4 on lean ones (``eventstrata_bench.traindict``)."""
CURRENT = 4
TAGGED = range(4, 16)
"""Versions whose bodies are a tag byte (the version) + a magicless frame without dictionary id;
the first bytes of plain payloads (``{``, ``\x02``, ``\x03``) and of whole frames (``\x28``)
are outside it."""
MAX_PAYLOAD = 64 << 20
"""Largest payload a tagged frame may announce (events are far smaller): a frame header naming
more is corrupt and raises ``BodyError`` rather than allocating it."""
LEAN = b"\x03"
"""First byte of a lean payload."""
SPLIT = b"\x02"
"""First byte of a split payload."""
DICTIONARY_FILE = resources.files("eventstrata.hotstore").joinpath(DICTIONARIES[CURRENT])
LEVEL = 3


class BodyError(ValueError):
    """A stored body that cannot be decoded (corrupt, or made with an unknown dictionary)."""


def _load(name: str) -> zstandard.ZstdCompressionDict:
    data = resources.files("eventstrata.hotstore").joinpath(name).read_bytes()
    return zstandard.ZstdCompressionDict(data)


class BodyCodec:
    """Encodes bodies for storage and decodes them back. ``compress=False`` writes plain JSON;
    decoding always accepts both forms."""

    def __init__(self, *, compress: bool = True, level: int = LEVEL) -> None:
        self.compress = compress
        loaded = {v: _load(name) for v, name in DICTIONARIES.items()}
        self._framed = {d.dict_id(): d for v, d in loaded.items() if v not in TAGGED}
        self._tagged = {v: d for v, d in loaded.items() if v in TAGGED}
        current = self._tagged[CURRENT]
        params = zstandard.ZstdCompressionParameters.from_level(
            level, source_size=1024, dict_size=len(current.as_bytes()),
            format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_checksum=0, write_content_size=1, write_dict_id=0)
        self._compressor = zstandard.ZstdCompressor(compression_params=params, dict_data=current)
        self._tag = bytes((CURRENT,))
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {}
        self._tagged_decompressors: dict[int, zstandard.ZstdDecompressor] = {}

    def encode(self, payload: bytes) -> bytes:
        """The stored form of ``payload`` (``lean_payload`` of an event, or any payload layout
        readers accept): the tag byte of the current dictionary + its magicless frame."""
        if not self.compress:
            return payload
        out: bytes = self._tag + self._compressor.compress(payload)
        return out

    def encode_event(self, event: Event) -> bytes:
        """The stored form of ``event`` (lean layout: no id, time or positions)."""
        return self.encode(lean_payload(event))

    def decode(self, stored: bytes) -> bytes:
        """The payload of a stored body (decompressed). Raises ``BodyError``."""
        if stored[:1] in _PLAIN_FIRST:
            return stored
        if stored[:1] and stored[0] in TAGGED:
            return self._decode_tagged(stored)
        if stored[:4] != ZSTD_MAGIC:
            raise BodyError("stored body is neither JSON nor a zstd frame")
        try:
            dict_id = zstandard.get_frame_parameters(stored).dict_id
            dec = self._decompressors.get(dict_id)
            if dec is None:
                d = self._framed.get(dict_id)
                if d is None:
                    raise BodyError(f"stored body names unknown zstd dictionary {dict_id}")
                dec = self._decompressors[dict_id] = zstandard.ZstdDecompressor(dict_data=d)
            out: bytes = dec.decompress(stored)
        except zstandard.ZstdError as exc:
            raise BodyError(f"corrupt stored body: {exc}") from None
        return out

    def _decode_tagged(self, stored: bytes) -> bytes:
        version = stored[0]
        dec = self._tagged_decompressors.get(version)
        if dec is None:
            d = self._tagged.get(version)
            if d is None:
                raise BodyError(f"stored body names unknown zstd dictionary version {version}")
            dec = self._tagged_decompressors[version] = zstandard.ZstdDecompressor(
                dict_data=d, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
        try:
            frame = stored[1:]
            size = zstandard.get_frame_parameters(frame, format=zstandard.FORMAT_ZSTD1_MAGICLESS).content_size
            if size > MAX_PAYLOAD:  # a corrupt header, not a body the writer made
                raise BodyError(f"corrupt stored body: content size {size}")
            out: bytes = dec.decompress(frame)
        except zstandard.ZstdError as exc:
            raise BodyError(f"corrupt stored body: {exc}") from None
        return out

    def event(self, stored: bytes, gpos: int | None = None, spos: int | None = None, *,
              eid: str | None = None, ts: int | None = None) -> Event:
        """The ``Event`` of a stored body; ``gpos``/``spos`` (each when not None) replace the
        body's (null, or for an old plain body, inline) positions. A lean body needs ``eid``
        and ``ts`` (its member's id and its score). Raises ``BodyError``, or
        ``KeyError``/``TypeError``/``ValueError`` for JSON that is not a canonical event."""
        d = _canonical_dict(self.decode(stored), eid, ts)
        if gpos is not None:
            d["global_position"] = gpos
        if spos is not None:
            d["stream_position"] = spos
        return Event.from_dict(d)

    def stored_event(self, stored: bytes, ref: bytes | str | None, eid: str, ts: int) -> Event:
        """The ``Event`` of a stored body read with its id ``eid``, time ``ts`` and ref ``ref``
        (``gpos|spos``; None keeps the body's own positions). Raises like ``event`` and
        ``parse_ref``."""
        if ref is None:
            return self.event(stored, eid=eid, ts=ts)
        gpos, spos = parse_ref(ref)
        return self.event(stored, gpos, spos, eid=eid, ts=ts)

    def native_json(self, stored: bytes, ref: bytes | None, eid: str, ts: int) -> bytes:
        """The native JSON (``native_shape.native_event``, the same bytes ``orjson.dumps`` makes
        of it) of a stored body read with its id ``eid``, time ``ts`` and ref ``ref`` (None: the
        body's own positions). For a lean or split payload the id, times and positions are
        spliced around the stored JSON's bytes: nothing is parsed. Raises like
        ``stored_event``."""
        payload = self.decode(stored)
        first = payload[:1]
        if first not in (LEAN, SPLIT):
            return orjson.dumps(native_event(self.stored_event(stored, ref, eid, ts)))
        gpos, spos = b"null", b"null"
        if ref is not None:
            gpos, spos = ref.split(b"|")
            if not gpos.isdigit() or not (spos.isdigit() or not spos):
                raise ValueError(f"malformed ref {ref!r}")
            spos = spos or b"null"
        if first == SPLIT:
            head = payload[1 : payload.index(b"\n") - 1]  # the native object without its closing brace
            return b'%b,"stream_position":%b,"global_position":%b}' % (head, spos, gpos)
        received, head, tail, _ = payload[1:].split(b"\n", 3)
        return _LEAN_NATIVE % (orjson.dumps(eid), head[1:-1], iso_ms(ts).encode(),
                               iso_ms(int(received)).encode(), tail[1:-1], spos, gpos)


_PLAIN_FIRST = (b"{", SPLIT, LEAN)
_LEAN_NATIVE = (b'{"id":%b,%b,"timestamp":"%b","received_at":"%b",%b,'
                b'"stream_position":%b,"global_position":%b}')


def lean_payload(event: Event) -> bytes:
    """The lean payload of ``event`` (see the module docstring). Pure; its id, time and
    positions are left out whatever they are."""
    head, tail = native_parts(event)
    return b"%b%d\n%b\n%b\n%b" % (LEAN, event.received_at, orjson.dumps(head), orjson.dumps(tail),
                                   orjson.dumps(event.vendor))


def _canonical_dict(payload: bytes, eid: str | None, ts: int | None) -> dict[str, Any]:
    """A payload of any layout as a dict ``Event.from_dict`` takes (a lean one completed with
    ``eid`` and ``ts``). Raises ``orjson.JSONDecodeError``/``KeyError``/``TypeError``/
    ``ValueError`` for one that is not."""
    first = payload[:1]
    if first == LEAN:
        if eid is None or ts is None:
            raise ValueError("a lean body is read with its id and time")
        received, head, tail, vendor = payload[1:].split(b"\n", 3)
        d: dict[str, Any] = orjson.loads(head)
        d.update(orjson.loads(tail))
        d["id"] = eid
        d["timestamp"] = ts
        d["received_at"] = int(received)
        d["vendor"] = orjson.loads(vendor)
        return d
    if first != SPLIT:
        d = orjson.loads(payload)
        return d
    nl = payload.index(b"\n")
    d = orjson.loads(payload[1:nl])
    rest = orjson.loads(payload[nl + 1 :])
    d["timestamp"] = rest["timestamp"]
    d["received_at"] = rest["received_at"]
    d["vendor"] = rest["vendor"]
    return d


def parse_ref(ref: bytes | str) -> tuple[int, int | None]:
    """A ref ``gpos|spos`` (the positions of a stored body, as its member holds them) →
    ``(gpos, spos or None)``. Raises ``ValueError``."""
    s = ref.decode("ascii") if isinstance(ref, bytes) else ref
    gpos, spos = s.split("|")
    return int(gpos), (int(spos) if spos else None)
