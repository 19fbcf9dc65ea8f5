r"""The dense oracle: the full ``P × P`` Hessian, assembled exactly.

Everything structured in this library is checked against this module.  The
assembly follows ``math.md`` §4 one layer at a time: with
:math:`T_l = ∂z_l/∂x` (shape ``a_l × P``), the R-forward recursion on
matrices :math:`T_l = J_{z,l} T_{l-1} + J_{x,l} E_l` (:math:`E_l` selects
block ``l``, :math:`T_0 = 0`) gives

.. math::

    H = \sum_l \Bigl( E_l^T H_{xx,l} E_l + E_l^T H_{xz,l} T_{l-1}
        + T_{l-1}^T H_{xz,l}^T E_l + T_{l-1}^T H_{zz,l} T_{l-1} \Bigr).

This costs :math:`O(L^3)` time and :math:`O(L^2)` memory for fixed widths:
the very cost the structured solvers avoid.
"""

from __future__ import annotations

from itertools import accumulate

from .backend import get_backend, xp
from .curvature import Curvature
from .factorization import Factorization, check_pivot

__all__ = ["hessian", "hessian_from_blocks", "DenseFactorization"]


def hessian(net, params, X, y):
    """The dense Hessian of the batch-mean loss with respect to ``theta``.

    Parameters
    ----------
    net : Network
    params : list of dict or array, shape (P,)
    X : array, shape (B, n_in)
    y : array
        Labels (B,) or targets (B, n_out).

    Returns
    -------
    array, shape (P, P)
        Symmetric up to rounding, in the flat parameter layout; of the
        active backend, in the parameters' dtype.
    """
    return Curvature(net, params, X, y).hessian()


def hessian_from_blocks(blocks):
    """Assemble the dense Hessian from per-layer :class:`LayerBlocks`
    (shape (P, P), in the blocks' dtype, on their device)."""
    off = tuple(accumulate((blk.Jx.shape[1] for blk in blocks), initial=0))
    P = off[-1]
    dtype, device = blocks[0].Hxx.dtype, blocks[0].Hxx.device
    H = xp.zeros((P, P), dtype=dtype, device=device)
    T = xp.zeros((blocks[0].Jz.shape[1], P), dtype=dtype, device=device)  # T_0 = ∂z_0/∂x = 0
    for l, blk in enumerate(blocks):
        # every write is to a basic slice of H or T themselves (fresh arrays)
        rows = slice(off[l], off[l + 1])
        cross = blk.Hxz @ T
        H[rows, :] += cross
        H[:, rows] += cross.T
        H += T.T @ blk.Hzz @ T
        H[rows, rows] += blk.Hxx
        T = blk.Jz @ T
        T[:, rows] += blk.Jx
    return H


class DenseFactorization(Factorization):
    r"""The oracle route (``method="dense"``): form :math:`H + εI` and factor it.

    Solves use LU with partial pivoting (:meth:`~hessinv_ref.backend.Backend.lu`:
    LAPACK ``?getrf`` on NumPy, the factorization behind
    ``scipy.linalg.solve``); ``logdet`` and ``inertia`` come from the
    eigenvalues (:meth:`~hessinv_ref.backend.Backend.eigvalsh`).
    :math:`O(P^3)` time and :math:`O(P^2)` memory.

    Attributes
    ----------
    A : array, shape (P, P)
        :math:`H + εI`.
    """

    method = "dense"

    def _factor(self):
        be = get_backend()
        H = self.curvature.hessian()
        self.A = H + self.damping * be.xp.eye(self.P, dtype=H.dtype, device=H.device)
        self._eigvals = None
        # rcond is 0 for an exactly zero pivot of U (check_pivot then raises).
        # The pivot is H + εI itself: a singular one is the matrix's fault,
        # which the constructor's judgement records (cause="matrix").
        self._lu = be.lu(self.A)
        self.pivot_rconds.append(check_pivot("dense", None, self._lu.rcond, self.P, dtype=self.A.dtype))

    def condition_estimate(self):
        """:math:`κ_1(H + εI)` from the LU's own estimate (``1/rcond``)."""
        return 1.0 / self._lu.rcond

    def _solve(self, G):
        return self._lu.solve(G)

    def eigenvalues(self):
        """Eigenvalues of :math:`H + εI`, ascending (computed once; read-only on NumPy)."""
        if self._eigvals is None:
            be = get_backend()
            self._eigvals = be.read_only(be.eigvalsh(self.A))
        return self._eigvals

    def logdet(self):
        """``(sign, log|det|)`` from the eigenvalues, as floats."""
        w = self.eigenvalues()
        return float(xp.prod(xp.sign(w))), float(xp.sum(xp.log(xp.abs(w))))

    def inertia(self):
        """Eigenvalue sign counts; zero means ``|w| <= P eps max|w|``, with
        ``eps`` of the working precision."""
        w = self.eigenvalues()
        tol = self.P * float(xp.finfo(w.dtype).eps) * float(xp.max(xp.abs(w)))
        n_zero = int(xp.count_nonzero(xp.abs(w) <= tol))
        n_neg = int(xp.count_nonzero(w < -tol))
        return self.P - n_zero - n_neg, n_neg, n_zero
