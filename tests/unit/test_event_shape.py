"""The event's shape is declared once, by ``model.Event``; every other place that spells its fields
out (for speed, or because a format or a file layout fixes their names) agrees with it.

Checked here: ``Event.to_dict`` / ``from_dict`` / ``make_event`` and the fast-path shell (model),
``native_shape`` (the native JSON), ``formats.native`` (the native input format and its render),
``api.models.EventModel`` (the OpenAPI document) and ``archive.schema`` (the Parquet columns, with
the exceptions that module declares). Adding a field to ``Event`` without adding it to one of them
fails a test below; ``FULL`` needs a value for the new field first.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pyarrow as pa

from eventstrata import model
from eventstrata.api.models import EventModel
from eventstrata.archive.schema import BODY_ONLY_FIELDS, COLUMN_OF_FIELD, DERIVED_COLUMNS, SCHEMA, event_row
from eventstrata.formats import native
from eventstrata.formats.common import iso_ms
from eventstrata.model import EVENT_FIELDS, Event
from eventstrata.native_shape import native_event, native_fields, native_parts

# One value per field, none of them the field's default, so that a place that forgets a field shows.
VALUES: dict[str, Any] = {
    "id": "evt-1",
    "tenant": "acme",
    "type": "purchase",
    "timestamp": 1_764_600_000_123,
    "received_at": 1_764_600_001_456,
    "format": "native",
    "name": "Purchased",
    "user_id": "u-1",
    "source": "web",
    "session_id": "s-1",
    "stream_id": "order-9",
    "stream_position": 7,
    "global_position": 42,
    "transaction_id": "tx-1",
    "request_id": "r-1",
    "is_conversion": True,
    "store": "shop",
    "items": ("sku-1", "sku-2"),
    "user": {"realm": ["internal"], "groups": ["g"], "roles": ["ADMIN"]},
    "data": {"plan": "pro"},
    "metadata": {"ip": "10.0.0.1"},
    "vendor": {"extra": {"custom": 1}},
}
POSITIONS = ("stream_position", "global_position")


def full_event() -> Event:
    """An event with every field set to a value that is not its default."""
    missing = set(EVENT_FIELDS) - set(VALUES)
    assert not missing, f"give the new Event field(s) {sorted(missing)} a value in VALUES"
    return Event(**VALUES)


def storage_order() -> list[str]:
    """The storage order of the fields: ``Event.to_dict``'s keys."""
    return list(full_event().to_dict())


def test_every_value_differs_from_the_default() -> None:
    assert set(VALUES) == set(EVENT_FIELDS)
    for f in dataclasses.fields(Event):
        if f.default is not dataclasses.MISSING:
            assert VALUES[f.name] != f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert VALUES[f.name] != f.default_factory(), f.name


def test_model_spells_every_field_out() -> None:
    assert tuple(f.name for f in dataclasses.fields(Event)) == EVENT_FIELDS
    assert tuple(inspect.signature(model.make_event).parameters) == EVENT_FIELDS
    assert tuple(inspect.signature(model._EventShell).parameters) == EVENT_FIELDS
    assert model._SHELL_OK  # the fast path is on, so the shell matches Event
    e = full_event()
    assert sorted(storage_order()) == sorted(EVENT_FIELDS)  # to_dict: every field, once
    assert Event.from_dict(e.to_dict()) == e  # from_dict reads every field
    assert Event.from_json(e.to_json()) == e
    assert model.make_event(*(VALUES[f] for f in EVENT_FIELDS)) == e
    assert e.with_positions(1, 2) == dataclasses.replace(e, global_position=1, stream_position=2)


def test_native_shape_is_the_storage_order_without_vendor_positions_last() -> None:
    e = full_event()
    shown = [k for k in storage_order() if k != "vendor"]
    body = [k for k in shown if k not in POSITIONS]
    assert list(native_fields(e)) == body
    assert list(native_event(e)) == [*body, *POSITIONS]
    times = {"timestamp": iso_ms(e.timestamp), "received_at": iso_ms(e.received_at), "items": list(e.items)}
    assert native_event(e) == {k: times.get(k, getattr(e, k)) for k in [*body, *POSITIONS]}
    head, tail = native_parts(e)  # what a lean body stores: the same fields in the same order
    assert {"id": e.id, **head, "timestamp": times["timestamp"], "received_at": times["received_at"],
            **tail} == native_fields(e)
    assert [*head, *tail] == [k for k in body if k not in ("id", "timestamp", "received_at")]


def test_native_render_is_the_storage_order_with_timestamp_ms() -> None:
    out = native.render(full_event())
    expected = [k for k in storage_order() if k != "vendor"]
    expected.insert(expected.index("timestamp") + 1, "timestamp_ms")
    assert list(out) == expected
    assert frozenset(out) == native.KNOWN  # the input format accepts every field it renders


def test_native_input_reads_every_field_it_does_not_assign() -> None:
    e = full_event()
    back = native.to_event(native.render(e), e.tenant, e.store, e.received_at)
    assert isinstance(back, Event)
    for name in EVENT_FIELDS:
        if name not in native.SERVICE_ASSIGNED and name != "vendor":
            assert getattr(back, name) == getattr(e, name), name
    assert back.vendor == {}


def test_the_api_model_documents_the_native_shape() -> None:
    e = full_event()
    documented = EventModel.model_fields
    assert set(documented) == set(native_event(e))
    optional = {f.name for f in dataclasses.fields(Event) if f.default is None}
    assert {n for n, f in documented.items() if not f.is_required()} == optional
    EventModel.model_validate(native_event(e))  # a response conforms to the document


def test_parquet_columns_map_to_the_fields_with_the_declared_exceptions() -> None:
    columns = SCHEMA.names
    assert set(EVENT_FIELDS) >= BODY_ONLY_FIELDS and set(COLUMN_OF_FIELD) <= set(EVENT_FIELDS)
    of_fields = {COLUMN_OF_FIELD.get(f, f): f for f in EVENT_FIELDS if f not in BODY_ONLY_FIELDS}
    assert set(columns) == set(of_fields) | set(DERIVED_COLUMNS)
    assert not set(of_fields) & set(DERIVED_COLUMNS)
    e = full_event()
    row = event_row(e)
    assert list(row) == columns
    for column, name in of_fields.items():
        assert row[column] == getattr(e, name), column
    assert (row["realm"], row["groups"], row["roles"]) == (list(e.realms), list(e.groups), list(e.roles))
    assert Event.from_json(row["body"]) == e
    assert pa.Table.from_pylist([row], schema=SCHEMA).num_rows == 1
