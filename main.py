"""``python main.py`` from a checkout: the same as the ``reglab`` command (see reglab.main)."""

import sys

from reglab import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
