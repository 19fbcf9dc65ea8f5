r"""The lifted system :math:`K`, the pivot :math:`Π` and the block-tridiagonal
:math:`K' = Π K Π^T` (:ref:`notation §5 <notation-5>`).

Keeping the tangents ``t`` and adjoints ``λ`` of the R-operator as unknowns
turns :math:`(H + εI) x = g` into a sparse system:

.. math::

    K \begin{bmatrix} x \\ t \\ λ \end{bmatrix}
    = \begin{bmatrix} g \\ 0 \\ 0 \end{bmatrix}, \qquad
    K = \begin{bmatrix}
        H_{xx} + εI & H_{xz} P_{\downarrow} & D_x^T \\
        -D_x & M & 0 \\
        -P_{\downarrow}^T H_{xz}^T & -P_{\downarrow}^T H_{zz} P_{\downarrow} & M^T
    \end{bmatrix}.

The second block row says :math:`t = M^{-1} D_x x`, the third
:math:`λ = M^{-T} P_{\downarrow}^T (H_{xz}^T x + H_{zz} P_{\downarrow} t)`, and the
first is then :math:`(H + εI) x = g`: :math:`H + εI` is the Schur complement
of the ``(t, λ)`` block.  The pivot :math:`Π` reorders the unknowns layer by
layer, ``(x_1, t_1, λ_1, ..., x_L, t_L, λ_L)``, and makes :math:`K'`
block-tridiagonal with blocks of size :math:`n_l = p_l + 2 a_l`:

.. math::

    B_{l,l} = \begin{bmatrix} H_{xx,l} + εI & 0 & J_{x,l}^T \\ -J_{x,l} & I & 0 \\
              0 & -H_{zz,l+1} & I \end{bmatrix},

.. math::

    B_{l,l-1} = \begin{bmatrix} 0 & H_{xz,l} & 0 \\ 0 & -J_{z,l} & 0 \\ 0 & 0 & 0 \end{bmatrix},\quad
    B_{l,l+1} = \begin{bmatrix} 0 & 0 & 0 \\ 0 & 0 & 0 \\
              -H_{xz,l+1}^T & 0 & -J_{z,l+1}^T \end{bmatrix}.
"""

from __future__ import annotations


from ..backend import BackendNotSupportedError, get_backend, namespace_of
from ..layout import offsets
from ..polynomial import HessianPolynomial

__all__ = ["LiftedSystem", "Pivot", "BlockTridiagonal", "pivoted_blocks"]


def _numpy_only(be, what, instead):
    """Raise :class:`BackendNotSupportedError` unless ``be``, the backend of
    the arrays at hand, is NumPy: ``scipy.sparse`` (display only) holds
    NumPy arrays only."""
    if be.name != "numpy":
        raise BackendNotSupportedError(f"{what} (scipy.sparse, for display)", be.name, instead)


class Pivot:
    r"""The permutation :math:`Π` from ``(x, t, λ)`` order to layer order.

    Parameters
    ----------
    p : sequence of int
        Parameter sizes ``(p_1..p_L)``.
    a : sequence of int
        Activation sizes ``(a_1..a_L)`` (the sizes of ``t_l`` and ``λ_l``).
    backend : Backend, optional
        Where the index arrays live: the backend of the vectors it will
        permute (:class:`LiftedSystem` passes its blocks').  Made from sizes
        alone, it has no data to take one from, so ``None`` means the active
        backend.

    Attributes
    ----------
    perm : array of int64, shape (N,)
        ``(Π u)[i] = u[perm[i]]``, with ``N = P + 2A``; on the backend's
        device (read-only on NumPy).
    backend : Backend
    block_sizes : tuple of int
        ``n_l = p_l + 2 a_l``.
    """

    def __init__(self, p, a, backend=None):
        p, a = [int(v) for v in p], [int(v) for v in a]
        P, A = sum(p), sum(a)
        x_off, t_off = offsets(p), offsets(a)
        perm = []
        for l in range(len(p)):
            perm.extend(range(x_off[l], x_off[l + 1]))                  # x_l
            perm.extend(range(P + t_off[l], P + t_off[l + 1]))          # t_l
            perm.extend(range(P + A + t_off[l], P + A + t_off[l + 1]))  # λ_l
        inv = [0] * len(perm)  # Π^{-1} = Π^T: inv[perm[i]] = i
        for i, j in enumerate(perm):
            inv[j] = i
        # the door for a permutation made from sizes only
        be = self.backend = get_backend() if backend is None else backend
        self._why = f"the permutation was made on the {be.name!r} backend"  # for asarray's message
        self.N = len(perm)
        self.perm = be.read_only(be.xp.asarray(perm, dtype=be.xp.int64, device=be.device))
        # the inverse as a second gather: a scatter out[perm] = u would be
        # integer-array setitem, which the Array API does not have
        self._inverse_perm = be.read_only(be.xp.asarray(inv, dtype=be.xp.int64, device=be.device))
        self.block_sizes = tuple(pl + 2 * al for pl, al in zip(p, a))

    def apply(self, u):
        """:math:`Π u`: reorder ``(x, t, λ)`` into layer order (rows of ``u``,
        shape (N,) or (N, k))."""
        be = self.backend
        return be.xp.take(be.asarray(u, "u", why=self._why), self.perm, axis=0)

    def inverse(self, u):
        """:math:`Π^{-1} u = Π^T u`: back from layer order to ``(x, t, λ)``."""
        be = self.backend
        return be.xp.take(be.asarray(u, "u", why=self._why), self._inverse_perm, axis=0)

    def matrix(self):
        """:math:`Π` as a sparse permutation matrix, shape (N, N); NumPy backend only."""
        _numpy_only(self.backend, "Pivot.matrix()", "use Pivot.to_dense(), or set_backend('numpy')")
        import numpy as np
        import scipy.sparse as sp

        N = self.N
        return sp.csr_matrix((np.ones(N), (np.arange(N), self.perm)), shape=(N, N))

    def to_dense(self, dtype=None):
        """:math:`Π` as a dense array of its backend (rows of the identity
        gathered by ``perm``: row ``i`` is :math:`e_{perm[i]}^T`); ``dtype``
        default float64."""
        xp = self.backend.xp
        eye = xp.eye(self.N, dtype=xp.float64 if dtype is None else dtype, device=self.perm.device)
        return xp.take(eye, self.perm, axis=0)


class BlockTridiagonal:
    """A block-tridiagonal matrix from its diagonal, sub- and super-diagonal blocks.

    Parameters
    ----------
    diag : list of array
        ``diag[l]`` of shape (n_l, n_l), ``l = 0..L-1``.
    lower : list of array
        ``lower[l]`` = block (l+1, l), shape (n_{l+1}, n_l), ``L - 1`` of them.
    upper : list of array
        ``upper[l]`` = block (l, l+1), shape (n_l, n_{l+1}), ``L - 1`` of them.

    Attributes
    ----------
    sizes : tuple of int
        ``n_l``.
    offsets : tuple of int
        Block boundaries ``(0, n_1, n_1 + n_2, ..., N)``.
    backend : Backend
        The blocks' backend (:func:`~hessinv_ref.backend.namespace_of`),
        where it computes.
    """

    def __init__(self, diag, lower, upper):
        self.diag, self.lower, self.upper = list(diag), list(lower), list(upper)
        self.backend = namespace_of(self.diag[0])
        self.sizes = tuple(d.shape[0] for d in self.diag)
        self.offsets = offsets(self.sizes)

    @property
    def shape(self):
        return (self.offsets[-1],) * 2

    def to_sparse(self):
        """The matrix in ``scipy.sparse`` CSR form; NumPy backend only.

        Built from the nonzeros of the ``3L - 2`` blocks directly (COO
        triplets), in time and memory linear in ``L``; ``scipy.sparse.bmat``
        on an ``L × L`` grid of mostly empty blocks would be quadratic."""
        _numpy_only(self.backend, "BlockTridiagonal.to_sparse()", "use to_dense() or matvec(), or set_backend('numpy')")
        import numpy as np
        import scipy.sparse as sp

        o = np.asarray(self.offsets)
        rows, cols, vals = [], [], []

        def add(blocks, r0, c0):
            """The nonzeros of ``blocks[k]`` placed at ``(r0[k], c0[k])``,
            for all blocks of one shape at once."""
            by_shape = {}
            for k, block in enumerate(blocks):
                by_shape.setdefault(block.shape, []).append(k)
            for ks in by_shape.values():
                stack = np.stack([blocks[k] for k in ks])
                k, i, j = np.nonzero(stack)
                rows.append(r0[ks][k] + i)
                cols.append(c0[ks][k] + j)
                vals.append(stack[k, i, j])

        add(self.diag, o[:-1], o[:-1])
        add(self.lower, o[1:-1], o[:-2])
        add(self.upper, o[:-2], o[1:-1])
        coo = sp.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=self.shape
        )
        return coo.tocsr()

    def to_dense(self):
        """The matrix as a dense array of its backend (for display and
        tests; :math:`O(N^2)` memory)."""
        xp = self.backend.xp
        D0 = self.diag[0]
        out = xp.zeros(self.shape, dtype=D0.dtype, device=D0.device)
        o = self.offsets
        for l, D in enumerate(self.diag):
            out[o[l]:o[l + 1], o[l]:o[l + 1]] = D
            if l + 1 < len(self.diag):
                out[o[l + 1]:o[l + 2], o[l]:o[l + 1]] = self.lower[l]
                out[o[l]:o[l + 1], o[l + 1]:o[l + 2]] = self.upper[l]
        return out

    def matvec(self, u):
        """The product with ``u`` of shape (N,) or (N, k), block row by block
        row: :math:`B_{l,l-1} u_{l-1} + B_{l,l} u_l + B_{l,l+1} u_{l+1}`."""
        be = self.backend
        u = be.asarray(u, "u", why=f"the blocks are arrays of the {be.name!r} backend")
        o, L = self.offsets, len(self.diag)
        rows = []
        for l in range(L):
            y = self.diag[l] @ u[o[l]:o[l + 1], ...]
            if l > 0:
                y = y + self.lower[l - 1] @ u[o[l - 1]:o[l], ...]
            if l + 1 < L:
                y = y + self.upper[l] @ u[o[l + 1]:o[l + 2], ...]
            rows.append(y)
        return be.xp.concat(rows)


def pivoted_blocks(blocks, damping):
    r"""The blocks :math:`B_{l,l}, B_{l,l-1}, B_{l,l+1}` of :math:`K'` from the
    per-layer :class:`~hessinv_ref.curvature.LayerBlocks` (in their dtype,
    on their device).

    Returns
    -------
    BlockTridiagonal
    """
    xp = namespace_of(blocks[0].Hxx).xp
    L = len(blocks)
    dtype, device = blocks[0].Hxx.dtype, blocks[0].Hxx.device
    p = [blk.Jx.shape[1] for blk in blocks]
    a = [blk.Jz.shape[0] for blk in blocks]
    eyes = {}

    def eye(n):  # shared, never written: the layers of a chain repeat sizes
        if n not in eyes:
            eyes[n] = xp.eye(n, dtype=dtype, device=device)
        return eyes[n]

    def zeros(m, n):
        return xp.zeros((m, n), dtype=dtype, device=device)

    diag, lower, upper = [], [], []
    for l in range(L):
        blk = blocks[l]
        nxt = blocks[l + 1] if l + 1 < L else None
        pl, al = p[l], a[l]
        # B_{l,l}: rows (x_l, t_l, λ_l) by columns (x_l, t_l, λ_l); basic
        # slices of a fresh array only
        Bll = zeros(pl + 2 * al, pl + 2 * al)
        Bll[:pl, :pl] = blk.Hxx + damping * eye(pl)
        Bll[:pl, pl + al:] = blk.Jx.T
        Bll[pl:pl + al, :pl] = -blk.Jx
        Bll[pl:pl + al, pl:pl + al] = eye(al)
        if nxt is not None:
            Bll[pl + al:, pl:pl + al] = -nxt.Hzz
        Bll[pl + al:, pl + al:] = eye(al)
        diag.append(Bll)
        if nxt is None:
            continue
        pn, an = p[l + 1], a[l + 1]
        # B_{l+1,l}: layer l+1's equations reach back to t_l
        Blow = zeros(pn + 2 * an, pl + 2 * al)
        Blow[:pn, pl:pl + al] = nxt.Hxz
        Blow[pn:pn + an, pl:pl + al] = -nxt.Jz
        lower.append(Blow)
        # B_{l,l+1}: the λ_l equation reaches forward to x_{l+1} and λ_{l+1}
        Bup = zeros(pl + 2 * al, pn + 2 * an)
        Bup[pl + al:, :pn] = -nxt.Hxz.T
        Bup[pl + al:, pn + an:] = -nxt.Jz.T
        upper.append(Bup)
    return BlockTridiagonal(diag, lower, upper)


class LiftedSystem:
    r"""The lifted system of one point and damping: :math:`K`, :math:`Π`, :math:`K'`.

    Parameters
    ----------
    blocks : sequence of LayerBlocks
        Per-layer blocks, e.g. ``Curvature(...).blocks``.
    damping : float
        :math:`ε`.

    Attributes
    ----------
    Pi : Pivot
        The permutation :math:`Π`.
    backend : Backend
        The blocks' backend, where everything is computed.
    K_pivoted : BlockTridiagonal
        :math:`K' = Π K Π^T`, built directly from the blocks.

    Examples
    --------
    >>> from hessinv_ref import Curvature
    >>> from hessinv_ref.testing import random_problem
    >>> from hessinv_ref.solvers.lifted import LiftedSystem
    >>> curv = Curvature(*random_problem(depth=3, width=2, batch=1, seed=0))
    >>> lifted = LiftedSystem(curv.blocks, damping=0.1)
    >>> K = lifted.K.toarray()  # scipy.sparse: NumPy backend only
    >>> import numpy as np
    >>> perm = lifted.Pi.perm
    >>> np.allclose(K[perm][:, perm], lifted.K_pivoted.to_dense())
    True
    """

    def __init__(self, blocks, damping):
        self.blocks = tuple(blocks)
        self.damping = float(damping)
        self.dtype = self.blocks[0].Hxx.dtype
        self.poly = HessianPolynomial(self.blocks)
        self.backend = self.poly.backend
        self.p, self.a = self.poly.p, self.poly.a[1:]
        self.Pi = Pivot(self.p, self.a, backend=self.backend)
        self.K_pivoted = pivoted_blocks(self.blocks, self.damping)

    @property
    def P(self):
        return self.poly.P

    @property
    def K(self):
        """:math:`K` in ``(x, t, λ)`` order, built from the sparse factors of
        :class:`~hessinv_ref.polynomial.HessianPolynomial` (CSR, shape (N, N));
        for display, NumPy backend only."""
        _numpy_only(self.backend, "LiftedSystem.K", "use K_pivoted.to_dense(), or set_backend('numpy')")
        import scipy.sparse as sp

        poly, eps = self.poly, self.damping
        Pd, Hxz, Hzz, M, Dx = poly.P_down, poly.Hxz, poly.Hzz, poly.M, poly.Dx
        return sp.bmat(
            [
                [poly.Hxx + eps * sp.identity(self.P), Hxz @ Pd, Dx.T],
                [-Dx, M, None],
                [-(Pd.T @ Hxz.T), -(Pd.T @ Hzz @ Pd), M.T],
            ],
            format="csr",
        )

    def rhs(self, g):
        r"""The pivoted right-hand side :math:`Π [g; 0; 0]`; ``g`` (P,) or
        (P, k), of the blocks' backend, cast to their dtype."""
        be = self.backend
        g = be.asarray(g, "g", dtype=self.dtype, why=f"the blocks are arrays of the {be.name!r} backend")
        zeros = be.xp.zeros((self.Pi.N - self.P,) + tuple(g.shape[1:]), dtype=g.dtype, device=g.device)
        return self.Pi.apply(be.xp.concat([g, zeros]))

    def unpivot(self, u):
        """Split a pivoted solution ``u`` into ``(x, t, λ)``."""
        w = self.Pi.inverse(u)
        P, A = self.P, sum(self.a)
        return w[:P, ...], w[P:P + A, ...], w[P + A:, ...]
