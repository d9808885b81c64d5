"""Live tail: one Redis stream reader per tenant per process, in-process fan-out to bounded
subscriber buffers, and gapless resume (catch up from the stream or the query tiers, then live).

Modules: ``buffer`` (pure subscriber buffer), ``resume`` (pure parsing and planning),
``hub`` (the reader tasks and fan-out), ``catchup`` (reading stored events after a position),
``session`` (one subscriber's sequence of items), ``wire`` (SSE / WebSocket framing, pure).
"""
