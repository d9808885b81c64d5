"""The stored-body codec (``hotstore.codec``): round trips, every payload layout, compressed
and plain, every dictionary, the native JSON splice, bad input. Pure."""

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
from eventstrata.hotstore.codec import (
    DICTIONARIES,
    DICTIONARY_FILE,
    LEAN,
    SPLIT,
    BodyCodec,
    BodyError,
    lean_payload,
    parse_ref,
)
from eventstrata.hotstore.stored import StoredEvents
from eventstrata.model import FORMATS, Event
from eventstrata.native_shape import native_event, native_fields


def _events(n: int = 50, seed: int = 11) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        obj, headers = sample_event(rng, FORMATS[i % len(FORMATS)], "acme", f"u-{i}", 1_764_000_000_000 + i)
        e = normalize(orjson.dumps(obj), encode_headers(headers), now_ms=1_800_000_000_000)
        assert isinstance(e, Event)
        out.append(e)
    return out


def _with_dict(n: int, payload: bytes) -> bytes:
    """``payload`` compressed with dictionary ``n``, as a writer of that layout did."""
    d = zstandard.ZstdCompressionDict(DICTIONARY_FILE.parent.joinpath(DICTIONARIES[n]).read_bytes())
    out: bytes = zstandard.ZstdCompressor(level=3, dict_data=d, write_checksum=False,
                                          write_content_size=True, write_dict_id=True).compress(payload)
    return out


def _split_payload(e: Event) -> bytes:
    """The split layout (``\x02``) that readers still accept."""
    rest = {"timestamp": e.timestamp, "received_at": e.received_at, "vendor": e.vendor}
    return SPLIT + orjson.dumps(native_fields(e)) + b"\n" + orjson.dumps(rest)


def _bodies(e: Event) -> dict[str, bytes]:
    """Every stored form a body can have: lean (the writer's, tagged with dictionary 4), lean in
    a whole frame with dictionary 3, split with dictionary 2, canonical with dictionary 1, and
    each uncompressed."""
    return {
        "lean": BodyCodec().encode_event(e),
        "lean, dictionary 3": _with_dict(3, lean_payload(e)),
        "lean, plain": BodyCodec(compress=False).encode_event(e),
        "split, dictionary 2": _with_dict(2, _split_payload(e)),
        "split, plain": _split_payload(e),
        "canonical, dictionary 1": _with_dict(1, e.to_json()),
        "canonical, plain": e.to_json(),
    }


def test_round_trip_with_positions_from_outside() -> None:
    codec = BodyCodec()
    for i, e in enumerate(_events()):
        stored = codec.encode_event(e)
        assert stored[:1] == b"\x04" and len(stored) < len(e.to_json()) / 2  # dictionary 4, tagged
        assert codec.decode(stored) == lean_payload(e) and lean_payload(e)[:1] == LEAN
        assert e.id.encode() not in codec.decode(stored)  # the member holds the id
        spos = i if i % 2 else None
        for form, body in _bodies(e).items():
            assert codec.event(body, i + 1, spos, eid=e.id, ts=e.timestamp) == e.with_positions(i + 1, spos), form
            assert codec.event(body, eid=e.id, ts=e.timestamp) == e, form  # null positions without a ref
            ref = f"{i + 1}|{'' if spos is None else spos}".encode()
            assert codec.stored_event(body, ref, e.id, e.timestamp) == e.with_positions(i + 1, spos), form
        with pytest.raises(ValueError, match="id and time"):
            codec.event(stored)
    events = _events(200, seed=5)
    tagged = sum(len(codec.encode_event(e)) for e in events)
    assert tagged < 0.95 * sum(len(_with_dict(3, lean_payload(e))) for e in events)


def test_native_json_is_the_native_shape_of_every_stored_form() -> None:
    codec = BodyCodec()
    for i, e in enumerate(_events()):
        spos = i if i % 3 else None
        ref = f"{i + 7}|{'' if spos is None else spos}".encode()
        for form, body in _bodies(e).items():
            expected = orjson.dumps(native_event(e.with_positions(i + 7, spos)))
            assert codec.native_json(body, ref, e.id, e.timestamp) == expected, form
            assert codec.native_json(body, None, e.id, e.timestamp) == orjson.dumps(native_event(e)), form
    # an old plain body with inline positions keeps them without a ref
    old = _events(1)[0].with_positions(4, 2)
    assert codec.native_json(old.to_json(), None, old.id, old.timestamp) == orjson.dumps(native_event(old))


@settings(max_examples=200, deadline=None)
@given(eid=st.text(min_size=1, max_size=40), user=st.none() | st.text(max_size=20), ts=st.integers(0, 4_000_000_000_000))
def test_lean_bodies_put_back_any_id_and_time(eid: str, user: str | None, ts: int) -> None:
    """Ids and user ids with quotes, backslashes, control characters or any code point come back
    exactly, in the native JSON too."""
    e = Event(id=eid, tenant="acme", type="t\n\"x", timestamp=ts, received_at=ts + 5, format="native",
              user_id=user, data={"k": "v\n"})
    codec = BodyCodec()
    body = codec.encode_event(e)
    assert codec.stored_event(body, b"3|", eid, ts) == e.with_positions(3, None)
    assert codec.native_json(body, b"3|", eid, ts) == orjson.dumps(native_event(e.with_positions(3, None)))


@pytest.mark.parametrize("ref", [b"x|", b"2|y", b"2", b"-2|3", b"2|3|4"])
def test_native_json_rejects_a_malformed_ref(ref: bytes) -> None:
    with pytest.raises(ValueError):
        e = _events(1)[0]
        BodyCodec().native_json(BodyCodec().encode_event(e), ref, e.id, e.timestamp)


def test_stored_events_decode_on_access_once_and_render_without_decoding() -> None:
    codec = BodyCodec()
    evs = _events(6)
    seq = StoredEvents(codec)
    for i, e in enumerate(evs):
        seq.add((e.timestamp, e.id), codec.encode_event(e), f"{i + 1}|".encode())
    want = [e.with_positions(i + 1, None) for i, e in enumerate(evs)]
    assert len(seq) == 6 and seq.positions == [(e.timestamp, e.id) for e in evs]
    assert seq.native_json() == [orjson.dumps(native_event(w)) for w in want]
    assert list(seq) == want and seq[-1] == want[-1]
    assert seq[2] is seq[2]  # decoded once, then kept
    part = seq[1:3]
    assert isinstance(part, StoredEvents) and list(part) == want[1:3]
    assert part.positions == seq.positions[1:3]
    broken = StoredEvents(codec)
    broken.add((1, "x"), b"not a body", None)
    assert len(broken) == 1 and broken.positions == [(1, "x")]  # nothing decoded yet
    with pytest.raises(BodyError):
        broken[0]


def test_plain_json_is_stored_as_is_and_keeps_inline_positions() -> None:
    e = _events(1)[0].with_positions(7, 3)
    plain = BodyCodec(compress=False)
    assert plain.encode(e.to_json()) == e.to_json()
    assert plain.encode_event(e) == lean_payload(e)
    # old bodies (written before compression) carry their positions inline
    assert BodyCodec().event(e.to_json()) == e
    assert BodyCodec().event(e.to_json(), 7, None) == e


def test_unknown_dictionary_and_corrupt_bodies_are_body_errors() -> None:
    samples: list[bytes | bytearray | memoryview[int]] = [lean_payload(e) for e in _events(300, seed=1)]
    other = zstandard.train_dictionary(4096, samples, level=3, threads=0)
    foreign = zstandard.ZstdCompressor(dict_data=other).compress(_events(1)[0].to_json())
    with pytest.raises(BodyError, match="unknown zstd dictionary"):
        BodyCodec().decode(foreign)
    good = BodyCodec().encode(_events(1)[0].to_json())
    with pytest.raises(BodyError):
        BodyCodec().decode(good[:-5] + b"\x00\x01\x02\x03\x04")
    with pytest.raises(BodyError):
        BodyCodec().decode(b"not a body")
    with pytest.raises(BodyError, match="unknown zstd dictionary version 5"):
        BodyCodec().decode(b"\x05" + good[1:])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_body_error(raw: bytes) -> None:
    for data in (raw, b"\x28\xb5\x2f\xfd" + raw, b"\x04" + raw):
        with contextlib.suppress(BodyError):  # anything else fails the test
            BodyCodec().decode(data)


def test_parse_ref() -> None:
    assert parse_ref(b"12|") == (12, None)
    assert parse_ref("1|9") == (1, 9)
