"""The stored-body codec (``hotstore.codec``): round trips, both stored forms, bad input. Pure."""

from __future__ import annotations

import contextlib
import random

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstrata.formats.normalize import normalize
from eventstrata.formats.samples import encode_headers, sample_event
from eventstrata.hotstore.codec import DICTIONARY_FILE, BodyCodec, BodyError, parse_ref
from eventstrata.hotstore.traindict import train, training_bodies
from eventstrata.model import FORMATS, Event


def _events(n: int = 50, seed: int = 11) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        obj, headers = sample_event(rng, FORMATS[i % len(FORMATS)], "acme", f"u-{i}", 1_764_000_000_000 + i)
        e = normalize(orjson.dumps(obj), encode_headers(headers), now_ms=1_800_000_000_000)
        assert isinstance(e, Event)
        out.append(e)
    return out


def test_round_trip_with_positions_from_outside() -> None:
    codec = BodyCodec()
    for i, e in enumerate(_events()):
        stored = codec.encode(e.to_json())
        assert stored[:4] == b"\x28\xb5\x2f\xfd" and len(stored) < len(e.to_json()) / 2
        assert codec.decode(stored) == e.to_json()
        spos = i if i % 2 else None
        assert codec.event(stored, i + 1, spos) == e.with_positions(i + 1, spos)
        assert codec.event(stored) == e  # positions stay null without a ref


def test_plain_json_is_stored_as_is_and_keeps_inline_positions() -> None:
    e = _events(1)[0].with_positions(7, 3)
    plain = BodyCodec(compress=False)
    assert plain.encode(e.to_json()) == e.to_json()
    # old bodies (written before compression) carry their positions inline
    assert BodyCodec().event(e.to_json()) == e
    assert BodyCodec().event(e.to_json(), 7, None) == e


def test_unknown_dictionary_and_corrupt_bodies_are_body_errors() -> None:
    other = zstandard.ZstdCompressionDict(train(training_bodies(300, seed=1), size=4096))
    foreign = zstandard.ZstdCompressor(dict_data=other).compress(_events(1)[0].to_json())
    with pytest.raises(BodyError, match="unknown zstd dictionary"):
        BodyCodec().decode(foreign)
    good = BodyCodec().encode(_events(1)[0].to_json())
    with pytest.raises(BodyError):
        BodyCodec().decode(good[:-5] + b"\x00\x01\x02\x03\x04")
    with pytest.raises(BodyError):
        BodyCodec().decode(b"not a body")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_body_error(raw: bytes) -> None:
    for data in (raw, b"\x28\xb5\x2f\xfd" + raw):
        with contextlib.suppress(BodyError):  # anything else fails the test
            BodyCodec().decode(data)


def test_packaged_dictionary_is_reproducible_from_the_samples() -> None:
    assert train(training_bodies()) == DICTIONARY_FILE.read_bytes()


def test_parse_ref() -> None:
    assert parse_ref(b"1764000000000|12|") == (1_764_000_000_000, 12, None)
    assert parse_ref("5|1|9") == (5, 1, 9)
