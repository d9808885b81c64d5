"""The HTTP surface: ``create_app`` (``app``), the native routes (``native_routes``), the
live-tail routes (``tail_routes``), the compatible endpoints (``compat``), the auth dependency
(``deps``), models for the OpenAPI document (``models``)."""
