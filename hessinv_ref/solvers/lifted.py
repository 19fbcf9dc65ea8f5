r"""The lifted system :math:`K`, the pivot :math:`Π` and the block-tridiagonal
:math:`K' = Π K Π^T` (``math.md`` §5).

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
              0 & -H_{zz,l+1} & I \end{bmatrix},\quad
    B_{l,l-1} = \begin{bmatrix} 0 & H_{xz,l} & 0 \\ 0 & -J_{z,l} & 0 \\ 0 & 0 & 0 \end{bmatrix},\quad
    B_{l,l+1} = \begin{bmatrix} 0 & 0 & 0 \\ 0 & 0 & 0 \\
              -H_{xz,l+1}^T & 0 & -J_{z,l+1}^T \end{bmatrix}.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..polynomial import HessianPolynomial

__all__ = ["LiftedSystem", "Pivot", "BlockTridiagonal", "pivoted_blocks"]


class Pivot:
    r"""The permutation :math:`Π` from ``(x, t, λ)`` order to layer order.

    Parameters
    ----------
    p : sequence of int
        Parameter sizes ``(p_1..p_L)``.
    a : sequence of int
        Activation sizes ``(a_1..a_L)`` (the sizes of ``t_l`` and ``λ_l``).

    Attributes
    ----------
    perm : ndarray of int, shape (N,)
        ``(Π u)[i] = u[perm[i]]``, with ``N = P + 2A``.
    """

    def __init__(self, p, a):
        p, a = list(p), list(a)
        P, A = sum(p), sum(a)
        x_off = np.concatenate([[0], np.cumsum(p)]).astype(int)
        t_off = np.concatenate([[0], np.cumsum(a)]).astype(int)
        pieces = []
        for l in range(len(p)):
            pieces.append(np.arange(x_off[l], x_off[l + 1]))              # x_l
            pieces.append(P + np.arange(t_off[l], t_off[l + 1]))          # t_l
            pieces.append(P + A + np.arange(t_off[l], t_off[l + 1]))      # λ_l
        self.perm = np.concatenate(pieces)
        self.perm.flags.writeable = False
        self.block_sizes = tuple(pl + 2 * al for pl, al in zip(p, a))

    @property
    def N(self):
        return self.perm.size

    def apply(self, u):
        """:math:`Π u`: reorder ``(x, t, λ)`` into layer order (rows of ``u``)."""
        return np.asarray(u)[self.perm]

    def inverse(self, u):
        """:math:`Π^{-1} u = Π^T u`: back from layer order to ``(x, t, λ)``."""
        u = np.asarray(u)
        out = np.empty_like(u)
        out[self.perm] = u
        return out

    def matrix(self):
        """:math:`Π` as a sparse permutation matrix, shape (N, N)."""
        N = self.N
        return sp.csr_matrix((np.ones(N), (np.arange(N), self.perm)), shape=(N, N))

    def to_dense(self):
        """:math:`Π` as a dense array."""
        return self.matrix().toarray()


class BlockTridiagonal:
    """A block-tridiagonal matrix from its diagonal, sub- and super-diagonal blocks.

    Parameters
    ----------
    diag : list of ndarray
        ``diag[l]`` of shape (n_l, n_l), ``l = 0..L-1``.
    lower : list of ndarray
        ``lower[l]`` = block (l+1, l), shape (n_{l+1}, n_l), ``L - 1`` of them.
    upper : list of ndarray
        ``upper[l]`` = block (l, l+1), shape (n_l, n_{l+1}), ``L - 1`` of them.
    """

    def __init__(self, diag, lower, upper):
        self.diag, self.lower, self.upper = list(diag), list(lower), list(upper)
        self.sizes = tuple(d.shape[0] for d in self.diag)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)

    @property
    def shape(self):
        return (int(self.offsets[-1]),) * 2

    def to_sparse(self):
        """The matrix in ``scipy.sparse`` CSR form.

        Built from the nonzeros of the ``3L - 2`` blocks directly (COO
        triplets), in time and memory linear in ``L``; ``scipy.sparse.bmat``
        on an ``L × L`` grid of mostly empty blocks would be quadratic."""
        o = self.offsets
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
        """The matrix as a dense array."""
        return self.to_sparse().toarray()

    def matvec(self, u):
        """The product with ``u`` of shape (N,) or (N, k), block by block."""
        u = np.asarray(u)
        o = self.offsets
        out = np.zeros_like(u, dtype=np.float64)
        for l, D in enumerate(self.diag):
            rows = slice(o[l], o[l + 1])
            out[rows] += D @ u[rows]
            if l + 1 < len(self.diag):
                nxt = slice(o[l + 1], o[l + 2])
                out[nxt] += self.lower[l] @ u[rows]
                out[rows] += self.upper[l] @ u[nxt]
        return out


def pivoted_blocks(blocks, damping):
    r"""The blocks :math:`B_{l,l}, B_{l,l-1}, B_{l,l+1}` of :math:`K'` from the
    per-layer :class:`~hessinv_ref.curvature.LayerBlocks`.

    Returns
    -------
    BlockTridiagonal
    """
    L = len(blocks)
    p = [blk.Jx.shape[1] for blk in blocks]
    a = [blk.Jz.shape[0] for blk in blocks]
    diag, lower, upper = [], [], []
    for l in range(L):
        blk = blocks[l]
        nxt = blocks[l + 1] if l + 1 < L else None
        pl, al = p[l], a[l]
        # B_{l,l}: rows (x_l, t_l, λ_l) by columns (x_l, t_l, λ_l)
        Bll = np.zeros((pl + 2 * al, pl + 2 * al))
        Bll[:pl, :pl] = blk.Hxx
        Bll[range(pl), range(pl)] += damping  # Hxx + εI, without an εI temporary
        Bll[:pl, pl + al:] = blk.Jx.T
        Bll[pl:pl + al, :pl] = -blk.Jx
        np.fill_diagonal(Bll[pl:pl + al, pl:pl + al], 1.0)  # I
        if nxt is not None:
            Bll[pl + al:, pl:pl + al] = -nxt.Hzz
        np.fill_diagonal(Bll[pl + al:, pl + al:], 1.0)  # I
        diag.append(Bll)
        if nxt is None:
            continue
        pn, an = p[l + 1], a[l + 1]
        # B_{l+1,l}: layer l+1's equations reach back to t_l
        Blow = np.zeros((pn + 2 * an, pl + 2 * al))
        Blow[:pn, pl:pl + al] = nxt.Hxz
        Blow[pn:pn + an, pl:pl + al] = -nxt.Jz
        lower.append(Blow)
        # B_{l,l+1}: the λ_l equation reaches forward to x_{l+1} and λ_{l+1}
        Bup = np.zeros((pl + 2 * al, pn + 2 * an))
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
    K_pivoted : BlockTridiagonal
        :math:`K' = Π K Π^T`, built directly from the blocks.

    Examples
    --------
    >>> from hessinv_ref import Curvature
    >>> from hessinv_ref.testing import random_problem
    >>> from hessinv_ref.solvers.lifted import LiftedSystem
    >>> curv = Curvature(*random_problem(depth=3, width=2, batch=1, seed=0))
    >>> lifted = LiftedSystem(curv.blocks, damping=0.1)
    >>> K = lifted.K.toarray()
    >>> import numpy as np
    >>> perm = lifted.Pi.perm
    >>> np.allclose(K[perm][:, perm], lifted.K_pivoted.to_dense())
    True
    """

    def __init__(self, blocks, damping):
        self.blocks = tuple(blocks)
        self.damping = float(damping)
        self.poly = HessianPolynomial(self.blocks)
        self.p, self.a = self.poly.p, self.poly.a[1:]
        self.Pi = Pivot(self.p, self.a)
        self.K_pivoted = pivoted_blocks(self.blocks, self.damping)

    @property
    def P(self):
        return self.poly.P

    @property
    def K(self):
        """:math:`K` in ``(x, t, λ)`` order, built from the sparse factors of
        :class:`~hessinv_ref.polynomial.HessianPolynomial` (CSR, shape (N, N))."""
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
        r"""The pivoted right-hand side :math:`Π [g; 0; 0]`; ``g`` (P,) or (P, k)."""
        g = np.asarray(g, dtype=np.float64)
        zeros = np.zeros((self.Pi.N - self.P,) + g.shape[1:])
        return self.Pi.apply(np.concatenate([g, zeros]))

    def unpivot(self, u):
        """Split a pivoted solution ``u`` into ``(x, t, λ)``."""
        w = self.Pi.inverse(u)
        P, A = self.P, sum(self.a)
        return w[:P], w[P:P + A], w[P + A:]
