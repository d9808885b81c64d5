"""The Redis hot tier of the layout in ``eventstrata.keys``: writes (``writer``), reads
(``read``), the handoff to the archive (``handoff``), the scripts they run (``scripts``) and the
stored bodies (``codec``, ``stored``), tail entries (``tailentry``)."""
