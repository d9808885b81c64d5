"""``python -m eventstrata_bench``."""

from eventstrata_bench.runner import main

raise SystemExit(main())
