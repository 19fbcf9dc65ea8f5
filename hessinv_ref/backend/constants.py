r"""Machine constants, defined once for the whole library.

:data:`EPS` is the ``float64`` machine epsilon :math:`2^{-52}` (the gap
between 1 and the next float), in the ``float64`` tolerances that are
multiples of it: the pivot checks' default, the oracle's tolerances
(:mod:`hessinv_ref.testing`), the finite-difference steps, the golden
files' comparisons.
:func:`machine_eps` gives the epsilon of any working precision
(``float32``: :math:`2^{-23}`), and :func:`float_info` the other limits
(``max``, ``bits``), from an array dtype of any backend.  Import them from
here rather than defining them again.

They are host numbers, the same in every array library (IEEE 754
``binary32`` and ``binary64``), so they are read from NumPy's ``finfo`` of
the precision's *name*: no array namespace is needed, and a dtype of a
backend other than the active one gives the right answer.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["EPS", "float_info", "machine_eps"]

EPS = sys.float_info.epsilon
"""The ``float64`` machine epsilon, ``2**-52``."""

_FLOAT_NAMES = ("float64", "float32")


def _precision_name(dtype):
    """``"float64"``, ``"float32"`` or another name for ``dtype``, a dtype of
    any backend (``numpy.float32``, ``array_api_strict.float32``, ...) or a
    name (:func:`hessinv_ref.backend.check_dtype` validates it)."""
    name = getattr(dtype, "__name__", None) or str(getattr(dtype, "name", dtype))
    name = name.rsplit(".", 1)[-1]  # "array_api_strict.float64" -> "float64"
    return {"double": "float64", "single": "float32"}.get(name, name)


_FINFO = {}  # (type, dtype) -> numpy.finfo: finfo costs microseconds, and check_pivot runs per layer


def float_info(dtype):
    """``numpy.finfo`` of the working precision ``dtype`` (``float64`` or
    ``float32``, as a dtype of any backend): ``eps``, ``max``, ``bits``, ...

    Raises ``ValueError`` for a dtype that is not a working precision."""
    # keyed by (type, dtype): the types differ between libraries, so dtypes
    # of two libraries are never compared (array-api-strict warns if they are)
    key = (type(dtype), dtype)
    info = _FINFO.get(key)
    if info is None:
        name = _precision_name(dtype)
        if name not in _FLOAT_NAMES:
            raise ValueError(f"dtype: expected one of {list(_FLOAT_NAMES)}, got {dtype!r}")
        info = _FINFO[key] = np.finfo(name)
    return info


def machine_eps(dtype=None):
    """The machine epsilon of ``dtype`` (a working-precision dtype of any
    backend); ``float64``'s (:data:`EPS`) when ``None``."""
    if dtype is None:
        return EPS
    key = (type(dtype), dtype)
    eps = _EPS_OF.get(key)
    if eps is None:
        eps = _EPS_OF[key] = float(float_info(dtype).eps)
    return eps


_EPS_OF = {}  # (type, dtype) -> eps as a Python float, for the per-layer pivot checks
