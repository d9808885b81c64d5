"""Trains the hot tier's zstd dictionary from the project's own sample events (development tool).

``python -m eventstrata_bench.traindict [OUT]`` writes ``zstd-dict-<n>.bin`` (default: the
packaged file of the current version, see ``codec.DICTIONARY_FILE``). The bodies are the stored
payloads (``codec.lean_payload``, as the writer stores them; dictionary 1 was trained on
canonical JSON, ``layout="canonical"``, dictionary 2 on the split payloads that readers still
accept) of 10,000 events of all five formats from ``formats.samples`` with a fixed seed, so a
run is reproducible (dictionaries 1 to 3 were trained on the first 3,000 of them, 16 KB
each; 4 is 32 KB: ~12 bytes less per stored body than 3, for no measurable compression
time). The dictionary then holds what every body repeats: the key names, the
vendor blocks' shapes, common values. A shipped dictionary is never changed in place: stored
bodies name it by its id. A new one is added as a new file next to it (and registered in
``codec.DICTIONARIES``), so old bodies stay readable.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import orjson
import zstandard

from eventstrata.formats.normalize import normalize
from eventstrata.formats.samples import encode_headers, sample_event
from eventstrata.hotstore.codec import lean_payload
from eventstrata.model import FORMATS, Event

SAMPLES = 10_000
DICT_SIZE = 32_768
OLD_SAMPLES, OLD_DICT_SIZE = 3000, 16_384
"""How dictionaries 1 to 3 were trained."""
SEED = 20261201


def training_bodies(n: int = SAMPLES, seed: int = SEED, *, layout: str = "lean") -> list[bytes]:
    """Payloads of ``n`` sample events in ``layout`` ("lean" or "canonical"; deterministic)."""

    rng = random.Random(seed)
    out: list[bytes] = []
    base = 1_760_000_000_000
    for i in range(n):
        fmt = FORMATS[i % len(FORMATS)]
        obj, headers = sample_event(rng, fmt, f"tenant-{i % 7}", f"user-{rng.randrange(50_000)}",
                                    base + rng.randrange(90 * 86_400_000))
        ev = normalize(orjson.dumps(obj), encode_headers(headers), now_ms=base + 91 * 86_400_000)
        if not isinstance(ev, Event):
            raise RuntimeError(f"sample {i} ({fmt}) did not normalize: {ev}")
        out.append(lean_payload(ev) if layout == "lean" else ev.to_json())
    return out


def train(bodies: list[bytes], size: int = DICT_SIZE) -> bytes:
    """A zstd dictionary of ``size`` bytes for ``bodies`` (single-threaded, so reproducible)."""
    samples: list[bytes | bytearray | memoryview[int]] = list(bodies)
    out: bytes = zstandard.train_dictionary(size, samples, level=3, threads=0).as_bytes()
    return out


def main(argv: list[str] | None = None) -> int:
    from eventstrata.hotstore.codec import DICTIONARY_FILE

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(str(DICTIONARY_FILE))
    data = train(training_bodies())
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes, dictionary id {zstandard.ZstdCompressionDict(data).dict_id()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
