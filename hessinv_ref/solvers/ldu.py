r"""The paper's algorithm: block LDU (block Thomas) on the pivoted :math:`K'`.

A sweep down the layers computes the Schur complements

.. math::

    S_1 = B_{1,1}, \qquad S_l = B_{l,l} - B_{l,l-1} S_{l-1}^{-1} B_{l-1,l},

so that :math:`K' = \mathcal L\, \mathrm{blockdiag}(S_l)\, \mathcal U` with
:math:`\mathcal L_{l,l-1} = B_{l,l-1} S_{l-1}^{-1}` and
:math:`\mathcal U_{l,l+1} = S_l^{-1} B_{l,l+1}`.  A solve is a forward sweep
:math:`y_l = r_l - B_{l,l-1} S_{l-1}^{-1} y_{l-1}` then a back-sweep
:math:`u_l = S_l^{-1} y_l - \mathcal U_{l,l+1} u_{l+1}`.  Each step costs
:math:`O(n_l^3)` with :math:`n_l = p_l + 2a_l`: linear in depth.

Because :math:`M` is unit triangular, :math:`\det K' = \det(H + εI)
= \prod_l \det S_l`.  The paper warns that LDU without pivoting *across*
blocks can be unstable (each :math:`S_l` is factored with partial pivoting
inside the block, but a small :math:`S_l` is not avoided); the banded route
pivots across blocks.

Each :math:`S_l` is factored and judged *equilibrated* (rows, then columns
scaled by powers of two, :class:`EquilibratedLU`): its rows of
:math:`H_{xx} + εI` grow with ``ε`` beside rows of order one, and unscaled
its condition would grow like ``ε`` even where :math:`H + εI` is perfectly
conditioned.  A scaled pivot with ``rcond < eps`` stops the elimination; the
error then says whether :math:`H + εI` is singular or this route broke down
on a nonsingular matrix (:mod:`hessinv_ref.factorization`).
"""

from __future__ import annotations

from ..backend import BackendNotSupportedError
from ..factorization import Factorization, check_pivot, equilibrate, slogdet_of_blocks
from .lifted import LiftedSystem

__all__ = ["LDUFactorization", "EquilibratedLU"]


def _scale_rows(v, R):
    """``diag(v) R`` for ``R`` of shape (n,) or (n, k)."""
    return v * R if R.ndim == 1 else v[:, None] * R


class EquilibratedLU:
    r"""LU with partial pivoting of one Schur complement, equilibrated.

    :math:`S = D_r^{-1} \tilde S D_c^{-1}` with :math:`\tilde S = D_r S D_c`
    scaled by powers of two (:func:`~hessinv_ref.factorization.equilibrate`),
    so :math:`S^{-1} R = D_c \tilde S^{-1} D_r R`.  A Schur complement of
    :math:`K'` has rows of :math:`H_{xx} + εI` (size ``ε``) beside rows of
    Jacobians and identities (size 1); the scaled :math:`\tilde S` is the
    matrix whose condition says how many digits the elimination keeps, and
    the one the pivot rule judges.  (Row scaling by powers of two can change
    the row interchanges, never the rounding of an entry.)

    Parameters
    ----------
    be : Backend
        The backend of ``S`` (the curvature's), whose LU is used.
    S : array, shape (n, n)
        Not modified.

    Attributes
    ----------
    r, c : array, shape (n,)
        The row and column scalings.
    lu : DenseLU
        The backend's LU of :math:`\tilde S`.
    rcond : float
        Reciprocal 1-norm condition estimate of :math:`\tilde S`.
    """

    def __init__(self, be, S):
        self.backend = be
        self.r, self.c = equilibrate(S)
        self.lu = be.lu(self.r[:, None] * S * self.c[None, :])
        self.rcond = self.lu.rcond

    def solve(self, R, trans=False):
        r""":math:`S^{-1} R`, or :math:`S^{-T} R = D_r \tilde S^{-T} D_c R`."""
        if trans:
            return _scale_rows(self.r, self.lu.solve(_scale_rows(self.c, R), trans=True))
        return _scale_rows(self.c, self.lu.solve(_scale_rows(self.r, R)))

    def slogdet(self):
        r""":math:`\det S = \det \tilde S / (\prod r \prod c)`: the scalings
        are positive, so only the log changes."""
        xp = self.backend.xp
        sign, logabs = self.lu.slogdet()
        return sign, logabs - float(xp.sum(xp.log(self.r)) + xp.sum(xp.log(self.c)))


def _lu_pivot(be, S, layer):
    """The equilibrated LU of one Schur complement with the pivot rule
    applied; returns ``(lu, rcond)``.

    On NumPy the LU is LAPACK ``?getrf``/``?gecon`` called directly (the
    routines behind ``scipy.linalg.lu_factor``; the Schur complements are
    small, and the wrappers' per-call validation would cost more than the
    factorizations, once per layer).  An exactly zero diagonal entry of
    ``U`` or a non-finite factor gives ``rcond = 0``, and
    :func:`check_pivot` then raises."""
    lu = EquilibratedLU(be, S)
    return lu, check_pivot("ldu", layer, lu.rcond, S.shape[0], dtype=S.dtype)


class LDUFactorization(Factorization):
    """Block LDU of :math:`K' = Π K Π^T` (``method="ldu"``).

    Each Schur complement is factored equilibrated (:class:`EquilibratedLU`),
    and its condition is judged in that form: a pivot singular to working
    precision raises :class:`~hessinv_ref.factorization.SingularPivotError`,
    whose message says whether :math:`H + εI` is singular or the elimination
    (which does not pivot across layers) broke down on a nonsingular matrix,
    and then which route factors it.

    Attributes
    ----------
    lifted : LiftedSystem
        ``K``, ``Π`` and ``K'`` for inspection.
    S : list of array
        The Schur complements :math:`S_l`, shape (n_l, n_l).
    """

    method = "ldu"

    def _factor(self):
        be = self.curvature.backend
        self.lifted = LiftedSystem(self.curvature.blocks, self.damping)
        T = self.lifted.K_pivoted
        self.S, self._lu, self._U = [], [], []
        for l in range(len(T.diag)):
            if l == 0:
                S = T.diag[0]
            else:
                U_prev = self._lu[-1].solve(T.upper[l - 1])  # S_{l-1}^{-1} B_{l-1,l}
                self._U.append(U_prev)
                S = T.diag[l] - T.lower[l - 1] @ U_prev
            self.S.append(S)
            lu, rcond = _lu_pivot(be, S, layer=l + 1)
            self._lu.append(lu)
            self.pivot_rconds.append(rcond)

    def _solve(self, G):
        T = self.lifted.K_pivoted
        o = T.offsets
        r = self.lifted.rhs(G)
        L = len(T.diag)
        c = []  # c_l = S_l^{-1} y_l
        for l in range(L):
            y = r[o[l]:o[l + 1], ...]  # `...`: r is (N,) or (N, k)
            if l > 0:
                y = y - T.lower[l - 1] @ c[l - 1]
            c.append(self._lu[l].solve(y))
        u = [None] * L
        u[L - 1] = c[L - 1]
        for l in range(L - 2, -1, -1):
            u[l] = c[l] - self._U[l] @ u[l + 1]
        x, _, _ = self.lifted.unpivot(self.curvature.xp.concat(u))
        return x

    def factors(self):
        r"""The factors of :math:`K' = \mathcal L D \mathcal U` as sparse matrices.

        For display: NumPy backend only.

        Returns
        -------
        Lf, D, Uf : scipy.sparse.csr_matrix, each shape (N, N)
            Block unit lower bidiagonal, block diagonal ``blockdiag(S_l)``,
            block unit upper bidiagonal.

        Raises
        ------
        BackendNotSupportedError
            On a backend other than NumPy (``scipy.sparse`` holds NumPy
            arrays only); ``S``, the Schur complements, are there on every
            backend.
        """
        be = self.curvature.backend
        if be.name != "numpy":
            raise BackendNotSupportedError(
                "LDUFactorization.factors() (scipy.sparse, for display)", be.name,
                "inspect the Schur complements in .S, or use set_backend('numpy')",
            )
        import scipy.sparse as sp

        T = self.lifted.K_pivoted
        L = len(T.diag)
        eye = [sp.identity(n, format="csr") for n in T.sizes]
        Lg = [[None] * L for _ in range(L)]
        Ug = [[None] * L for _ in range(L)]
        for l in range(L):
            Lg[l][l] = Ug[l][l] = eye[l]
            if l > 0:
                # B_{l,l-1} S_{l-1}^{-1} = (S_{l-1}^{-T} B_{l,l-1}^T)^T
                Lg[l][l - 1] = sp.csr_matrix(self._lu[l - 1].solve(T.lower[l - 1].T, trans=True).T)
                Ug[l - 1][l] = sp.csr_matrix(self._U[l - 1])
        D = sp.block_diag(self.S, format="csr")
        return sp.bmat(Lg, format="csr"), D, sp.bmat(Ug, format="csr")

    def logdet(self):
        r""":math:`\det(H + εI) = \det K' = \prod_l \det S_l`, from the block LUs."""
        return slogdet_of_blocks(lu.slogdet() for lu in self._lu)

    def inertia(self):
        """Inertia from the Riccati pivots of the same point (the LU factors
        of the non-symmetric :math:`K'` do not carry it); built once."""
        return self._inertia_from_riccati()
