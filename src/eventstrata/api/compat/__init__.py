"""Drop-in compatible endpoints for the four seed APIs (docs/COMPATIBILITY.md).

Per vendor a pure module (``<vendor>_api``) parses and validates that vendor's request into an
``OffsetQuery`` (filter, order, sort, limit/offset) with the vendor's own defaults, limits and
error bodies, and builds the vendor's response envelope (the event shapes themselves are the
formats', ``eventstrata.formats.<vendor>``); ``parsing`` holds what those modules share;
``routes`` holds the thin HTTP routers (auth → parse → query engine → renderer → envelope).
"""
