"""Thin wrappers of a source checkout: ``python -m workers.<name>`` runs
``eventstrata.processes.<name>`` (the installed package has no ``workers``)."""
