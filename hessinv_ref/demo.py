"""``hessinv_ref.demo``: the documented name of :mod:`hessinv_ref.tools.demo`.

The module lives in :mod:`hessinv_ref.tools` with the other tools; importing
this name gives that same module object.
"""

import sys

from .tools import demo as _module

sys.modules[__name__] = _module
