r"""The stable variant: LAPACK banded LU with partial pivoting on :math:`K'`.

:math:`K'` is block-tridiagonal, so its nonzeros lie in a band of
``kl`` sub- and ``ku`` super-diagonals, each at most about two layer blocks
wide.  Banded LU with row interchanges (LAPACK ``dgbtrf``/``dgbtrs``, the
routines behind ``scipy.linalg.solve_banded``) factors it in
:math:`O(N\,k_l (k_l + k_u))` time, linear in depth, and, unlike block LDU,
can pivot *across* layer blocks: the fix the paper's conclusion suggests for
the instability of unpivoted LDU.  The factorization is kept, so further
right-hand sides cost only the triangular solves.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.lapack as lapack

from ..factorization import Factorization, SingularPivotError, check_pivot
from .lifted import LiftedSystem

__all__ = ["BandedFactorization", "to_banded"]


def to_banded(A, extra_rows=0):
    """Diagonal-ordered band storage of a sparse matrix.

    Parameters
    ----------
    A : scipy.sparse matrix, shape (N, N)
    extra_rows : int
        Rows of zeros on top (``dgbtrf`` needs ``kl`` of them for fill-in).

    Returns
    -------
    ab : ndarray, shape (extra_rows + kl + ku + 1, N)
        ``ab[extra_rows + ku + i - j, j] = A[i, j]``, the layout of
        ``scipy.linalg.solve_banded``.
    kl, ku : int
        Numbers of sub- and super-diagonals.
    """
    C = A.tocoo()
    kl = int(max(0, (C.row - C.col).max(initial=0)))
    ku = int(max(0, (C.col - C.row).max(initial=0)))
    ab = np.zeros((extra_rows + kl + ku + 1, A.shape[1]))
    ab[extra_rows + ku + C.row - C.col, C.col] = C.data
    return ab, kl, ku


class BandedFactorization(Factorization):
    """Banded LU with partial pivoting of :math:`K'` (``method="banded"``).

    Attributes
    ----------
    lifted : LiftedSystem
    kl, ku : int
        Lower and upper bandwidths of :math:`K'`.
    """

    method = "banded"

    def __init__(self, curvature, damping):
        super().__init__(curvature, damping)
        self.lifted = LiftedSystem(curvature.blocks, self.damping)
        Kp = self.lifted.K_pivoted.to_sparse()
        ab, self.kl, self.ku = to_banded(Kp, extra_rows=0)
        self.ab = ab  # solve_banded's layout, kept for display and tests
        work, _, _ = to_banded(Kp, extra_rows=self.kl)
        self._lub, self._piv, info = lapack.dgbtrf(work, self.kl, self.ku)
        if info > 0:
            raise SingularPivotError("banded", None, 0.0, f"U[{info - 1}, {info - 1}] is exactly zero")
        anorm = float(abs(Kp).sum(axis=0).max())
        rcond, _ = lapack.dgbcon(self.kl, self.ku, self._lub, self._piv, anorm)
        self.pivot_rconds.append(check_pivot("banded", None, rcond, Kp.shape[0]))

    def _solve(self, G):
        r = self.lifted.rhs(G)
        u, info = lapack.dgbtrs(self._lub, self.kl, self.ku, r, self._piv)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise RuntimeError(f"banded: dgbtrs failed with info={info}")
        x, _, _ = self.lifted.unpivot(u)
        return x

    def logdet(self):
        r""":math:`\det K' = \det(H + εI)` from the diagonal of ``U`` and the
        row interchanges."""
        d = self._lub[self.kl + self.ku]
        swaps = np.count_nonzero(self._piv != np.arange(self._piv.size))
        sign = (-1.0) ** swaps * np.prod(np.sign(d))
        return float(sign), float(np.sum(np.log(np.abs(d))))

    def inertia(self):
        """Inertia from the Riccati pivots of the same point (banded LU of the
        non-symmetric :math:`K'` does not carry it)."""
        from .riccati import RiccatiFactorization

        return RiccatiFactorization(self.curvature, self.damping).inertia()
