"""Hypothesis strategies for small random networks, problems and vectors.

Importing this module imports ``hypothesis``; the rest of
:mod:`hessinv_ref.testing` does not need it.

Every strategy keeps its examples small (depth <= 6, widths <= 5, batch <= 4
by default), so that property tests can afford finite differences and the
dense Hessian on each example, and so that a shrunk counterexample is
readable.  Randomness that hypothesis need not shrink element by element
(parameters, inputs, labels) comes from one drawn ``seed`` passed to
``numpy.random.default_rng``: the failing example prints the seed, and
:meth:`Architecture.problem` rebuilds the problem from it.

Examples
--------
>>> from hypothesis import given
>>> from hessinv_ref.testing.strategies import problems
>>> @given(problems(max_depth=3))
... def test_loss_is_finite(problem):
...     net, params, X, y = problem
...     assert np.isfinite(net.loss(params, X, y))
>>> test_loss_is_finite()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..activations import ACTIVATIONS
from .problems import HEADS, LAYER_KINDS, build_network, draw_problem

__all__ = ["Architecture", "activations", "architectures", "problems", "vectors", "seeds"]

SMOOTH_ACTIVATIONS = tuple(sorted(name for name in ACTIVATIONS if name != "relu"))
"""Activation names whose second derivative exists everywhere."""


def seeds():
    """Seeds for ``numpy.random.default_rng``: any 32-bit unsigned int."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def activations(include_relu=False):
    """Names of built-in activations.

    Parameters
    ----------
    include_relu : bool
        Draw ``"relu"`` too.  Leave it off for tests that use finite
        differences, which are invalid within a step of the kink.
    """
    names = SMOOTH_ACTIVATIONS + (("relu",) if include_relu else ())
    return st.sampled_from(names)


@dataclass(frozen=True)
class Architecture:
    """A drawn network shape plus a batch size; :meth:`problem` instantiates it.

    Attributes
    ----------
    n_in : int
        Input width.
    widths, kinds, activations : tuple
        Per hidden layer: output width, ``"dense"``/``"residual"``, activation.
    biases : tuple of bool
        Per layer, the head included.
    head : {"softmax", "mse"}
    n_out : int
        Classes (softmax) or outputs (mse).
    batch : int
    """

    n_in: int
    widths: tuple
    kinds: tuple
    activations: tuple
    biases: tuple
    head: str
    n_out: int
    batch: int

    @property
    def depth(self):
        """Number of layers, the head included."""
        return len(self.biases)

    def network(self):
        """The :class:`~hessinv_ref.network.Network`."""
        return build_network(
            self.n_in, self.widths, self.kinds, self.activations, self.biases, self.head, self.n_out
        )

    def problem(self, seed, scale=1.0, dtype="float64"):
        """``(net, params, X, y)`` drawn as :func:`~hessinv_ref.testing.random_problem` does:
        parameters (``net.init`` with gain ``scale``), then ``X``, then ``y``,
        from ``numpy.random.default_rng(seed)``; arrays of the active backend
        (see :func:`~hessinv_ref.testing.problems.draw_problem`)."""
        return draw_problem(self.network(), self.batch, seed, scale=scale, dtype=dtype)


@st.composite
def architectures(
    draw,
    max_depth=6,
    max_width=5,
    max_batch=4,
    *,
    min_depth=1,
    kinds=LAYER_KINDS,
    heads=HEADS,
    include_relu=False,
    max_classes=4,
):
    """Small networks: mixed Dense/Residual layers, per-layer activations and biases.

    Parameters
    ----------
    max_depth, min_depth : int
        Range of the number of layers, the head included.
    max_width : int
        Widths (input, hidden, head outputs) lie in ``1..max_width``; a residual
        layer keeps the width before it.
    max_batch : int
        Batch sizes lie in ``1..max_batch``.
    kinds : sequence of str
        Hidden layer kinds to draw from.
    heads : sequence of str
        Loss heads to draw from.
    include_relu : bool
        See :func:`activations`.
    max_classes : int
        Largest number of classes/outputs of the head.

    Returns
    -------
    SearchStrategy of Architecture
    """
    depth = draw(st.integers(min_depth, max_depth))
    n_in = draw(st.integers(1, max_width))
    widths, layer_kinds, acts, prev = [], [], [], n_in
    for _ in range(depth - 1):
        kind = draw(st.sampled_from(tuple(kinds)))
        width = prev if kind == "residual" else draw(st.integers(1, max_width))
        widths.append(width)
        layer_kinds.append(kind)
        acts.append(draw(activations(include_relu)))
        prev = width
    biases = tuple(draw(st.lists(st.booleans(), min_size=depth, max_size=depth)))
    head = draw(st.sampled_from(tuple(heads)))
    n_out = draw(st.integers(1 if head == "mse" else 2, max_classes))
    batch = draw(st.integers(1, max_batch))
    return Architecture(n_in, tuple(widths), tuple(layer_kinds), tuple(acts), biases, head, n_out, batch)


@st.composite
def problems(draw, max_depth=6, max_width=5, max_batch=4, *, scale=(0.5, 2.0), **arch_kwargs):
    """Full problems ``(net, params, X, y)`` on a drawn :func:`architectures`.

    Parameters
    ----------
    max_depth, max_width, max_batch, **arch_kwargs
        Passed to :func:`architectures`.
    scale : (float, float)
        Range of the initialisation gain; drawn uniformly.

    Returns
    -------
    SearchStrategy of tuple
        ``(net, params, X, y)``, with params drawn from a drawn seed, arrays
        of the active backend.
    """
    arch = draw(architectures(max_depth, max_width, max_batch, **arch_kwargs))
    gain = draw(st.floats(*scale))
    seed = draw(seeds())
    return arch.problem(seed, scale=gain)


def vectors(n, k=None, *, bound=2.0):
    """Float64 arrays of shape (n,) or (n, k) with entries in ``[-bound, bound]``.

    Hypothesis draws every entry, so examples include zeros, repeated values
    and sparse vectors, which random normal vectors almost never are.  They
    are NumPy arrays (hypothesis builds them with NumPy): move them with
    :func:`hessinv_ref.backend.from_numpy` before calling the library.
    """
    shape = (n,) if k is None else (n, k)
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, shape, elements=elements)
