"""How event bodies are stored in the hot tier (``b:W`` hash values and tail entries). Pure.

A stored body is the canonical JSON of the event (``Event.to_json``) with **both positions
null**, either

- compressed: one zstd frame made with a packaged dictionary (the frame header names the
  dictionary's id, so every body says which dictionary decodes it), or
- plain JSON (it starts with ``{``): when compression is off (``EVENTSTRATA_HOT_COMPRESSION=none``)
  and for bodies written before compression existed, which carried their positions inline.

Positions are not in the compressed body: they are assigned inside the atomic Lua write, after
the body was compressed by the worker, and are kept where they already live — ``ids`` holds
``ts|gpos|spos`` for every id, a tail entry's id is the global position and its ``s`` field the
stream position. Readers put them back with ``with_positions``.

Why a dictionary: a body is ~850 bytes of JSON whose key names and vendor-block shapes repeat in
every event; zstd alone saves little on inputs this small, with a 16 KB dictionary trained on
canonical bodies the sample events shrink ~5× (measured: 851 → ~160 bytes, 2.5 µs to compress,
1 µs to decompress). The dictionaries are package data (``zstd-dict-<n>.bin``, made by
``python -m eventstrata.hotstore.traindict``), never changed in place and never removed while
bodies may name them; a new one is added to ``DICTIONARIES`` and becomes ``CURRENT``.

``BodyCodec`` instances are not thread-safe (zstd contexts); use one per thread.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import zstandard

from eventstrata.model import Event

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DICTIONARIES: dict[int, str] = {1: "zstd-dict-1.bin"}
"""Version → packaged file. Versions are only ever added."""
CURRENT = 1
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
        self._dicts = {d.dict_id(): d for d in (_load(n) for n in DICTIONARIES.values())}
        current = _load(DICTIONARIES[CURRENT])
        self._compressor = zstandard.ZstdCompressor(level=level, dict_data=current,
                                                    write_checksum=False, write_content_size=True,
                                                    write_dict_id=True)
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {}

    def encode(self, canonical_json: bytes) -> bytes:
        """The stored form of ``canonical_json`` (which must carry null positions)."""
        if not self.compress:
            return canonical_json
        out: bytes = self._compressor.compress(canonical_json)
        return out

    def decode(self, stored: bytes) -> bytes:
        """The canonical JSON of a stored body. Raises ``BodyError``."""
        if stored[:1] == b"{":
            return stored
        if stored[:4] != ZSTD_MAGIC:
            raise BodyError("stored body is neither JSON nor a zstd frame")
        try:
            dict_id = zstandard.get_frame_parameters(stored).dict_id
            dec = self._decompressors.get(dict_id)
            if dec is None:
                d = self._dicts.get(dict_id)
                if d is None:
                    raise BodyError(f"stored body names unknown zstd dictionary {dict_id}")
                dec = self._decompressors[dict_id] = zstandard.ZstdDecompressor(dict_data=d)
            out: bytes = dec.decompress(stored)
        except zstandard.ZstdError as exc:
            raise BodyError(f"corrupt stored body: {exc}") from None
        return out

    def event(self, stored: bytes, gpos: int | None = None, spos: int | None = None) -> Event:
        """The ``Event`` of a stored body; ``gpos``/``spos`` (each when not None) replace the
        body's (null, or for an old plain body, inline) positions. Raises ``BodyError``, or
        ``KeyError``/``TypeError``/``ValueError`` for JSON that is not a canonical event."""
        d: dict[str, Any] = orjson.loads(self.decode(stored))
        if gpos is not None:
            d["global_position"] = gpos
        if spos is not None:
            d["stream_position"] = spos
        return Event.from_dict(d)


    def stored_event(self, stored: bytes, ref: bytes | str | None) -> Event:
        """The ``Event`` of a stored body with the positions of its ``ids`` record ``ref``
        (``ts|gpos|spos``; None keeps the body's own). Raises like ``event`` and ``parse_ref``."""
        if ref is None:
            return self.event(stored)
        _, gpos, spos = parse_ref(ref)
        return self.event(stored, gpos, spos)


def parse_ref(ref: bytes | str) -> tuple[int, int, int | None]:
    """An ``ids`` value ``ts|gpos|spos`` → ``(ts, gpos, spos or None)``. Raises ``ValueError``."""
    s = ref.decode("ascii") if isinstance(ref, bytes) else ref
    ts, gpos, spos = s.split("|")
    return int(ts), int(gpos), (int(spos) if spos else None)
