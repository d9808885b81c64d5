"""The Redis hot tier: the write path (``writer``) of the layout in ``eventstrata.keys``."""
