"""Render a canonical event in any of the five formats. Pure.

``render(event, as_format)`` gives ``event`` — of any input format — in the shape of
``as_format``: the compatible endpoints show every event of a tenant in their vendor's shape.
An event rendered in its own format uses the original fields kept in ``Event.vendor`` and
reproduces its input field for field (see each adapter's module docstring for the fields the
service adds or overrides). ``render_native`` is the native API's JSON (``native.render``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventstrata.formats import eventstore, fluidtopics, native, thisdata, trieve
from eventstrata.model import Event, Format

RENDERERS: dict[Format, Callable[[Event], dict[str, Any]]] = {
    "native": native.render,
    "trieve": trieve.render,
    "thisdata": thisdata.render,
    "fluidtopics": fluidtopics.render,
    "eventstore": eventstore.render,
}


def render(event: Event, as_format: Format) -> dict[str, Any]:
    """``event`` as a JSON-ready dict in ``as_format``'s shape. Raises ``ValueError`` for a
    format name that is not one of ``model.FORMATS``."""
    try:
        fn = RENDERERS[as_format]
    except KeyError:
        raise ValueError(f"unknown format {as_format!r}") from None
    return fn(event)


def render_native(event: Event) -> dict[str, Any]:
    """The native API's JSON of ``event``: ``Event.to_dict()`` without ``vendor``; ``timestamp``
    and ``received_at`` as ISO 8601 UTC (``…T12:00:00.000Z``), plus ``timestamp_ms``."""
    return native.render(event)
