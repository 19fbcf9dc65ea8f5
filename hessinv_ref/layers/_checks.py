"""Argument checks shared by the layers (and by :mod:`hessinv_ref.testing`).

Private: the layers' constructors and methods call these, so that a bad
argument raises a ``TypeError`` or ``ValueError`` naming it, the expected
and the actual value.

Two conversions of an array argument, one per side of the door
(:mod:`hessinv_ref.backend`): :func:`_as_array` checks a *new input*
(``pack``'s weight and bias, a head's targets: the parameters and data the
network validates) against the active backend; :func:`_array_of` checks an
argument of a computing method against the backend of the array itself, so
a layer computes in the namespace of the data it is given.
"""

from __future__ import annotations

import numbers

from ..backend import get_backend, namespace_of


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
    another library or device (see :meth:`hessinv_ref.backend.Backend.asarray`).

    The door for the parameters and targets a layer is handed to validate
    (``pack``, ``check_targets``), and for a Python list or number given to
    a computing method (:func:`_array_of`): the input enters here."""
    return get_backend().asarray(a, name)


def _own_array(a, name):
    """``(backend, a)``: ``a`` checked as an array of its own backend (on
    that backend's device), and the backend.  Anything that is no backend's
    array (a Python list or number) is converted by :func:`_as_array`."""
    try:
        be = namespace_of(a)
    except TypeError:  # not an array of any backend: a new input
        a = _as_array(a, name)
        return namespace_of(a), a
    return be, be.asarray(a, name)


Z_IN = "the backend of the layer's input z_in"
"""Why an argument must belong to the backend of ``z_in`` (for
:meth:`~hessinv_ref.backend.Backend.asarray`'s message)."""


def _array_of(a, name, like=None):
    """``a`` checked as an array of its own backend, or of the backend
    ``like`` (a :class:`~hessinv_ref.backend.Backend`: the one of the
    layer's ``z_in``), so that an argument of another backend is named
    instead of failing inside a product; on the device of that backend.
    Anything that is no backend's array (a Python list or number) is
    converted by :func:`_as_array` (or by ``like``)."""
    if like is None:
        return _own_array(a, name)[1]
    return like.asarray(a, name, why=Z_IN)
