"""``python -m workers.ingest``: runs ``eventstrata.processes.ingest`` from a source checkout."""

import sys

from eventstrata.processes.ingest import main

if __name__ == "__main__":
    sys.exit(main())
