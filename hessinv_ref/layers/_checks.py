"""Argument checks shared by the layers (and by :mod:`hessinv_ref.testing`).

Private: the layers' constructors and methods call these, so that a bad
argument raises a ``TypeError`` or ``ValueError`` naming it, the expected
and the actual value.
"""

from __future__ import annotations

import numbers

from ..backend import get_backend


def _check_positive_int(name, value):
    """``value`` as an int if it is a positive integer, else a TypeError or
    ValueError naming ``name`` (shared with :mod:`hessinv_ref.testing`)."""
    # numbers.Integral covers Python ints and NumPy's integer scalars
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def _is_bool(value):
    # NumPy's scalar bool (``numpy.bool_``, named ``bool`` since NumPy 2) is
    # not a subclass of Python's bool
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def _as_array(a, name):
    """``a`` as an array of the active backend; a clear error for an array of
    another library or device (see :meth:`hessinv_ref.backend.Backend.asarray`)."""
    return get_backend().asarray(a, name)
