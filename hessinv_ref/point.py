r"""One point of a network, as data: the cached passes and the per-layer blocks.

:class:`Point` fixes ``(params, X, y)``.  It runs the forward pass
(activations :math:`z_0..z_L`) and the backward pass (backprop vectors
:math:`b_1..b_L`, :ref:`notation §2 <notation-2>`) once, and computes
the explicit per-layer blocks :math:`(J_z, J_x, H_{xx}, H_{xz}, H_{zz})` once,
on first use.  It knows no algorithm: the Hessian-vector products
(:mod:`hessinv_ref.rop`), the polynomial form (:mod:`hessinv_ref.polynomial`),
the dense oracle (:mod:`hessinv_ref.dense`) and every inverse route
(:mod:`hessinv_ref.solvers`) receive a point and read its passes, blocks
and :class:`~hessinv_ref.layout.BlockLayout`; refactoring for a new damping
``ε`` costs no new pass over the layers.  :class:`hessinv_ref.Curvature`
is a point with those algorithms at hand as methods.

A point is where the backend is chosen (:mod:`hessinv_ref.backend`): its
constructor reads the active backend once and keeps it, as
:attr:`Point.backend` and its namespace :attr:`Point.xp`.  Everything is
computed there, in the *working precision*, the parameters' dtype (see
:mod:`hessinv_ref.network`), and every algorithm handed the point computes
with ``point.xp`` and ``point.backend``, so a point built under one backend
keeps computing there when the active backend changes afterwards.  The
cached arrays are read-only where the library supports it (NumPy).

Nothing non-finite gets past it: the activations, the backprop vectors,
every block and the gradient are checked as they are made
(:mod:`hessinv_ref.finite`), so an overflow from large but finite inputs
raises :class:`~hessinv_ref.finite.NonFiniteError` naming the quantity and
the layer, and no route ever sees a non-finite block.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .backend import get_backend
from .finite import NonFiniteError, first_non_finite, layer_magnitudes, overflow_cause
from .layout import BlockLayout

__all__ = ["Point", "LayerBlocks", "PATHS", "check_network"]

PATHS = ("fast", "reference")
"""The two implementations of the passes and the blocks (``path=``): ``"fast"``
takes each run of identical layers in one vectorised call (the default);
``"reference"`` goes layer by layer through the textbook protocol
(``forward``, ``vjp``, ``jacobians``, ``curvature``).  They agree to rounding."""


def check_network(net):
    """``net`` itself if it is a :class:`~hessinv_ref.network.Network` (or
    quacks like one), else ``TypeError`` naming ``net``: every entry point
    takes the network first, and a list of layers is the usual mistake."""
    if not all(hasattr(net, attr) for attr in ("layer_vectors", "check_inputs", "check_vector", "bound_layers")):
        hint = "; build one with Network([...])" if isinstance(net, (list, tuple)) else ""
        raise TypeError(f"net: expected a hessinv_ref.Network, got {type(net).__name__}{hint}")
    return net


class LayerBlocks(NamedTuple):
    """The explicit blocks of one layer ``l`` (:ref:`notation §2 <notation-2>`-:ref:`§3 <notation-3>`).

    Attributes
    ----------
    Jz : array, shape (a_l, a_{l-1})
    Jx : array, shape (a_l, p_l)
    Hxx : array, shape (p_l, p_l)
    Hxz : array, shape (p_l, a_{l-1})
    Hzz : array, shape (a_{l-1}, a_{l-1})

    Arrays of the point's backend, in the working dtype.
    """

    Jz: Any
    Jx: Any
    Hxx: Any
    Hxz: Any
    Hzz: Any


class Point:
    """A network at one point ``(params, X, y)``: its passes and blocks, cached.

    Parameters
    ----------
    net : Network
    params : list of dict or array of shape (P,)
        Float32 or float64: the working precision.
    X : array, shape (B, n_in)
        Integer, or floating in the parameters' dtype.
    y : array
        Integer labels (B,) for a softmax head, targets (B, n_out) for a
        squared-error head.
    path : {"fast", "reference"}, optional
        Which implementation computes the passes and the blocks
        (:data:`PATHS`): the vectorised runs (default) or the textbook
        layer-by-layer protocol, kept beside it to check it against.

    All arrays must belong to the active backend, which the point keeps
    (see :mod:`hessinv_ref.network` for the validation and dtype rules).

    Attributes
    ----------
    path : str
        The ``path`` it was built with.
    z : list of array
        Activations ``z_0..z_L``, flat, ``z[l]`` of shape (a_l,).
    b : list of array
        Backprop vectors, ``b[l]`` = :math:`b_l = ∂z_L/∂z_l` of shape (a_l,)
        for ``l = 0..L`` (``b[L] = [1.]``).
    dtype : dtype
        The working precision (the parameters' dtype); every cached array
        and every result has it.
    backend : Backend
        The backend active at construction; the cached arrays belong to it,
        and every algorithm given the point computes on it (and validates
        the vectors it is given against it), whatever is active later.
    xp : namespace
        ``backend.xp``, the array namespace those algorithms compute with.
    layout : BlockLayout
        The per-layer block sizes and offsets of the chain at this batch
        size (:class:`~hessinv_ref.layout.BlockLayout`), made once here and
        read by every algorithm that cuts a vector into layers.
    """

    def __init__(self, net, params, X, y, *, path="fast"):
        if path not in PATHS:
            raise ValueError(f"path: expected one of {list(PATHS)}, got {path!r}")
        self.path = path
        self.net = check_network(net)
        # the door: the active backend, read once; the network's validation
        # below reads the same one, and nothing after this reads it again
        self.backend = get_backend()
        self.xp = self.backend.xp
        # cached arrays are handed out read-only where the library can (NumPy)
        self._read_only = self.backend.read_only
        self.xs = net.layer_vectors(params)
        self.dtype = net.working_dtype(self.xs)
        z0, self.y = net.check_inputs(X, y, dtype=self.dtype)
        self.batch = z0.shape[0] // net.n_in  # X was (B, n_in), validated
        self.layers = net.bound_layers(self.y)
        self.z = self._forward(z0)
        self._check_activations()
        # the sizes the passes actually produced (a user layer need not
        # declare out_dim): p_l from the parameter vectors, a_l from z_l
        self.layout = BlockLayout([x.shape[0] for x in self.xs], [z.shape[0] for z in self.z])
        self.b, self._grads = self._backward()
        self._check_backprop()
        self._blocks = None
        self._norm1 = {}  # damping -> ||H + εI||_1 estimate

    # -- the two passes -----------------------------------------------------

    # path="fast": each run of identical layers through the layers'
    # forward_run/vjp_run; path="reference": layer by layer through forward/vjp

    def _forward(self, z0):
        return self._forward_fast(z0) if self.path == "fast" else self._forward_plain(z0)

    def _backward(self):
        return self._backward_fast() if self.path == "fast" else self._backward_plain()

    def _one(self):
        """:math:`b_L = ∂z_L/∂z_L = [1]` in the working dtype."""
        return self.xp.ones((1,), dtype=self.dtype, device=self.xs[0].device)

    def _forward_plain(self, z0):
        zs = [z0]
        for layer, x in zip(self.layers, self.xs):
            zs.append(self._read_only(layer.forward(x, zs[-1])))
        return zs

    def _backward_plain(self):
        L = self.net.depth
        bs = [None] * (L + 1)
        grads = [None] * L
        bs[L] = self._read_only(self._one())
        for l in range(L, 0, -1):
            b_in, g = self.layers[l - 1].vjp(self.xs[l - 1], self.z[l - 1], bs[l])
            bs[l - 1], grads[l - 1] = self._read_only(b_in), g
        return bs, grads

    def _runs(self):
        """``[(start, end, fast), ...]``: maximal runs of consecutive layers
        ``start..end-1`` (0-based) with equal, non-``None`` ``stack_key()``
        (``fast`` true); a layer without a key is a run of its own, taken
        through the plain protocol (``fast`` false)."""
        keys = [getattr(layer, "stack_key", lambda: None)() for layer in self.layers]
        runs, start = [], 0
        for l in range(1, len(keys) + 1):
            if l == len(keys) or keys[l] is None or keys[l] != keys[start]:
                runs.append((start, l, keys[start] is not None))
                start = l
        return runs

    def _forward_fast(self, z0):
        zs, self._pass_cache = [z0], {}
        for start, end, fast in self._runs():
            layer = self.layers[start]
            if not fast:  # no fast builder (e.g. a user layer): the plain protocol
                zs.append(self._read_only(layer.forward(self.xs[start], zs[-1])))
                continue
            out, self._pass_cache[start] = layer.forward_run(self.xs[start:end], zs[-1])
            zs.extend(self._read_only(z) for z in out)
        return zs

    def _backward_fast(self):
        L = self.net.depth
        bs, grads = [None] * (L + 1), [None] * L
        bs[L] = self._read_only(self._one())
        for start, end, fast in reversed(self._runs()):
            layer = self.layers[start]
            if not fast:
                b_in, grads[start] = layer.vjp(self.xs[start], self.z[start], bs[end])
                bs[start] = self._read_only(b_in)
                continue
            b_ins, grads[start:end] = layer.vjp_run(
                self.xs[start:end], self.z[start:end], bs[end], self._pass_cache[start]
            )
            bs[start:end] = [self._read_only(b) for b in b_ins]
        del self._pass_cache  # only the passes need it
        return bs, grads

    # -- finiteness (hessinv_ref.finite) -----------------------------------------

    def _magnitudes(self, l, *, b=True):
        """What layer ``l`` computes from, for :func:`~hessinv_ref.finite.overflow_cause`."""
        return layer_magnitudes(l, self.z[l - 1], self.xs[l - 1], self.b[l] if b else None)

    def _check_activations(self):
        # z_0 is X, checked finite already: a bad z_l was made by layer l
        l = first_non_finite(self.z)
        if l is not None:
            cause = overflow_cause(self.dtype, self._magnitudes(l, b=False), f"layer {l}'s forward pass")
            raise NonFiniteError(f"forward activation z_{l}", l, cause)

    def _check_backprop(self):
        # b_L = [1]: a bad b_{l-1} was made by layer l's vjp; the pass runs
        # from l = L down, so the culprit is the bad b with the largest index
        i = first_non_finite(self.b[::-1])
        if i is not None:
            l = self.depth - i + 1  # the bad one is b[L - i] = b_{l-1}
            cause = overflow_cause(self.dtype, self._magnitudes(l), f"layer {l}'s vjp")
            raise NonFiniteError(f"backprop vector b_{l - 1}", l, cause)

    def _check_blocks(self, l, blocks):
        """Every block of layer ``l`` (or the stacked blocks of a run starting
        at ``l``, first axis the layer) finite, or :class:`NonFiniteError`."""
        for name, m in zip(LayerBlocks._fields, blocks):
            if first_non_finite([m]) is None:
                continue
            if m.ndim == 3:  # a run's stack: find its layer
                l += next(r for r in range(m.shape[0]) if first_non_finite([m[r, ...]]) is not None)
            cause = overflow_cause(self.dtype, self._magnitudes(l), "the Hessian blocks")
            raise NonFiniteError(f"block {name}", l, cause)

    # -- first order ---------------------------------------------------------

    @property
    def P(self):
        """Number of parameters."""
        return self.net.n_params

    @property
    def depth(self):
        """Number of layers ``L``."""
        return self.net.depth

    def sizes(self):
        """Per-layer ``(p_l, a_l)``."""
        return list(zip(self.layout.p, self.layout.a[1:]))

    def loss(self):
        """The training loss ``z_L``."""
        return float(self.z[-1][0])

    def gradient(self):
        """:math:`g_l = b_l J_{x,l}`, concatenated: shape (P,)."""
        l = first_non_finite(self._grads)
        if l is not None:
            cause = overflow_cause(self.dtype, self._magnitudes(l + 1), f"layer {l + 1}'s gradient")
            raise NonFiniteError(f"gradient g_{l + 1}", l + 1, cause)
        return self.xp.concat(self._grads)

    # -- explicit blocks ------------------------------------------------------

    # path="fast": the layers' vectorised stacked_blocks where they have one;
    # path="reference": every layer's explicit jacobians and curvature.  Both
    # give the same blocks to rounding (tests/test_fast_paths.py checks it).

    @property
    def blocks(self):
        """Per-layer :class:`LayerBlocks`, ``blocks[l - 1]`` for layer ``l``.

        Computed on first access and cached (read-only arrays).
        """
        if self._blocks is None:
            self._blocks = self._blocks_fast() if self.path == "fast" else self._blocks_plain()
        return self._blocks

    def _blocks_plain(self):
        """The textbook route: each layer's explicit ``jacobians`` and ``curvature``."""
        return tuple(self._layer_blocks(l) for l in range(1, self.depth + 1))

    def _layer_blocks(self, l):
        layer, x, z_in = self.layers[l - 1], self.xs[l - 1], self.z[l - 1]
        Jz, Jx = layer.jacobians(x, z_in)
        Hxx, Hxz, Hzz = layer.curvature(x, z_in, self.b[l])
        blocks = LayerBlocks(*(self._read_only(self._working(m, l)) for m in (Jz, Jx, Hxx, Hxz, Hzz)))
        # a user-written layer with a transposed block would otherwise fail
        # deep inside a solver with an anonymous matmul error
        p, a_in, a_out = x.shape[0], z_in.shape[0], self.z[l].shape[0]
        expected = {"Jz": (a_out, a_in), "Jx": (a_out, p), "Hxx": (p, p), "Hxz": (p, a_in), "Hzz": (a_in, a_in)}
        for name, shape in expected.items():
            actual = getattr(blocks, name).shape
            if actual != shape:
                raise ValueError(
                    f"layers[{l - 1}] ({self.layers[l - 1]!r}): {name} should have shape "
                    f"{shape} (p={p}, a_in={a_in}, a_out={a_out}), got {actual}"
                )
        self._check_blocks(l, blocks)
        return blocks

    def _working(self, m, l):
        """A block of layer ``l`` as an array of the backend in the working
        dtype: the built-in layers already return that; a user-written
        layer may return Python lists or another floating dtype, which is
        cast here (a copy) so the solvers see one precision."""
        m = self.backend.asarray(m, f"layers[{l - 1}] block",
                                 why=f"the point was built on the {self.backend.name!r} backend")
        return m if m.dtype == self.dtype else self.xp.astype(m, self.dtype)

    def _blocks_fast(self):
        """The same blocks, built for each *run* of consecutive layers with
        equal ``stack_key()`` in one vectorised call (a deep chain of
        identical layers is one run), so the Python cost is per run, not per
        layer.  Layers without a fast builder take the explicit route.
        Each layer's blocks are read-only views into the run's stacked arrays."""
        out = []
        for start, end, fast in self._runs():
            if not fast:
                out.append(self._layer_blocks(start + 1))
                continue
            stacked = self.layers[start].stacked_blocks(
                self.xs[start:end], self.z[start:end], self.b[start + 1:end + 1]
            )
            stacked = [self._read_only(self._working(m, start + 1)) for m in stacked]
            self._check_blocks(start + 1, stacked)
            out.extend(LayerBlocks(*(m[r, ...] for m in stacked)) for r in range(end - start))
        return tuple(out)

    # -- vectors in parameter space -------------------------------------------

    def split(self, v):
        """Split a (P,) vector or (P, k) matrix into per-layer slices ``v_l``
        of shape (p_l,) or (p_l, k) (views on NumPy); see
        :meth:`~hessinv_ref.layout.BlockLayout.split`."""
        return self.layout.split(v)
