"""``python -m workers.api``: runs ``eventstrata.processes.api`` from a source checkout."""

import sys

from eventstrata.processes.api import main

if __name__ == "__main__":
    sys.exit(main())
