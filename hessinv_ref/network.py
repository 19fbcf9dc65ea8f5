r"""A network is a chain of layers ending in a loss head (:ref:`notation §1 <notation-1>`).

.. math::

    z_0 = X, \quad z_l = f_l(z_{l-1}; x_l) \ (l = 1..L), \quad z_L = \text{loss}.

Parameters are handled in two equivalent forms:

* ``params``: a list with one dict per layer, ``{"weight": W, "bias": c}``
  (``"bias"`` only where the layer has one), the names of
  ``torch.nn.Linear.named_parameters()``;
* ``theta``: the flat vector of length ``P`` that concatenates every layer's
  ``W.ravel()`` (row-major) then bias, in layer order.

Every function that takes ``params`` also accepts ``theta``.

Arrays and precision
--------------------
The network's validation is the door of :mod:`hessinv_ref.backend`: it reads
the active backend, and ``params``, ``X``, ``y`` and every vector must be
arrays of that backend (or Python lists and numbers); an array of another
library or device raises ``TypeError``/``ValueError`` naming the argument
instead of being copied behind the caller's back.  A point's methods
validate their vectors against the point's own backend instead
(:meth:`Network.check_vector` with ``backend=``), so a point keeps working
after the active backend changes.  A nested list must be rectangular: a ragged one
raises ``ValueError`` naming the argument and where it is ragged
(``X[1] has length 2 but X[0] has length 3``).  :meth:`Network.init` draws on the host with
NumPy's generator (the Array API has none) and moves the result once,
explicitly.

The *working precision* is the parameters' dtype: ``float64`` (the
default) or ``float32``, the same for every layer (mixed dtypes raise
``TypeError``).  Everything else follows it, and the precision never
changes silently:

* ``X`` may be integer or floating.  Integer ``X`` is cast to the working
  dtype; floating ``X`` of another precision raises ``TypeError`` naming
  ``X``, its dtype and the parameters' dtype.
* Floating targets ``y`` of a squared-error head follow the same rule
  (integer class labels of a softmax head are labels, not numbers).
* Parameter-space vectors (``v``, a right-hand side) follow it too, through
  :meth:`Network.check_vector` with the working ``dtype``.
"""

from __future__ import annotations

import math
import numbers

from .backend import check_dtype, from_numpy, get_backend, namespace_of, to_numpy
from .finite import NonFiniteError, first_non_finite, layer_magnitudes, overflow_cause
from .layers import Layer
from .layout import BlockLayout
from .point import Point

__all__ = ["Network"]

_FLOATS = ("float32", "float64")


def _check_finite(name, a):
    xp = namespace_of(a).xp
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def _ragged(a, name):
    """Where the nested list ``a`` stops being rectangular, as a phrase, or
    ``None`` if it is rectangular (then a conversion failed for another
    reason)."""
    if not isinstance(a, (list, tuple)):
        return None
    nested = [isinstance(e, (list, tuple)) for e in a]
    if any(nested) and not all(nested):
        i, j = nested.index(True), nested.index(False)
        return f"{name}[{i}] is a list but {name}[{j}] is {type(a[j]).__name__} {_short_repr(a[j])}"
    if not any(nested):
        return None
    lengths = [len(e) for e in a]
    for i, n in enumerate(lengths):
        if n != lengths[0]:
            return f"{name}[{i}] has length {n} but {name}[0] has length {lengths[0]}"
    return next((w for w in (_ragged(e, f"{name}[{i}]") for i, e in enumerate(a)) if w), None)


def _as_array(a, name, be, why=None):
    """``a`` as an array of the backend ``be``, the active one at the door
    (:meth:`~hessinv_ref.backend.Backend.asarray`, ``why`` for its message);
    a nested list that is not rectangular gets an error naming ``name`` and
    where it is ragged, not the array library's internal message."""
    try:
        return be.asarray(a, name, why=why)
    except (ValueError, TypeError):
        where = _ragged(a, name)
        if where is None:
            raise
        raise ValueError(
            f"{name}: expected an array or a rectangular nested list (every row of one "
            f"length), got a ragged nested list: {where}"
        ) from None


def _short_repr(obj, limit=40):
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_real(xp, dtype):
    return xp.isdtype(dtype, ("integral", "real floating"))


def _is_working_float(xp, dtype):
    """float32 or float64: the precisions the library computes in."""
    return any(dtype == getattr(xp, name) for name in _FLOATS)


def _cast_to_working(name, a, dtype):
    """``a`` (a validated real array) in the working ``dtype``: integers are
    cast, floating arrays must already have it (no silent precision change)."""
    if dtype is None or a.dtype == dtype:
        return a
    xp = namespace_of(a).xp
    if xp.isdtype(a.dtype, "integral"):
        return xp.astype(a, dtype)
    raise TypeError(
        f"{name}: got dtype {a.dtype}, but the parameters' dtype (the working "
        f"precision) is {dtype}; convert it explicitly (the precision never "
        f"changes silently)"
    )


def _generator(seed):
    """``seed`` (None, an int >= 0 or a ``numpy.random.Generator``) as a Generator."""
    import numpy as np  # the host RNG only

    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)  # a Generator is returned as is
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed: expected None, an int >= 0 or a numpy.random.Generator, "
            f"got {type(seed).__name__} {_short_repr(seed)}"
        )
    if seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed}")
    return np.random.default_rng(int(seed))


class Network:
    """A chain of layers whose last layer is a loss head.

    Parameters
    ----------
    layers : sequence of Layer
        Hidden layers, then exactly one loss head (``layer.is_loss``).
        Consecutive per-sample widths must match.  Anything else raises
        ``TypeError``/``ValueError`` naming ``layers`` (not a sequence, e.g.
        a single layer, a string or a dict) or ``layers[i]`` with the
        offending item's type (not a layer, a misplaced or missing head, a
        width mismatch).

    Examples
    --------
    >>> from hessinv_ref import Network, Dense, SoftmaxCrossEntropy
    >>> net = Network([Dense(3, 4), Dense(4, 4), SoftmaxCrossEntropy(4, 2)])
    >>> net.n_params
    46
    >>> params = net.init(seed=0)
    >>> [sorted(p) for p in params][-1]
    ['bias', 'weight']
    """

    def __init__(self, layers):
        # a single layer, a string or a dict is iterable (or looks like a
        # layer) but is not a list of layers: say so instead of iterating it
        if isinstance(layers, (str, bytes, dict)) or hasattr(layers, "forward") or not hasattr(layers, "__iter__"):
            hint = " (a single layer: wrap it in a list, Network([layer]))" if hasattr(layers, "forward") else ""
            raise TypeError(
                f"layers: expected a sequence of layers ending in a loss head, "
                f"got {type(layers).__name__}{hint}"
            )
        layers = list(layers)
        if not layers:
            raise ValueError("layers: expected at least one layer (the loss head), got none")
        for l, layer in enumerate(layers, start=1):
            for attr in ("n_in", "n_out", "n_params", "forward", "vjp", "jvp"):
                if not hasattr(layer, attr):
                    raise TypeError(
                        f"layers[{l - 1}]: expected a layer (a hessinv_ref.Layer, with {attr!r}), "
                        f"got {type(layer).__name__} {_short_repr(layer)}"
                    )
        for l, layer in enumerate(layers[:-1], start=1):
            if getattr(layer, "is_loss", False):
                raise ValueError(
                    f"layers[{l - 1}]: a loss head ({layer!r}) must be the last layer"
                )
        if not getattr(layers[-1], "is_loss", False):
            raise ValueError(
                f"layers[{len(layers) - 1}]: the last layer must be a loss head "
                f"(SoftmaxCrossEntropy or SquaredError), got {layers[-1]!r}"
            )
        for l in range(1, len(layers)):
            prev, layer = layers[l - 1], layers[l]
            if layer.n_in != prev.n_out:
                raise ValueError(
                    f"layers[{l}]: {layer!r} expects input width {layer.n_in}, "
                    f"but layers[{l - 1}] ({prev!r}) has output width {prev.n_out}"
                )
        self.layers = tuple(layers)
        self._param_layout = None  # made on first use by layout()

    # -- sizes ------------------------------------------------------------------

    @property
    def depth(self):
        """Number of layers ``L``, the head included."""
        return len(self.layers)

    @property
    def n_in(self):
        """Per-sample input width."""
        return self.layers[0].n_in

    @property
    def head(self):
        """The loss head, ``layers[-1]``."""
        return self.layers[-1]

    @property
    def param_sizes(self):
        """``(p_1, ..., p_L)``."""
        return tuple(layer.n_params for layer in self.layers)

    @property
    def n_params(self):
        """``P = Σ p_l``."""
        return sum(self.param_sizes)

    def activation_sizes(self, batch):
        """``(a_0, a_1, ..., a_L)`` for a batch of ``batch`` samples (``a_L = 1``)."""
        if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
            raise ValueError(f"batch: expected a positive int, got {batch!r}")
        sizes = [batch * self.n_in]
        sizes += [layer.out_dim(batch) for layer in self.layers]
        return tuple(sizes)

    def sizes(self, batch):
        """Per-layer ``(p_l, a_l)`` pairs for ``l = 1..L``."""
        a = self.activation_sizes(batch)
        return [(layer.n_params, a[l]) for l, layer in enumerate(self.layers, start=1)]

    def offsets(self):
        """Start of each layer's block in ``theta``, length ``L + 1``: a
        tuple of Python ints (bookkeeping, not an array); the
        ``x_offsets`` of :meth:`layout`."""
        return self.layout().x_offsets

    def layout(self, batch=None):
        """The chain's :class:`~hessinv_ref.layout.BlockLayout`: parameter
        blocks ``p_l`` and, for a batch size, activation blocks ``a_l``
        (``batch=None``: the parameters only)."""
        if batch is None:
            if self._param_layout is None:
                self._param_layout = BlockLayout(self.param_sizes)
            return self._param_layout
        return BlockLayout(self.param_sizes, self.activation_sizes(batch))

    def __repr__(self):
        inner = ",\n    ".join(repr(layer) for layer in self.layers)
        return f"Network([\n    {inner},\n])"

    # -- parameters -------------------------------------------------------------

    def init(self, seed=0, scale=1.0, dtype="float64"):
        """Draw parameters as ``torch.nn.Linear`` does.

        Parameters
        ----------
        seed : int, numpy.random.Generator or None
            An int ``>= 0`` seeds ``numpy.random.default_rng(seed)``; a
            ``Generator`` is drawn from (and advanced); ``None`` draws fresh
            entropy from the OS (not reproducible).  The layers draw weight
            then bias, in order.  Anything else (a float, a negative int, a
            string, a bool, NumPy's legacy ``RandomState``) raises
            ``TypeError``/``ValueError`` naming ``seed``.
        scale : float
            Multiplies every bound (``1`` is PyTorch's default).  Deep tanh
            chains need ``scale`` around 1.5-2 for the curvature to be
            more than ``εI`` at the far end.
        dtype : {"float64", "float32"}
            The working precision of the parameters.

        Returns
        -------
        list of dict
            One ``{"weight", "bias"}`` dict per layer, arrays of the active
            backend in ``dtype``.

        Notes
        -----
        The draws come from NumPy's generator on the host, in float64,
        whatever the backend and ``dtype`` (the Array API has no random
        number generator): the stream is the one PyTorch's layout and every
        golden file expect.  The whole parameter vector is then rounded to
        ``dtype`` and moved to the backend once, explicitly
        (:func:`~hessinv_ref.backend.from_numpy`).
        """
        import numpy as np  # the host RNG only; no math happens here

        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            raise TypeError(f"scale: expected a positive number, got {type(scale).__name__}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale: expected a finite number > 0, got {scale}")
        dtype = check_dtype(dtype)
        rng = _generator(seed)
        host = np.concatenate([to_numpy(layer.init(rng, scale=scale)) for layer in self.layers])
        backend = get_backend()  # the door: new parameters, for the active backend
        return self.unflatten(from_numpy(host.astype(dtype), backend=backend.name))

    def flatten(self, params):
        """Concatenate per-layer dicts into ``theta`` of shape (P,) (a new array)."""
        xs = self.layer_vectors(params)
        return namespace_of(xs[0]).xp.concat(xs)

    def unflatten(self, theta):
        """Split ``theta`` (P,) into one ``{"weight", "bias"}`` dict per layer (copies)."""
        out = []
        for l, (layer, x) in enumerate(zip(self.layers, self.layer_vectors(theta))):
            if not hasattr(layer, "unpack"):
                raise TypeError(
                    f"layers[{l}]: {type(layer).__name__} has no unpack(x) -> (weight, bias), "
                    f"so its parameters exist only as the flat vector theta"
                )
            W, c = layer.unpack(x)
            xp = namespace_of(W).xp
            d = {"weight": xp.asarray(W, copy=True)}
            if c is not None:
                d["bias"] = xp.asarray(c, copy=True)
            out.append(d)
        return out

    def layer_vectors(self, params):
        """Validate ``params`` or ``theta`` and return the per-layer ``x_l`` list.

        The vectors are read-only copies, so no later computation can write
        into the caller's arrays.  They are real floating arrays of one
        dtype, float32 or float64: the working precision
        (:meth:`working_dtype`).  A door: ``params`` must belong to the active
        backend.
        """
        be = get_backend()
        xp = be.xp
        if isinstance(params, (list, tuple)):
            if len(params) != self.depth:
                raise ValueError(
                    f"params: expected {self.depth} per-layer dicts, got {len(params)}"
                )
            xs = []
            for l, (layer, p) in enumerate(zip(self.layers, params)):
                if not isinstance(p, dict) or "weight" not in p:
                    raise TypeError(
                        f"params[{l}]: expected a dict with 'weight' (and 'bias'), got {type(p).__name__}"
                    )
                if not hasattr(layer, "pack"):
                    raise TypeError(
                        f"params[{l}]: {type(layer).__name__} has no pack(weight, bias); "
                        f"pass its parameters as the flat vector theta instead"
                    )
                extra = set(p) - {"weight", "bias"}
                if extra:
                    raise ValueError(f"params[{l}]: unexpected keys {sorted(extra)}")
                # nested lists become arrays here, so a ragged one is named
                p = {k: _as_array(a, f"params[{l}][{k!r}]", be) if isinstance(a, (list, tuple)) else a
                     for k, a in p.items()}
                try:
                    x = layer.pack(p["weight"], p.get("bias"))
                except (ValueError, TypeError) as err:
                    raise type(err)(f"params[{l}] ({layer!r}): {err}") from None
                if not xp.isdtype(x.dtype, "real floating"):
                    raise TypeError(f"params[{l}]: expected floating-point arrays, got dtype {x.dtype}")
                if not _is_working_float(xp, x.dtype):
                    raise TypeError(f"params[{l}]: expected float32 or float64 arrays, got dtype {x.dtype}")
                if xs and x.dtype != xs[0].dtype:
                    raise TypeError(
                        f"params[{l}]: dtype {x.dtype} differs from params[0]'s {xs[0].dtype}; "
                        f"every layer must have the same working precision"
                    )
                _check_finite(f"params[{l}]", x)
                # the built-in pack copies already; a user layer's might not
                xs.append(xp.asarray(x, copy=True))
        elif isinstance(params, (str, bytes, dict)) or not hasattr(params, "shape") and not be.is_array(params):
            raise TypeError(
                f"params: expected a list of per-layer dicts or a flat array, got {type(params).__name__}"
            )
        else:
            theta = _as_array(params, "params", be)
            if theta.shape != (self.n_params,):
                raise ValueError(
                    f"params: expected a flat vector of shape ({self.n_params},) "
                    f"or a list of {self.depth} dicts, got an array of shape {theta.shape}"
                )
            if not xp.isdtype(theta.dtype, "real floating"):
                raise TypeError(f"params: expected a floating-point array, got dtype {theta.dtype}")
            if not _is_working_float(xp, theta.dtype):
                raise TypeError(f"params: expected a float32 or float64 array, got dtype {theta.dtype}")
            _check_finite("params", theta)
            # one private copy, then read-only slices of it (no copy per layer)
            theta, o = xp.asarray(theta, copy=True), self.offsets()
            xs = [theta[o[l]:o[l + 1]] for l in range(self.depth)]
        return [be.read_only(x) for x in xs]

    @staticmethod
    def working_dtype(xs):
        """The working precision: the dtype of validated layer vectors ``xs``
        (as :meth:`layer_vectors` returns them)."""
        return xs[0].dtype

    def check_inputs(self, X, y, dtype=None):
        """Validate ``X`` (B, n_in) and ``y``; return read-only ``(z_0, y)``.

        ``dtype`` is the working precision (the parameters' dtype; default
        float64): integer ``X`` is cast to it, floating ``X`` (and floating
        targets) of another precision raise ``TypeError``.  ``z_0`` is a
        copy, flat, of shape (B n_in,).  A door: ``X`` and ``y`` must belong to
        the active backend.
        """
        be = get_backend()
        xp = be.xp
        if dtype is None:
            dtype = be.dtype("float64")
        X = _as_array(X, "X", be)
        if X.ndim != 2 or X.shape[1] != self.n_in or X.shape[0] == 0:
            raise ValueError(
                f"X: expected shape (B, {self.n_in}) with B >= 1, got {X.shape}"
            )
        if not _is_real(xp, X.dtype):
            raise TypeError(f"X: expected a real array, got dtype {X.dtype}")
        if xp.isdtype(X.dtype, "real floating"):
            _check_finite("X", X)
        z0 = xp.reshape(_cast_to_working("X", X, dtype), (-1,))
        # a copy of the caller's memory (astype and reshape may return it as is)
        z0 = be.read_only(xp.asarray(z0, copy=True))
        if isinstance(y, (list, tuple)):  # the head converts arrays; a list is checked here
            y = _as_array(y, "y", be)
        return z0, self.head.check_targets(y, batch=X.shape[0], dtype=dtype)

    def check_vector(self, name, v, dtype=None, backend=None):
        """Validate a parameter-space vector (P,) or matrix (P, k).

        With ``dtype`` (the working precision), integer arrays are cast to
        it and floating arrays of another precision raise ``TypeError``;
        without it, any real dtype is returned as is.  ``v`` must belong to
        ``backend``: a point's methods pass the point's own
        (``point.backend``); ``None`` (a door, e.g. the right-hand side given
        to :func:`hessinv_ref.solve`) means the active one.  Not a copy when
        no cast is needed: never write into the result.
        """
        if backend is None:
            be, why = get_backend(), None
        else:
            be, why = backend, f"the point it goes with was built on the {backend.name!r} backend"
        xp = be.xp
        v = _as_array(v, name, be, why)
        if v.ndim not in (1, 2) or v.shape[0] != self.n_params:
            raise ValueError(
                f"{name}: expected shape ({self.n_params},) or ({self.n_params}, k), got {v.shape}"
            )
        if not _is_real(xp, v.dtype):
            raise TypeError(f"{name}: expected a real array, got dtype {v.dtype}")
        if xp.isdtype(v.dtype, "real floating"):
            _check_finite(name, v)
        return _cast_to_working(name, v, dtype)

    def bound_layers(self, y):
        """The layers with the head bound to targets ``y`` (already
        validated, e.g. by :meth:`check_inputs`)."""
        return self.layers[:-1] + (self.head.bind(y),)

    # -- passes -----------------------------------------------------------------

    def forward(self, params, X, y):
        """Forward pass; returns the activations ``[z_0, ..., z_L]`` (flat).

        Raises :class:`~hessinv_ref.finite.NonFiniteError` naming the first
        ``z_l`` that overflowed from finite inputs."""
        xs = self.layer_vectors(params)
        z, y = self.check_inputs(X, y, dtype=self.working_dtype(xs))
        zs = [z]
        for layer, x in zip(self.bound_layers(y), xs):
            zs.append(layer.forward(x, zs[-1]))
        l = first_non_finite(zs)  # z_0 = X is finite: a bad z_l was made by layer l
        if l is not None:
            cause = overflow_cause(xs[0].dtype, layer_magnitudes(l, zs[l - 1], xs[l - 1]), f"layer {l}'s forward pass")
            raise NonFiniteError(f"forward activation z_{l}", l, cause)
        return zs

    def loss(self, params, X, y):
        """The training loss ``z_L`` (a float): batch-mean, as PyTorch."""
        return float(self.forward(params, X, y)[-1][0])

    def gradient(self, params, X, y):
        r"""Backprop: :math:`b_L = 1,\ b_{l-1} = b_l J_{z,l}`,
        :math:`g_l = b_l J_{x,l}`; returns ``g`` of shape (P,)."""
        return Point(self, params, X, y).gradient()
