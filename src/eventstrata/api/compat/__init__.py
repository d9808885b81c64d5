"""Drop-in compatible endpoints for the four seed APIs (docs/COMPATIBILITY.md).

Per vendor a pure module parses and validates that vendor's request into an ``OffsetQuery``
(filter, order, sort, limit/offset) with the vendor's own defaults, limits and error bodies,
and builds the vendor's response envelope; ``routes`` holds the thin HTTP routers
(auth → parse → query engine → renderer → envelope).
"""
