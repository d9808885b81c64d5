"""The format layer: five input shapes ⇄ the canonical event. Pure (no I/O, no clock).

* ``normalize.normalize(value, headers, now_ms=…)`` — raw message → ``Event`` | ``InvalidEvent``
* ``render.render(event, fmt)`` / ``render.render_native(event)`` — canonical → a vendor's shape
* one adapter per format (``native``, ``trieve``, ``thisdata``, ``fluidtopics``, ``eventstore``)
  with ``to_event`` and ``render``; ``detect`` guesses the format from the shape
* ``samples.sample_event`` — seeded, realistic events of each format for demos, tests, benches
"""

from eventstrata.formats.normalize import normalize
from eventstrata.formats.render import render, render_native

__all__ = ["normalize", "render", "render_native"]
