"""``hessinv_ref.grade``: the documented name of :mod:`hessinv_ref.tools.grade`.

The module lives in :mod:`hessinv_ref.tools` with the other tools; importing
this name gives that same module object, and ``python -m hessinv_ref.grade`` runs it.
"""

import sys

from .tools import grade as _module

if __name__ == "__main__":
    sys.exit(_module.main())
sys.modules[__name__] = _module
