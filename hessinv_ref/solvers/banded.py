r"""The stable variant: LAPACK banded LU with partial pivoting on :math:`K'`.

:math:`K'` is block-tridiagonal, so its nonzeros lie in a band of
``kl`` sub- and ``ku`` super-diagonals, each at most about two layer blocks
wide.  Banded LU with row interchanges (LAPACK ``dgbtrf``/``dgbtrs``, the
routines behind ``scipy.linalg.solve_banded``) factors it in
:math:`O(N\,k_l (k_l + k_u))` time, linear in depth, and, unlike block LDU,
can pivot *across* layer blocks: the fix the paper's conclusion suggests for
the instability of unpivoted LDU.  The factorization is kept, so further
right-hand sides cost only the triangular solves.

This route exists on the NumPy backend only: LAPACK's band LU has no
counterpart in the Array API or in CuPy.  Elsewhere the constructor raises
:class:`~hessinv_ref.backend.BackendNotSupportedError` (from
:meth:`~hessinv_ref.backend.Backend.solve_banded`), and ``riccati`` or
``ldu`` are the exact routes.  In ``float32`` the single-precision routines
(``sgbtrf``/``sgbtrs``) are used.
"""

from __future__ import annotations

# NumPy-only module (see above): it may use NumPy directly.
import numpy as np

from ..backend import get_backend
from ..factorization import Factorization, SingularPivotError, check_pivot
from .lifted import LiftedSystem

__all__ = ["BandedFactorization", "to_banded", "gbcon_1norm"]


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
        ``scipy.linalg.solve_banded``; of ``A``'s dtype.
    kl, ku : int
        Numbers of sub- and super-diagonals.
    """
    C = A.tocoo()
    kl = int(max(0, (C.row - C.col).max(initial=0)))
    ku = int(max(0, (C.col - C.row).max(initial=0)))
    ab = np.zeros((extra_rows + kl + ku + 1, A.shape[1]), dtype=A.dtype)
    ab[extra_rows + ku + C.row - C.col, C.col] = C.data
    return ab, kl, ku


def _band_routines(a):
    """LAPACK's ``(?gbtrf, ?gbtrs)`` for the dtype of ``a`` (``d`` or ``s``);
    raises :class:`~hessinv_ref.backend.BackendNotSupportedError` off NumPy."""
    lapack = get_backend().solve_banded()
    return lapack.get_lapack_funcs(("gbtrf", "gbtrs"), (a,))


def gbcon_1norm(lub, piv, kl, ku, anorm):
    r"""Reciprocal condition estimate :math:`1 / (\|A\|_1 \, \text{est}\|A^{-1}\|_1)`
    from the banded LU of ``dgbtrf``: LAPACK ``dgbcon``'s algorithm.

    ``dgbcon`` drives Hager's estimator as refined by Higham (LAPACK
    ``dlacn2``, at most five iterations) with triangular solves that rescale
    the whole vector whenever a step could overflow; on the strongly graded
    pivots of a deep chain those rescalings make it quadratic in ``N``.
    Here the same estimator is driven by ``dgbtrs`` solves with
    :math:`A` and :math:`A^T` (the same elimination, without rescaling):
    linear in ``N``.  The estimate is the same to rounding unless a solve
    overflows, in which case it is 0 (singular), as ``dgbcon`` reports.
    Works in the precision of ``lub`` (``?gbtrs``).
    """
    n = lub.shape[1]
    if n == 0:
        return 1.0
    if anorm == 0 or not np.isfinite(anorm):
        return 0.0
    _, gbtrs = _band_routines(lub)
    dtype = lub.dtype

    def solve(x, trans):
        y, info = gbtrs(lub, kl, ku, np.asarray(x, dtype=dtype)[:, None], piv, trans=trans)
        return y[:, 0]

    def sign(x):
        return np.where(x >= 0, 1.0, -1.0)

    with np.errstate(all="ignore"):
        x = solve(np.full(n, 1.0 / n), 0)  # kase 1: A^{-1} x
        if n == 1:
            est = abs(x[0])
        else:
            est = np.abs(x).sum()
            s = sign(x)
            z = solve(s, 1)  # kase 2: A^{-T} x
            j, it = int(np.argmax(np.abs(z))), 2
            while True:
                x = solve(np.eye(1, n, j)[0], 0)
                est_old, est = est, np.abs(x).sum()
                s_new = sign(x)
                if np.array_equal(s_new, s) or est <= est_old:
                    break  # repeated sign vector, or cycling: converged
                s = s_new
                z = solve(s, 1)
                j_last, j = j, int(np.argmax(np.abs(z)))
                if z[j_last] != abs(z[j]) and it < 5:
                    it += 1
                    continue
                break
            alt = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * (1.0 + np.arange(n) / (n - 1))
            temp = 2.0 * np.abs(solve(alt, 0)).sum() / (3 * n)
            est = max(est, temp)
        if not np.isfinite(est) or est == 0:
            return 0.0
        return float((1.0 / est) / anorm)


class BandedFactorization(Factorization):
    """Banded LU with partial pivoting of :math:`K'` (``method="banded"``).

    NumPy backend only (see the module notes).

    Attributes
    ----------
    lifted : LiftedSystem
    kl, ku : int
        Lower and upper bandwidths of :math:`K'`.

    Raises
    ------
    BackendNotSupportedError
        On a backend other than NumPy.
    """

    method = "banded"

    def __init__(self, curvature, damping):
        super().__init__(curvature, damping)
        get_backend().solve_banded()  # NumPy only: refuse before any work elsewhere
        self.lifted = LiftedSystem(curvature.blocks, self.damping)
        Kp = self.lifted.K_pivoted.to_sparse()
        ab, self.kl, self.ku = to_banded(Kp, extra_rows=0)
        self.ab = ab  # solve_banded's layout, kept for display and tests
        work = np.vstack([np.zeros((self.kl, ab.shape[1]), dtype=ab.dtype), ab])  # gbtrf's fill-in rows on top
        gbtrf, self._gbtrs = _band_routines(work)
        self._lub, self._piv, info = gbtrf(work, self.kl, self.ku)
        if info > 0:
            raise SingularPivotError("banded", None, 0.0, f"U[{info - 1}, {info - 1}] is exactly zero")
        anorm = float(abs(Kp).sum(axis=0).max())
        rcond = gbcon_1norm(self._lub, self._piv, self.kl, self.ku, anorm)
        self.pivot_rconds.append(check_pivot("banded", None, rcond, Kp.shape[0], dtype=ab.dtype))

    def _solve(self, G):
        r = self.lifted.rhs(G)
        u, info = self._gbtrs(self._lub, self.kl, self.ku, r, self._piv)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise RuntimeError(f"banded: gbtrs failed with info={info}")
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
        """Inertia from the Riccati pivots of the same point (the LU factors
        of the non-symmetric :math:`K'` do not carry it); built once."""
        return self._inertia_from_riccati()
