"""`make bench`: one reproducible benchmark of the whole product, side by side with baselines.

Entry point: ``python -m eventstrata_bench [--quick] [SCENARIO ...]`` (``make bench``).
See bench/README.md for what is measured and how.
Nothing here is imported by the product; the harness drives the product through its real
processes (``eventstrata worker ingest``, ``eventstrata serve``, ``eventstrata archive
run-once``) against a Kafka broker and a redis-server started for the run.
"""
