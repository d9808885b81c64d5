"""The HTTP surface: ``create_app`` (``app``), native routes (``native``), auth dependency
(``deps``), error handlers (``errors``), models for the OpenAPI document (``models``)."""
