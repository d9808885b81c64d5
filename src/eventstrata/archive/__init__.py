"""The cold tier: Parquet archive, its manifest and watermark, and the DuckDB reader."""
