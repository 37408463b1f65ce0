"""``python -m ember ...``: the ``ember`` command without its console script (a checkout on PYTHONPATH)."""

import sys

from .cli.main import main

sys.exit(main())
