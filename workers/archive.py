"""``python -m workers.archive``: runs ``eventstrata.processes.archive`` from a source checkout."""

import sys

from eventstrata.processes.archive import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
