r"""Machine constants, defined once for the whole library.

:data:`EPS` is the ``float64`` machine epsilon :math:`2^{-52}` (the gap
between 1 and the next float), in the ``float64`` tolerances that are
multiples of it: the pivot checks' default, the oracle's tolerances
(:mod:`hessinv_ref.testing`), the finite-difference steps, the golden
files' comparisons.
:func:`machine_eps` gives the epsilon of any working precision
(``float32``: :math:`2^{-23}`) from an array dtype of the active backend.
Import them from here rather than defining them again.
"""

from __future__ import annotations

import sys

from . import xp

__all__ = ["EPS", "machine_eps"]

EPS = sys.float_info.epsilon
"""The ``float64`` machine epsilon, ``2**-52``."""


_EPS_OF = {}  # dtype -> eps: finfo costs microseconds, and check_pivot runs per layer


def machine_eps(dtype=None):
    """The machine epsilon of ``dtype`` (an array dtype of the active
    backend); ``float64``'s (:data:`EPS`) when ``None``."""
    if dtype is None:
        return EPS
    # keyed by (type, dtype): the types differ between libraries, so dtypes
    # of two libraries are never compared (array-api-strict warns if they are)
    key = (type(dtype), dtype)
    eps = _EPS_OF.get(key)
    if eps is None:
        eps = _EPS_OF[key] = float(xp.finfo(dtype).eps)
    return eps
