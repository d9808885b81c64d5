"""The read path: filters, planning, cursors, executors over both tiers, merging."""
