"""One entry module per deployable process: ``api``, ``ingest``, ``archive``.

Each ``main`` reads the settings, wires the process, installs its signal handlers and runs it;
``eventstrata serve`` and ``eventstrata worker ingest|archive`` call them, and so does
``python -m eventstrata.processes.<name>``.
"""
