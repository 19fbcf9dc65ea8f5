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

The band is written straight from the blocks of :math:`K'`
(:func:`band_storage`; no sparse matrix in between), in time and memory
linear in depth.  It is *equilibrated* first: rows, then columns, scaled by
powers of two (:func:`equilibrate_blocks`) so that each has largest entry
about 1, and the scaled :math:`\tilde K = D_r K' D_c` is what ``?gbtrf``
factors.  Unscaled, :math:`K'` holds :math:`H_{xx} + εI` beside Jacobians
and identities of order one, and its condition grows like ``ε`` even where
:math:`H + εI` has condition 1.  A solve is
:math:`u = D_c \tilde K^{-1} D_r\, Π [g; 0; 0]`.

The pivot rule of :mod:`hessinv_ref.factorization`, for this route:

* ``rcond`` of :math:`\tilde K` below ``eps`` (or an exactly zero pivot of
  ``U``): the lifted matrix is singular at this precision; the constructor
  then judges whether :math:`H + εI` is.
* ``rcond`` of :math:`\tilde K` below ``sqrt(eps)``: that estimate has
  stopped saying anything about ``x``: on deep chains :math:`\tilde K` is
  worse conditioned than :math:`H + εI` by the growth of the Jacobian
  products, while the computed ``x`` stays accurate to about
  ``eps κ(H + εI)``.  So the route estimates :math:`κ_1(H + εI)` itself,
  with its own solves
  (:meth:`~hessinv_ref.factorization.Factorization.condition_estimate`: a
  few solves and R-operator products, linear in depth), and applies the
  rule to that: ``1/eps`` stops, ``1/sqrt(eps)`` warns.
"""

from __future__ import annotations

import math

# NumPy-only module (see above): it may use NumPy directly.
import numpy as np

from ..backend import check_dtype, namespace_of
from ..factorization import Factorization, SingularPivotError, check_pivot, power_of_two_reciprocal
from .lifted import LiftedSystem

__all__ = ["BandedFactorization", "band_storage", "equilibrate_blocks", "to_banded", "gbcon_1norm"]


def _placed_blocks(T):
    """``(block, first row, first column)`` for each of the ``3L - 2`` blocks
    of a :class:`~hessinv_ref.solvers.lifted.BlockTridiagonal`."""
    o = T.offsets
    for l, D in enumerate(T.diag):
        yield D, o[l], o[l]
    for l, Bl in enumerate(T.lower):  # block (l+1, l)
        yield Bl, o[l + 1], o[l]
    for l, Bu in enumerate(T.upper):  # block (l, l+1)
        yield Bu, o[l], o[l + 1]


def equilibrate_blocks(T):
    r"""Row and column scalings of :math:`K'` by powers of two, from its blocks:
    :func:`~hessinv_ref.factorization.equilibrate` of the whole matrix without
    forming it.

    Returns
    -------
    r, c : ndarray, shape (N,)
        :math:`D_r = \mathrm{diag}(r)` brings each row's largest entry to
        about 1, then :math:`D_c = \mathrm{diag}(c)` each column's of
        :math:`D_r K'`.
    """
    N = T.shape[0]
    dtype = T.diag[0].dtype
    row_max, col_max = np.zeros(N, dtype=dtype), np.zeros(N, dtype=dtype)
    for block, r0, c0 in _placed_blocks(T):
        rows = row_max[r0:r0 + block.shape[0]]  # a view: updated in place
        np.maximum(rows, np.abs(block).max(axis=1, initial=0), out=rows)
    r = power_of_two_reciprocal(row_max)
    for block, r0, c0 in _placed_blocks(T):
        m, n = block.shape
        cols = col_max[c0:c0 + n]
        np.maximum(cols, (np.abs(block) * r[r0:r0 + m, None]).max(axis=0, initial=0), out=cols)
    return r, power_of_two_reciprocal(col_max)


def band_storage(T, fill_in=False, r=None, c=None):
    """Diagonal-ordered band storage of :math:`K'` (or of :math:`D_r K' D_c`),
    written from its blocks, and its exact bandwidths.

    Parameters
    ----------
    T : BlockTridiagonal
        :math:`K'`, NumPy arrays.
    fill_in : bool
        Add ``kl`` rows of zeros on top, the room ``?gbtrf`` needs for the
        fill-in of its row interchanges (``kl`` is known once the nonzeros
        are, so the band is written once, with the room).
    r, c : ndarray, shape (N,), optional
        Row and column scalings (:func:`equilibrate_blocks`).

    Returns
    -------
    ab : ndarray, shape (e + kl + ku + 1, N), Fortran order
        ``ab[e + ku + i - j, j] = r[i] K'[i, j] c[j]`` (``e = kl`` with
        ``fill_in``, else 0), the layout of
        ``scipy.linalg.solve_banded``; of the blocks' dtype.  Fortran order
        is LAPACK's, so ``?gbtrf`` can factor it in place.
    kl, ku : int
        The numbers of sub- and super-diagonals that hold a nonzero.

    One pass over the nonzeros of the ``3L - 2`` blocks: time and memory
    linear in depth.
    """
    entries, kl, ku = [], 0, 0
    for block, r0, c0 in _placed_blocks(T):
        j, i = np.nonzero(block.T)  # column by column: the order of the Fortran band
        if i.size:
            rows, cols = r0 + i, c0 + j
            d = rows - cols  # the diagonal of each nonzero: row - column
            kl, ku = max(kl, int(d.max())), max(ku, int(-d.min()))
            values = block[i, j]
            if r is not None:
                values = r[rows] * values * c[cols]  # powers of two: exact
            entries.append((d, cols, values))
    N = T.shape[0]
    e = kl if fill_in else 0
    ab = np.zeros((e + kl + ku + 1, N), dtype=T.diag[0].dtype, order="F")
    for d, cols, values in entries:
        ab[e + ku + d, cols] = values
    return ab, kl, ku


def to_banded(A, extra_rows=0):
    """Diagonal-ordered band storage of a ``scipy.sparse`` matrix (for
    display and for comparing with LAPACK; the route itself uses
    :func:`band_storage`).

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


def _scale_rows(v, R):
    """``diag(v) R`` for ``R`` of shape (N,) or (N, k)."""
    return v * R if R.ndim == 1 else v[:, None] * R


def _band_routines(a):
    """LAPACK's ``(?gbtrf, ?gbtrs)`` for the dtype of ``a`` (``d`` or ``s``),
    from the backend of ``a``; raises
    :class:`~hessinv_ref.backend.BackendNotSupportedError` off NumPy."""
    lapack = namespace_of(a).solve_banded()
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
    r"""Banded LU with partial pivoting of the equilibrated :math:`K'`
    (``method="banded"``).

    NumPy backend only (see the module notes).

    Attributes
    ----------
    lifted : LiftedSystem
    kl, ku : int
        Lower and upper bandwidths of :math:`K'`.
    r, c : ndarray, shape (N,)
        The row and column scalings of :math:`\tilde K = D_r K' D_c`.
    lifted_condition : float
        The condition estimate of :math:`\tilde K` (LAPACK ``?gbcon``'s
        estimator, :func:`gbcon_1norm`).
    pivot_condition : float
        ``lifted_condition`` when it is at most ``1/sqrt(eps)``; above that,
        the estimate of :math:`κ_1(H + εI)` from this factorization's own
        solves (:meth:`~hessinv_ref.factorization.Factorization.condition_estimate`),
        which is what bounds the error of ``x``.

    Raises
    ------
    BackendNotSupportedError
        On a backend other than NumPy.
    SingularPivotError
        :math:`\tilde K` is singular to working precision; the message says
        whether :math:`H + εI` is, or only the lifted system (then
        ``riccati`` factors it).
    """

    method = "banded"

    def _factor(self):
        self.curvature.backend.solve_banded()  # NumPy only: refuse before any work elsewhere
        self.lifted = LiftedSystem(self.curvature.blocks, self.damping)
        T = self.lifted.K_pivoted
        self.r, self.c = equilibrate_blocks(T)
        # the scaled band with gbtrf's fill-in rows on top, in Fortran
        # order: factored in place, no copy (it is ours)
        work, self.kl, self.ku = band_storage(T, fill_in=True, r=self.r, c=self.c)
        anorm = float(np.abs(work).sum(axis=0).max(initial=0))  # a band column is a column of K~
        gbtrf, self._gbtrs = _band_routines(work)
        self._lub, self._piv, info = gbtrf(work, self.kl, self.ku, overwrite_ab=1)
        if info > 0:
            raise SingularPivotError("banded", None, 0.0, f"U[{info - 1}, {info - 1}] is exactly zero",
                                     precision=check_dtype(work.dtype))
        rcond = gbcon_1norm(self._lub, self._piv, self.kl, self.ku, anorm)
        self.lifted_condition = 1.0 / rcond if rcond > 0 else math.inf
        eps = float(np.finfo(work.dtype).eps)
        if rcond < eps:  # the lifted matrix is singular at this precision: judged by the constructor
            raise SingularPivotError("banded", None, rcond, "the equilibrated K' is singular at this precision",
                                     precision=check_dtype(work.dtype))
        n = T.shape[0]
        if rcond < math.sqrt(eps):
            # An upper bound that has stopped being informative: K~ is worse
            # conditioned than H + εI by the growth of the Jacobian chain
            # (measured: up to 1e4 times on deep float32 chains whose x is
            # accurate to eps κ).  What bounds the error of x is the
            # condition of H + εI itself: estimated with these solves.
            rcond, n = 1.0 / self.condition_estimate(), self.P
        self.pivot_rconds.append(check_pivot("banded", None, rcond, n, dtype=work.dtype))

    @property
    def ab(self):
        """:math:`K'` (unscaled) in ``scipy.linalg.solve_banded``'s layout,
        shape (kl + ku + 1, N): written from the blocks on each access, for
        display and tests (the factorization keeps only its LU)."""
        return band_storage(self.lifted.K_pivoted)[0]

    def _solve(self, G):
        # K' u = r  <=>  K~ (D_c^{-1} u) = D_r r
        r = _scale_rows(self.r, self.lifted.rhs(G))
        v, info = self._gbtrs(self._lub, self.kl, self.ku, r, self._piv)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise RuntimeError(f"banded: gbtrs failed with info={info}")
        x, _, _ = self.lifted.unpivot(_scale_rows(self.c, v))
        return x

    def logdet(self):
        r""":math:`\det K' = \det(H + εI) = \det \tilde K / (\prod r \prod c)`,
        from the diagonal of ``U``, the row interchanges and the (positive)
        scalings."""
        d = self._lub[self.kl + self.ku]
        swaps = np.count_nonzero(self._piv != np.arange(self._piv.size))
        sign = (-1.0) ** swaps * np.prod(np.sign(d))
        logabs = np.sum(np.log(np.abs(d))) - np.sum(np.log(self.r)) - np.sum(np.log(self.c))
        return float(sign), float(logabs)

    def inertia(self):
        """Inertia from the Riccati pivots of the same point (the LU factors
        of the non-symmetric :math:`K'` do not carry it); built once."""
        return self._inertia_from_riccati()
