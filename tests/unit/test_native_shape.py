"""The native event shape (``native_shape.native_event``) against its definition: the canonical
``Event.to_dict`` without ``vendor``, times as ``timeutil.format_ms`` text, positions last. Pure."""

from __future__ import annotations

import random

import orjson
import pytest

from eventstrata.formats.normalize import normalize
from eventstrata.formats.samples import FORMATS, encode_headers, sample_event
from eventstrata.model import Event
from eventstrata.native_shape import native_event
from eventstrata.timeutil import format_ms


def _events() -> list[Event]:
    rng = random.Random(3)
    out = []
    for i in range(60):
        obj, headers = sample_event(rng, FORMATS[i % len(FORMATS)], "t", f"u{i % 7}",
                                    1_764_600_000_000 + i * 3_599_999)
        e = normalize(orjson.dumps(obj), encode_headers(headers), now_ms=1_800_000_000_000)
        assert isinstance(e, Event)
        out.append(e.with_positions(i + 1, i if i % 2 else None))
    return out


@pytest.mark.parametrize("e", _events(), ids=lambda e: e.format)
def test_native_event_is_to_dict_without_vendor_with_iso_times(e: Event) -> None:
    expected = e.to_dict()
    del expected["vendor"]
    expected["timestamp"] = format_ms(e.timestamp)
    expected["received_at"] = format_ms(e.received_at)
    got = native_event(e)
    assert got == expected
    order = [k for k in expected if k not in ("stream_position", "global_position")]
    assert list(got) == [*order, "stream_position", "global_position"]  # storage order, positions last


def test_from_dict_round_trips_the_storage_form() -> None:
    for e in _events():
        assert Event.from_json(e.to_json()) == e
