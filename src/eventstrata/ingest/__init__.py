"""The ingest worker: Kafka ``events.raw`` → normalize → Redis hot tier (+ ``events.dlq``).

One step per module: ``batch`` (normalize a batch), ``dlq`` (dead letters and the DLQ limit),
``commit`` (offsets to commit), ``pipeline`` (the loop), ``rebalance`` (the listener),
``worker`` (wiring, signals), ``metrics`` (Prometheus).
"""
