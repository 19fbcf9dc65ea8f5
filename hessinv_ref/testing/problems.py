"""Small, reproducible test problems: a network, its parameters and a batch.

A *problem* is the tuple ``(net, params, X, y)`` that every entry point of
:mod:`hessinv_ref` takes.  :func:`random_problem` builds one from a handful of
knobs, the same way for every seed, so that a failing case from any test suite
(this one, or a PyTorch/JAX/C++ one using this package as an oracle) can be
rebuilt from its arguments alone.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import check_dtype, from_numpy
from ..layers import Dense, Residual, SoftmaxCrossEntropy, SquaredError
from ..layers import _check_positive_int as _positive_int
from ..network import Network

__all__ = ["random_problem", "tall_skinny_network", "build_network", "draw_data", "draw_problem", "LAYER_KINDS", "HEADS"]

LAYER_KINDS = ("dense", "residual")
"""Kinds of hidden layer :func:`random_problem` and :func:`build_network` know."""

HEADS = ("softmax", "mse")
"""Loss heads by name: :class:`SoftmaxCrossEntropy` and :class:`SquaredError`."""


def _per_layer(name, value, n, scalar_types):
    """Broadcast a scalar setting to ``n`` layers, or validate a sequence of ``n``."""
    if isinstance(value, scalar_types) or not isinstance(value, (list, tuple)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{name}: expected one entry per layer ({n}), got {len(value)}")
    return list(value)


def _head_layer(head, n_in, n_out, bias):
    if head == "softmax":
        return SoftmaxCrossEntropy(n_in, n_out, bias=bias)
    if head == "mse":
        return SquaredError(n_in, n_out, bias=bias)
    raise ValueError(f"head: expected one of {list(HEADS)}, got {head!r}")


def build_network(n_in, widths, kinds, activations, biases, head, n_out):
    """Assemble a :class:`~hessinv_ref.network.Network` layer by layer.

    Parameters
    ----------
    n_in : int
        Per-sample input width.
    widths : sequence of int
        Output width of each hidden layer (``L - 1`` entries).
    kinds : sequence of {"dense", "residual"}
        Kind of each hidden layer.  A residual layer keeps its input width, so
        its entry of ``widths`` must equal the width before it.
    activations : sequence of str or Activation
        Activation of each hidden layer.
    biases : sequence of bool
        Whether each layer has a bias, the head included (``L`` entries).
    head : {"softmax", "mse"}
        The loss head.
    n_out : int
        Classes of a softmax head, or outputs of a squared-error head.

    Returns
    -------
    Network
    """
    widths, kinds, activations = list(widths), list(kinds), list(activations)
    if not len(widths) == len(kinds) == len(activations) == len(biases) - 1:
        raise ValueError(
            "widths, kinds, activations, biases: expected L - 1, L - 1, L - 1 and L "
            f"entries, got {len(widths)}, {len(kinds)}, {len(activations)} and {len(biases)}"
        )
    layers, prev = [], n_in
    for l, (kind, width, act, bias) in enumerate(zip(kinds, widths, activations, biases)):
        if kind == "dense":
            layers.append(Dense(prev, width, act, bias=bias))
        elif kind == "residual":
            if width != prev:
                raise ValueError(
                    f"layers[{l}]: a residual layer keeps its width, so it needs "
                    f"input width == width, got input width {prev} and width {width}"
                )
            layers.append(Residual(width, act, bias=bias))
        else:
            raise ValueError(f"layers[{l}]: expected one of {list(LAYER_KINDS)}, got {kind!r}")
        prev = width
    layers.append(_head_layer(head, prev, n_out, biases[-1]))
    return Network(layers)


def draw_data(net, batch, rng):
    """Draw a batch ``(X, y)`` for ``net`` from the generator ``rng``.

    ``X`` is standard normal of shape (batch, n_in); ``y`` is uniform labels in
    ``[0, n_classes)`` for a softmax head, standard normal targets of shape
    (batch, n_out) for a squared-error head.  Both are NumPy arrays (float64,
    int64 labels): :func:`draw_problem` moves them to the active backend.
    """
    X = rng.standard_normal((batch, net.n_in))
    if isinstance(net.head, SoftmaxCrossEntropy):
        y = rng.integers(0, net.head.n_out, size=batch)
    else:
        y = rng.standard_normal((batch, net.head.n_out))
    return X, y


def draw_problem(net, batch, seed, scale=1.0, dtype="float64"):
    """``(net, params, X, y)`` for ``net``, drawn from ``numpy.random.default_rng(seed)``.

    The one recipe behind :func:`random_problem` and
    :meth:`~hessinv_ref.testing.strategies.Architecture.problem`: the
    parameters first (``net.init`` with gain ``scale``, on the active
    backend), then ``X`` and ``y`` by :func:`draw_data`, always in float64
    from the NumPy generator (so a seed gives the same problem on every
    backend and in every precision), then cast to ``dtype`` (float inputs
    and targets only) and moved to the active backend explicitly with
    :func:`~hessinv_ref.backend.from_numpy`.
    """
    dtype = check_dtype(dtype)
    rng = np.random.default_rng(seed)
    # net.init draws from the generator exactly as before the backends
    # existed, so the stream (and every golden file) is unchanged.
    params = net.init(rng, scale=scale, dtype=dtype)
    X, y = draw_data(net, batch, rng)
    X = X.astype(dtype, copy=False)
    if y.dtype.kind == "f":
        y = y.astype(dtype, copy=False)
    return net, params, from_numpy(X), from_numpy(y)


def _hidden_kinds(layers, n_hidden):
    if isinstance(layers, str):
        if layers in LAYER_KINDS:
            return [layers] * n_hidden
        if layers == "mixed":
            # Dense first, so the first layer may change the width of X.
            return [LAYER_KINDS[l % 2] for l in range(n_hidden)]
        raise ValueError(
            f"layers: expected 'dense', 'residual', 'mixed' or a sequence of kinds, got {layers!r}"
        )
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers: expected a str or a sequence of str, got {type(layers).__name__}")
    if len(layers) != n_hidden:
        raise ValueError(
            f"layers: expected one kind per hidden layer (depth - 1 = {n_hidden}), got {len(layers)}"
        )
    for l, kind in enumerate(layers):
        if kind not in LAYER_KINDS:
            raise ValueError(f"layers[{l}]: expected one of {list(LAYER_KINDS)}, got {kind!r}")
    return list(layers)


def random_problem(
    depth,
    width,
    batch,
    *,
    layers="dense",
    activation="tanh",
    head="softmax",
    bias=True,
    n_classes=3,
    n_in=None,
    scale=1.0,
    seed=0,
    dtype="float64",
):
    """A reproducible random problem ``(net, params, X, y)`` on the active backend.

    Parameters
    ----------
    depth : int
        Number of layers ``L``, the head included (``depth=1`` is the head
        alone, a linear/logistic model).
    width : int
        Per-sample width of every hidden layer.
    batch : int
        Number of samples ``B``.
    layers : {"dense", "residual", "mixed"} or sequence of str
        Kind of the hidden layers: all :class:`~hessinv_ref.layers.Dense`, all
        :class:`~hessinv_ref.layers.Residual`, alternating (dense first), or an
        explicit kind per hidden layer (``depth - 1`` entries).
    activation : str or Activation or sequence
        One activation for every hidden layer, or one per hidden layer.
    head : {"softmax", "mse"}
        Cross-entropy over ``n_classes`` classes, or squared error with
        ``n_classes`` outputs.
    bias : bool
        Whether every layer, the head included, has a bias.
    n_classes : int
        Classes of a softmax head; output width of an ``"mse"`` head.
    n_in : int, optional
        Input width; defaults to ``width``.  A residual first layer needs
        ``n_in == width``.
    scale : float
        Gain on ``torch.nn.Linear``'s initial bound ``1/sqrt(fan_in)``: small
        values give nearly linear, well-conditioned problems; deep tanh chains
        need 1.5-2 for the far end to have curvature at all.
    seed : int
        Seed of ``numpy.random.default_rng``.  The generator draws the
        parameters first, exactly as ``net.init(seed, scale)``, then ``X``,
        then ``y``.
    dtype : {"float64", "float32"}
        Working precision of the parameters, ``X`` and float targets.  The
        values are drawn in float64 whatever ``dtype`` is, then rounded, so
        a float32 problem is the float64 one rounded once.

    Returns
    -------
    net : Network
    params : list of dict
        ``{"weight": (out, in), "bias": (out,)}`` per layer, arrays of the
        active backend (:func:`hessinv_ref.get_backend`).
    X : array, shape (batch, n_in)
        Standard normal inputs, on the active backend.
    y : array
        Labels of shape (batch,) for ``"softmax"`` (integers); standard normal
        targets of shape (batch, n_classes) for ``"mse"``; on the active
        backend.

    Raises
    ------
    TypeError, ValueError
        For a bad argument; the message names it, what was expected and
        what was given.

    Notes
    -----
    ``X`` and ``y`` are drawn with the NumPy generator and then moved with
    :func:`~hessinv_ref.backend.from_numpy`: on NumPy the values are
    exactly those of earlier versions (the golden files depend on them),
    and on any backend they are the same numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from hessinv_ref import hessian
    >>> from hessinv_ref.testing import random_problem
    >>> net, params, X, y = random_problem(3, 4, 2, layers="mixed", head="mse")
    >>> [type(layer).__name__ for layer in net.layers]
    ['Dense', 'Residual', 'SquaredError']
    >>> X.shape, y.shape, net.n_params
    ((2, 4), (2, 3), 55)
    >>> H = hessian(net, params, X, y)
    >>> bool(np.allclose(H, H.T))
    True
    """
    depth = _positive_int("depth", depth)
    width = _positive_int("width", width)
    batch = _positive_int("batch", batch)
    n_classes = _positive_int("n_classes", n_classes)
    n_in = width if n_in is None else _positive_int("n_in", n_in)
    if head not in HEADS:
        raise ValueError(f"head: expected one of {list(HEADS)}, got {head!r}")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias: expected a bool, got {bias!r}")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale: expected a positive float, got {scale!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected a positive finite float, got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    dtype = check_dtype(dtype)

    n_hidden = depth - 1
    kinds = _hidden_kinds(layers, n_hidden)
    if kinds and kinds[0] == "residual" and n_in != width:
        raise ValueError(
            f"layers: a residual first layer needs n_in == width, got n_in={n_in} and width={width}"
        )
    acts = _per_layer("activation", activation, n_hidden, (str,))
    net = build_network(n_in, [width] * n_hidden, kinds, acts, [bool(bias)] * depth, head, n_classes)

    return draw_problem(net, batch, seed, scale=scale, dtype=dtype)


def tall_skinny_network(depth, width, classes=3, activation="tanh", bias=False, n_in=None):
    """``depth - 1`` :class:`Dense` layers of ``width`` and a softmax head
    (``depth`` layers in all), the paper's setting."""
    if depth < 1:
        raise ValueError(f"depth: expected >= 1, got {depth}")
    n_in = width if n_in is None else n_in
    layers = []
    for l in range(depth - 1):
        layers.append(Dense(n_in if l == 0 else width, width, activation, bias=bias))
    layers.append(SoftmaxCrossEntropy(n_in if depth == 1 else width, classes, bias=bias))
    return Network(layers)
