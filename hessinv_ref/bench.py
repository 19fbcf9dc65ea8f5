"""``hessinv_ref.bench``: the documented name of :mod:`hessinv_ref.tools.bench`.

The module lives in :mod:`hessinv_ref.tools` with the other tools; importing
this name gives that same module object.
"""

import sys

from .tools import bench as _module

sys.modules[__name__] = _module
