"""eventstrata: streaming event ingestion and query service."""

__version__ = "0.1.0"
