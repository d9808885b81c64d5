"""One thin entry module per deployable process (``python -m workers.<name>``)."""
