"""``python -m aftershock``: the same as the ``aftershock`` command."""

import sys

from aftershock.cli import main

sys.exit(main())
