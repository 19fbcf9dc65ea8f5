"""``python -m hessinv_ref``: the same as the ``hessinv-ref`` command."""

import sys

from .tools.cli import main

sys.exit(main())
