"""``python -m reglab``: the same as the ``reglab`` command and ``python main.py``."""

import sys

from reglab import main

sys.exit(main())
