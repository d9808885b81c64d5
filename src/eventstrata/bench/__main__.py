"""``python -m eventstrata.bench``."""

from eventstrata.bench.runner import main

raise SystemExit(main())
