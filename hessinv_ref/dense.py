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

import warnings

import numpy as np
import scipy.linalg

from .curvature import Curvature
from .factorization import Factorization, check_pivot

__all__ = ["hessian", "hessian_from_blocks", "DenseFactorization"]


def hessian(net, params, X, y):
    """The dense Hessian of the batch-mean loss with respect to ``theta``.

    Parameters
    ----------
    net : Network
    params : list of dict or ndarray, shape (P,)
    X : ndarray, shape (B, n_in)
    y : ndarray
        Labels (B,) or targets (B, n_out).

    Returns
    -------
    ndarray, shape (P, P)
        Symmetric up to rounding, in the flat parameter layout.
    """
    return Curvature(net, params, X, y).hessian()


def hessian_from_blocks(blocks):
    """Assemble the dense Hessian from per-layer :class:`LayerBlocks`."""
    p = [blk.Jx.shape[1] for blk in blocks]
    off = np.concatenate([[0], np.cumsum(p)]).astype(int)
    P = int(off[-1])
    H = np.zeros((P, P))
    T = np.zeros((blocks[0].Jz.shape[1], P))  # T_0 = ∂z_0/∂x = 0
    for l, blk in enumerate(blocks):
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

    Solves use LAPACK LU with partial pivoting, the factorization behind
    ``scipy.linalg.solve``; ``logdet`` and ``inertia`` come from the
    eigenvalues (``scipy.linalg.eigvalsh``).  :math:`O(P^3)` time and
    :math:`O(P^2)` memory.

    Attributes
    ----------
    A : ndarray, shape (P, P)
        :math:`H + εI`.
    """

    method = "dense"

    def __init__(self, curvature, damping):
        super().__init__(curvature, damping)
        self.A = curvature.hessian() + self.damping * np.eye(self.P)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            self._lu = scipy.linalg.lu_factor(self.A, check_finite=False)
        gecon = scipy.linalg.get_lapack_funcs("gecon", (self._lu[0],))
        rcond, _ = gecon(self._lu[0], np.linalg.norm(self.A, 1), norm="1")
        if np.any(np.diag(self._lu[0]) == 0):
            rcond = 0.0
        self.pivot_rconds.append(check_pivot("dense", None, rcond, self.P))
        self._eigvals = None

    def _solve(self, G):
        return scipy.linalg.lu_solve(self._lu, G, check_finite=False)

    def eigenvalues(self):
        """Eigenvalues of :math:`H + εI`, ascending (computed once)."""
        if self._eigvals is None:
            self._eigvals = scipy.linalg.eigvalsh(self.A)
        return self._eigvals

    def logdet(self):
        """``(sign, log|det|)`` from the eigenvalues."""
        w = self.eigenvalues()
        return float(np.prod(np.sign(w))), float(np.sum(np.log(np.abs(w))))

    def inertia(self):
        """Eigenvalue sign counts; zero means ``|w| <= P eps max|w|``."""
        w = self.eigenvalues()
        tol = self.P * np.finfo(float).eps * np.max(np.abs(w))
        n_zero = int(np.count_nonzero(np.abs(w) <= tol))
        n_neg = int(np.count_nonzero(w < -tol))
        return self.P - n_zero - n_neg, n_neg, n_zero
