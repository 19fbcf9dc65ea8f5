"""The active array backend, as the tests see it.

The core test modules run twice in CI: on NumPy, and with
``HESSINV_REF_BACKEND=array_api_strict``, where every array lives on a
virtual device that refuses conversion to NumPy (as a GPU does).  So a test
never hands NumPy arrays to the library, and never feeds the library's
results to NumPy or SciPy directly: it moves data explicitly,

* ``B(a)``: a NumPy array (or array-like) onto the active backend (a copy,
  :func:`hessinv_ref.backend.from_numpy`);
* ``N(a)``: any backend's array back to NumPy (:func:`~hessinv_ref.backend.to_numpy`),
  where the oracles (NumPy, SciPy, finite differences) compute.

:func:`host` wraps a library callable into one that takes and returns NumPy
arrays, for finite differences and the like, and :class:`Hosted` does it
for every method of an object (a layer).  Features
that exist only on NumPy (``scipy.sparse`` displays, the banded LU,
``LinearOperator``) are marked :func:`numpy_only`; on the other backends
their tests check instead that they refuse with
:class:`~hessinv_ref.backend.BackendNotSupportedError`.

On NumPy all of this is a copy at most, so the tests mean exactly what they
meant before the backends existed.
"""

from __future__ import annotations

import numpy as np
import pytest

from hessinv_ref.backend import BackendNotSupportedError, from_numpy, get_backend, to_numpy

__all__ = [
    "B",
    "BACKEND",
    "BackendNotSupportedError",
    "Hosted",
    "N",
    "ON_NUMPY",
    "host",
    "host_blocks",
    "numpy_only",
    "refuses",
]

BACKEND = get_backend().name
"""The backend the test run started with (``HESSINV_REF_BACKEND``)."""

ON_NUMPY = BACKEND == "numpy"


def B(a):
    """An explicit copy of the NumPy array (or array-like) ``a`` on the active backend."""
    return from_numpy(a)


def N(a):
    """A NumPy copy of ``a`` (any backend's array; ``None`` stays ``None``;
    tuples and lists are converted element by element)."""
    if a is None:
        return None
    if isinstance(a, (tuple, list)):
        return type(a)(N(x) for x in a)
    return to_numpy(a)


def host(fn):
    """``fn`` (a library callable on arrays of the active backend) as a
    function of NumPy arrays: NumPy arguments are moved with :func:`B`, the
    result (an array, or a tuple of arrays) comes back with :func:`N`."""

    def wrapped(*args):
        moved = [B(a) if isinstance(a, np.ndarray) else a for a in args]
        return N(fn(*moved))

    wrapped.__name__ = getattr(fn, "__name__", "wrapped")
    return wrapped


def host_blocks(curv):
    """The per-layer blocks of a :class:`~hessinv_ref.Curvature` as NumPy
    :class:`~hessinv_ref.LayerBlocks` (copies), for dense oracles."""
    from hessinv_ref import LayerBlocks

    return [LayerBlocks(*(N(m) for m in blk)) for blk in curv.blocks]


def numpy_only(why):
    """Skip marker for a test of a NumPy-only feature; ``why`` says which."""
    return pytest.mark.skipif(
        not ON_NUMPY, reason=f"NumPy-only feature ({why}); the active backend is {BACKEND!r}"
    )


def refuses(what=None):
    """``pytest.raises`` for a NumPy-only feature on another backend: a
    :class:`BackendNotSupportedError` whose message names the backend (and
    ``what``, a regex, if given)."""
    import re

    pattern = re.escape(repr(BACKEND))
    if what is not None:
        pattern = f"(?s)(?=.*{what}).*{pattern}"
    return pytest.raises(BackendNotSupportedError, match=pattern)


class Hosted:
    """An object (a layer, an activation) whose methods take and return
    NumPy arrays: every callable attribute is wrapped by :func:`host`, other
    attributes pass through."""

    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        return host(attr) if callable(attr) else attr

    def __repr__(self):
        return f"Hosted({self._obj!r})"
