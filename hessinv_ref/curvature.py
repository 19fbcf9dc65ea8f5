r"""The per-point object: one forward and one backward pass, cached.

:class:`Curvature` fixes a point ``(params, X, y)``.  It runs the forward pass
(activations :math:`z_0..z_L`) and the backward pass (backprop vectors
:math:`b_1..b_L`, :ref:`notation §2 <notation-2>`) once, and computes the explicit per-layer
blocks :math:`(J_z, J_x, H_{xx}, H_{xz}, H_{zz})` once, on first use.  The
Hessian-vector product, the polynomial form, the dense oracle and every
inverse solver then reuse them; refactoring for a new damping ``ε`` costs no
new pass over the layers.

Everything is computed on the active array backend (:mod:`hessinv_ref.backend`)
in the *working precision*, the parameters' dtype (see
:mod:`hessinv_ref.network`); the cached arrays are read-only where the
library supports it (NumPy).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .backend import get_backend, xp

__all__ = ["Curvature", "LayerBlocks"]


class LayerBlocks(NamedTuple):
    """The explicit blocks of one layer ``l`` (:ref:`notation §2 <notation-2>`-:ref:`§3 <notation-3>`).

    Attributes
    ----------
    Jz : array, shape (a_l, a_{l-1})
    Jx : array, shape (a_l, p_l)
    Hxx : array, shape (p_l, p_l)
    Hxz : array, shape (p_l, a_{l-1})
    Hzz : array, shape (a_{l-1}, a_{l-1})

    Arrays of the active backend, in the working dtype.
    """

    Jz: Any
    Jx: Any
    Hxx: Any
    Hxz: Any
    Hzz: Any


class Curvature:
    """Second-order information of a network at one point.

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

    All arrays must belong to the active backend (see
    :mod:`hessinv_ref.network` for the validation and dtype rules).

    Attributes
    ----------
    z : list of array
        Activations ``z_0..z_L``, flat, ``z[l]`` of shape (a_l,).
    b : list of array
        Backprop vectors, ``b[l]`` = :math:`b_l = ∂z_L/∂z_l` of shape (a_l,)
        for ``l = 0..L`` (``b[L] = [1.]``).
    dtype : dtype
        The working precision (the parameters' dtype); every cached array
        and every result has it.
    backend : Backend
        The backend active at construction; the cached arrays belong to it.
    """

    def __init__(self, net, params, X, y):
        self.net = net
        self.backend = get_backend()
        # cached arrays are handed out read-only where the library can (NumPy)
        self._read_only = self.backend.read_only
        self.xs = net.layer_vectors(params)
        self.dtype = net.working_dtype(self.xs)
        z0, self.y = net.check_inputs(X, y, dtype=self.dtype)
        self.batch = z0.shape[0] // net.n_in  # X was (B, n_in), validated
        self.layers = net.bound_layers(self.y)
        self.z = self._forward(z0)
        self.b, self._grads = self._backward()
        self._blocks = None
        self._norm1 = {}  # damping -> ||H + εI||_1 estimate

    # -- the two passes -----------------------------------------------------

    fast_passes = True
    """Run the forward and backward passes through each run of identical
    layers with the layers' ``forward_run``/``vjp_run`` (the default), or
    always layer by layer through ``forward``/``vjp`` (``False``)."""

    def _forward(self, z0):
        return self._forward_fast(z0) if self.fast_passes else self._forward_plain(z0)

    def _backward(self):
        return self._backward_fast() if self.fast_passes else self._backward_plain()

    def _one(self):
        """:math:`b_L = ∂z_L/∂z_L = [1]` in the working dtype."""
        return xp.ones((1,), dtype=self.dtype, device=self.xs[0].device)

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
        return self.net.sizes(self.batch)

    def loss(self):
        """The training loss ``z_L``."""
        return float(self.z[-1][0])

    def gradient(self):
        """:math:`g_l = b_l J_{x,l}`, concatenated: shape (P,)."""
        return xp.concat(self._grads)

    # -- explicit blocks ------------------------------------------------------

    fast_blocks = True
    """Build the blocks with the layers' vectorised ``stacked_blocks`` where
    they have one (the default), or always with the explicit
    ``jacobians``/``curvature`` (``False``).  Both give the same blocks to
    rounding; ``tests/test_fast_paths.py`` checks it."""

    @property
    def blocks(self):
        """Per-layer :class:`LayerBlocks`, ``blocks[l - 1]`` for layer ``l``.

        Computed on first access and cached (read-only arrays).
        """
        if self._blocks is None:
            self._blocks = self._blocks_fast() if self.fast_blocks else self._blocks_plain()
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
        return blocks

    def _working(self, m, l):
        """A block of layer ``l`` as an array of the backend in the working
        dtype: the built-in layers already return that; a user-written
        layer may return Python lists or another floating dtype, which is
        cast here (a copy) so the solvers see one precision."""
        m = self.backend.asarray(m, f"layers[{l - 1}] block")
        return m if m.dtype == self.dtype else xp.astype(m, self.dtype)

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
            out.extend(LayerBlocks(*(m[r, ...] for m in stacked)) for r in range(end - start))
        return tuple(out)

    # -- vectors in parameter space -------------------------------------------

    def split(self, v):
        """Split a (P,) vector or (P, k) matrix into per-layer slices ``v_l``
        of shape (p_l,) or (p_l, k) (views on NumPy)."""
        o = self.net.offsets()
        # the trailing ``...``: the Array API wants an index for every axis
        return [v[o[l]:o[l + 1], ...] for l in range(self.depth)]

    # -- everything built on the cache ----------------------------------------

    def hvp(self, v):
        """Pearlmutter's R-operator :math:`H v`; see :func:`hessinv_ref.rop.hvp`."""
        from .rop import rop_hvp_cached

        return rop_hvp_cached(self, v)

    def polynomial(self):
        """The structured matrices of :ref:`notation §4 <notation-4>`; see
        :class:`hessinv_ref.polynomial.HessianPolynomial`."""
        from .polynomial import HessianPolynomial

        return HessianPolynomial(self.blocks)

    def hessian(self):
        """The dense ``P × P`` Hessian; see :func:`hessinv_ref.dense.hessian_from_blocks`."""
        from .dense import hessian_from_blocks

        return hessian_from_blocks(self.blocks)

    def factorize(self, damping, method=None, **options):
        """Factor :math:`H + εI` reusing the cached blocks; see
        :func:`hessinv_ref.inverse.factorize` (``method=None``:
        :func:`~hessinv_ref.inverse.default_method`, ``"banded"`` on NumPy,
        ``"riccati"`` elsewhere).  Call again with another
        ``damping`` for a damping sweep: no pass over the layers is repeated."""
        from .inverse import factorize_curvature

        return factorize_curvature(self, damping, method, **options)

    def norm_estimate(self, damping=0.0):
        r"""An estimate of :math:`\|H + εI\|_1` from a few R-operator products
        (the backend's ``onenormest``: SciPy's on NumPy, Hager's algorithm
        elsewhere; exact for small ``P``), cached per damping.  A float."""
        from .factorization import check_damping

        eps = check_damping(damping)
        if eps not in self._norm1:
            self._norm1[eps] = float(self.backend.onenormest(self._apply(eps), self.P, self.dtype))
        return self._norm1[eps]

    def _apply(self, eps):
        """``v -> (H + εI) v`` by the R-operator, for (P,) or (P, k) ``v``.

        For a ``LinearOperator`` and the norm estimator: their own iterates
        may come in another floating dtype (SciPy's estimator starts from
        float64 vectors), so ``v`` is taken to the working dtype here, as a
        ``LinearOperator`` of that dtype does."""

        def apply(v):
            v = self.backend.asarray(v, "v")
            if v.dtype != self.dtype:
                v = xp.astype(v, self.dtype)
            return self.hvp(v) + eps * v

        return apply

    def operator(self, damping=0.0):
        """A ``LinearOperator`` for :math:`H + εI` by the R-operator (the
        backend's: SciPy's on NumPy, ``cupyx``'s on CuPy; other backends
        raise :class:`~hessinv_ref.backend.BackendNotSupportedError`)."""
        from .factorization import check_damping

        eps = check_damping(damping)
        return self.backend.linear_operator((self.P, self.P), self._apply(eps), self.dtype)
