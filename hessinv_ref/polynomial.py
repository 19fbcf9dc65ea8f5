r"""The Hessian as a matrix polynomial in :math:`M^{-1}` (:ref:`notation §4 <notation-4>`).

.. math::

    H = H_{xx} + H_{xz} P_{\downarrow} M^{-1} D_x
        + D_x^T M^{-T} P_{\downarrow}^T H_{xz}^T
        + D_x^T M^{-T} P_{\downarrow}^T H_{zz} P_{\downarrow} M^{-1} D_x

:class:`HessianPolynomial` holds the per-layer blocks and applies the
polynomial to vectors by block substitution, which is where the linear cost
comes from, on any array backend.  For display it also exposes every factor
as a ``scipy.sparse`` matrix (NumPy backend only) or as a dense array (any
backend).

Index spaces (``L`` layers, ``a_l`` activation sizes, ``p_l`` parameter sizes):

* parameters ``x``: length ``P = Σ_{l=1}^L p_l``;
* tangents ``t = (t_1..t_L)`` and adjoints ``λ``: length ``A = Σ_{l=1}^L a_l``;
* layer inputs ``(z_0..z_{L-1})``: length ``A_in = Σ_{l=0}^{L-1} a_l``.
"""

from __future__ import annotations

from functools import cached_property
from .backend import BackendNotSupportedError, namespace_of
from .layout import BlockLayout

__all__ = ["HessianPolynomial"]


def _sparse(be):
    """``scipy.sparse``, for the display-only factors; NumPy backend (``be``) only."""
    if be.name != "numpy":
        raise BackendNotSupportedError(
            "the sparse factors of HessianPolynomial (scipy.sparse, for display)", be.name,
            "use dense_factors() or to_dense() for display, matvec(), terms(), tangent(), "
            "solve_M() or solve_MT() for products (every backend), or set_backend('numpy')",
        )
    import scipy.sparse as sp

    return sp


class HessianPolynomial:
    """The structured factors of the Hessian of a chain.

    Parameters
    ----------
    blocks : sequence of LayerBlocks
        ``blocks[l - 1]`` holds layer ``l``'s ``Jz, Jx, Hxx, Hxz, Hzz``
        (see :class:`hessinv_ref.point.LayerBlocks`).
    layout : BlockLayout, optional
        The chain's block sizes (a point's ``layout``); read from the
        blocks' shapes when not given.

    Attributes
    ----------
    L : int
        Number of layers.
    p : tuple of int
        ``(p_1..p_L)``.
    a : tuple of int
        ``(a_0..a_L)``: note ``a[0]``, the input, so ``t_l`` has length ``a[l]``.
    x_offsets, t_offsets, in_offsets : tuple of int
        Block boundaries, length ``L + 1``: layer ``l``'s slice of ``x`` is
        ``x_offsets[l-1]:x_offsets[l]``, of ``t`` and ``λ`` ``t_offsets[l-1]:t_offsets[l]``,
        of the layer-input space (``z_{l-1}``) ``in_offsets[l-1]:in_offsets[l]``.
    dtype : dtype
        The blocks' dtype; vectors are cast to it.
    backend : Backend
        The blocks' backend (:func:`~hessinv_ref.backend.namespace_of`):
        everything is computed there, and vectors must belong to it.

    The sparse factors (``M``, ``Dx``, ``P_down``, ``Hxx``, ``Hxz``,
    ``Hzz``) are for display, built on first access and cached; they need
    the NumPy backend and raise
    :class:`~hessinv_ref.backend.BackendNotSupportedError` elsewhere.
    :meth:`dense_factors` and :meth:`to_dense` give the same matrices dense,
    on every backend.
    """

    def __init__(self, blocks, layout=None):
        self.blocks = tuple(blocks)
        self.layout = BlockLayout.of_blocks(self.blocks) if layout is None else layout
        self.L = self.layout.L
        self.dtype = self.blocks[0].Hxx.dtype
        self.backend = namespace_of(self.blocks[0].Hxx)
        self.xp = self.backend.xp
        self._why = f"the blocks are arrays of the {self.backend.name!r} backend"  # for asarray's message
        self.p, self.a = self.layout.p, self.layout.a
        self.x_offsets = self.layout.x_offsets
        self.t_offsets = self.layout.t_offsets
        self.in_offsets = self.layout.in_offsets

    @property
    def P(self):
        """Number of parameters ``P = Σ p_l``."""
        return self.x_offsets[-1]

    def _check(self, name, v, n):
        """``v`` as an array of the blocks' backend in :attr:`dtype`, of shape
        (n,) or (n, k)."""
        v = self.backend.asarray(v, name, dtype=self.dtype, why=self._why)
        if v.ndim not in (1, 2) or v.shape[0] != n:
            raise ValueError(f"{name}: expected shape ({n},) or ({n}, k), got {v.shape}")
        return v

    def _zeros(self, n, like):
        """Zeros of shape (n,) + like.shape[1:], like ``like``."""
        return self.xp.zeros((n,) + tuple(like.shape[1:]), dtype=like.dtype, device=like.device)

    # -- the factors as sparse matrices --------------------------------------

    @cached_property
    def M(self):
        r"""Block unit-lower-bidiagonal :math:`M`, shape (A, A):
        identity blocks on the diagonal, :math:`-J_{z,l}` at block (l, l-1)."""
        sp = _sparse(self.backend)
        L = self.L
        grid = [[None] * L for _ in range(L)]
        for l in range(1, L + 1):
            grid[l - 1][l - 1] = sp.identity(self.a[l], format="csr")
            if l >= 2:
                grid[l - 1][l - 2] = sp.csr_matrix(-self.blocks[l - 1].Jz)
        return sp.bmat(grid, format="csr")

    @cached_property
    def Dx(self):
        r""":math:`D_x = \mathrm{blockdiag}(J_{x,1}..J_{x,L})`, shape (A, P)."""
        return _sparse(self.backend).block_diag([blk.Jx for blk in self.blocks], format="csr")

    @cached_property
    def P_down(self):
        r"""Block down-shift :math:`(P_{\downarrow} t)_l = t_{l-1}`, :math:`t_0 = 0`;
        shape (A_in, A)."""
        sp = _sparse(self.backend)
        L = self.L
        grid = [[None] * L for _ in range(L)]
        for l in range(1, L + 1):
            # zero block that fixes the size of the row block l (input z_{l-1})
            grid[l - 1][l - 1] = sp.csr_matrix((self.a[l - 1], self.a[l]))
            if l >= 2:
                grid[l - 1][l - 2] = sp.identity(self.a[l - 1], format="csr")
        return sp.bmat(grid, format="csr")

    @cached_property
    def Hxx(self):
        r""":math:`\mathrm{blockdiag}(H_{xx,l})`, shape (P, P)."""
        return _sparse(self.backend).block_diag([blk.Hxx for blk in self.blocks], format="csr")

    @cached_property
    def Hxz(self):
        r""":math:`\mathrm{blockdiag}(H_{xz,l})`, shape (P, A_in)."""
        return _sparse(self.backend).block_diag([blk.Hxz for blk in self.blocks], format="csr")

    @cached_property
    def Hzz(self):
        r""":math:`\mathrm{blockdiag}(H_{zz,l})`, shape (A_in, A_in)."""
        return _sparse(self.backend).block_diag([blk.Hzz for blk in self.blocks], format="csr")

    # -- block substitution ----------------------------------------------------

    def solve_M(self, u):
        r"""Forward substitution :math:`t = M^{-1} u`: :math:`t_l = u_l + J_{z,l} t_{l-1}`.

        ``u`` of shape (A,) or (A, k).  This *is* a forward pass."""
        u = self._check("u", u, self.t_offsets[-1])
        o = self.t_offsets
        # `...`: u is (A,) or (A, k), and the Array API wants an index per axis
        t = [u[o[0]:o[1], ...]]  # t_1 = u_1 (t_0 = 0)
        for l in range(2, self.L + 1):
            t.append(u[o[l - 1]:o[l], ...] + self.blocks[l - 1].Jz @ t[-1])
        return self.xp.concat(t)

    def solve_MT(self, r):
        r"""Backward substitution :math:`λ = M^{-T} r`:
        :math:`λ_l = r_l + J_{z,l+1}^T λ_{l+1}`.  This *is* a backward pass."""
        r = self._check("r", r, self.t_offsets[-1])
        o, L = self.t_offsets, self.L
        lam = [None] * L
        lam[L - 1] = r[o[L - 1]:o[L], ...]  # λ_L = r_L
        for l in range(L - 1, 0, -1):
            lam[l - 1] = r[o[l - 1]:o[l], ...] + self.blocks[l].Jz.T @ lam[l]
        return self.xp.concat(lam)

    def _apply_blockdiag(self, name, v, col_off, transpose=False):
        """Apply ``blockdiag(blk.<name>)`` (or its transpose) to ``v``."""
        out = []
        for l, blk in enumerate(self.blocks):
            m = getattr(blk, name)
            m = m.T if transpose else m
            out.append(m @ v[col_off[l]:col_off[l + 1], ...])
        return self.xp.concat(out)

    def _down(self, t):
        """:math:`P_{\\downarrow} t`: prepend ``t_0 = 0``, drop ``t_L``."""
        return self.xp.concat([self._zeros(self.a[0], t), t[: self.t_offsets[-2], ...]])

    def _up(self, w):
        """:math:`P_{\\downarrow}^T w`: drop the ``z_0`` slot, append ``0`` for ``t_L``."""
        return self.xp.concat([w[self.a[0]:, ...], self._zeros(self.a[-1], w)])

    def tangent(self, v):
        """:math:`t = M^{-1} D_x v`, the R-forward pass."""
        v = self._check("v", v, self.P)
        return self.solve_M(self._apply_blockdiag("Jx", v, self.x_offsets))

    def terms(self, v):
        r"""The four terms of :math:`Hv`, each shape like ``v``:

        ``(Hxx v, Hxz P↓ t, Dx^T M^{-T} P↓^T Hxz^T v, Dx^T M^{-T} P↓^T Hzz P↓ t)``
        with :math:`t = M^{-1} D_x v`.  Their sum is :math:`Hv`.
        """
        v = self._check("v", v, self.P)
        x_off, in_off = self.x_offsets, self.in_offsets
        t_in = self._down(self.tangent(v))
        hxx = self._apply_blockdiag("Hxx", v, x_off)
        hxz_t = self._apply_blockdiag("Hxz", t_in, in_off)
        hxz_T_v = self._apply_blockdiag("Hxz", v, x_off, transpose=True)
        hzz_t = self._apply_blockdiag("Hzz", t_in, in_off)

        def back(w):  # Dx^T M^{-T} P↓^T w: a backward pass from the layer inputs
            return self._apply_blockdiag("Jx", self.solve_MT(self._up(w)), self.t_offsets, transpose=True)

        return hxx, hxz_t, back(hxz_T_v), back(hzz_t)

    def matvec(self, v):
        """:math:`Hv` by the polynomial, ``v`` of shape (P,) or (P, k)."""
        hxx, hxz_t, hxz_T_v, hzz_t = self.terms(v)
        return hxx + hxz_t + hxz_T_v + hzz_t

    def dense_factors(self):
        r"""The six factors as dense arrays of the blocks' backend (for display
        and tests): ``(M, Dx, P_down, Hxx, Hxz, Hzz)``, the same matrices as
        the sparse properties, built block by block on every backend."""
        xp = self.xp
        dtype, device = self.dtype, self.blocks[0].Hxx.device
        xo, to, io = self.x_offsets, self.t_offsets, self.in_offsets
        A, A_in, P = to[-1], io[-1], self.P

        def zeros(m, n):
            return xp.zeros((m, n), dtype=dtype, device=device)

        M, Dx, Pd = zeros(A, A), zeros(A, P), zeros(A_in, A)
        Hxx, Hxz, Hzz = zeros(P, P), zeros(P, A_in), zeros(A_in, A_in)
        for l in range(1, self.L + 1):
            blk = self.blocks[l - 1]
            x, t, z = slice(xo[l - 1], xo[l]), slice(to[l - 1], to[l]), slice(io[l - 1], io[l])
            M[t, t] = xp.eye(self.a[l], dtype=dtype, device=device)
            Dx[t, x] = blk.Jx
            Hxx[x, x], Hxz[x, z], Hzz[z, z] = blk.Hxx, blk.Hxz, blk.Hzz
            if l >= 2:
                t_prev = slice(to[l - 2], to[l - 1])
                M[t, t_prev] = -blk.Jz
                Pd[z, t_prev] = xp.eye(self.a[l - 1], dtype=dtype, device=device)
        return M, Dx, Pd, Hxx, Hxz, Hzz

    def to_dense(self):
        """The dense Hessian from the polynomial with dense factors (for display
        and tests; ``O(A^2 P)`` memory), on the blocks' backend.

        :math:`T = M^{-1} D_x` by the block forward substitution of
        :meth:`solve_M` (``M`` is unit lower triangular: no pivoting), then
        the four terms of the polynomial."""
        M, Dx, Pd, Hxx, Hxz, Hzz = self.dense_factors()
        T = self.solve_M(Dx)
        cross = Hxz @ Pd @ T
        return Hxx + cross + cross.T + T.T @ Pd.T @ Hzz @ Pd @ T
