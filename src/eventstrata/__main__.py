"""``python -m eventstrata`` = the ``eventstrata`` console script."""

from eventstrata.cli import main

if __name__ == "__main__":
    main()
