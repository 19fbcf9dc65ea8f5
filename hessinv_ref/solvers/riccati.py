r"""The same solve as a dual network: the Riccati (stagewise Newton) sweep.

:math:`(H + εI) x = g` is the stationarity condition of the quadratic program
(``math.md`` §6)

.. math::

    \min_x \sum_l \tfrac12 \begin{bmatrix} t_{l-1} \\ x_l \end{bmatrix}^T
    \begin{bmatrix} H_{zz,l} & H_{xz,l}^T \\ H_{xz,l} & H_{xx,l} + εI \end{bmatrix}
    \begin{bmatrix} t_{l-1} \\ x_l \end{bmatrix} - g_l^T x_l
    \quad\text{s.t.}\quad t_l = J_{z,l} t_{l-1} + J_{x,l} x_l,\ t_0 = 0.

A backward sweep carries a quadratic cost-to-go
:math:`\tfrac12 t^T S_l t + s_l^T t` from :math:`S_L = 0, s_L = 0`:

.. math::

    Q_{xx} &= H_{xx,l} + εI + J_{x,l}^T S_l J_{x,l}, &
    Q_{xz} &= H_{xz,l} + J_{x,l}^T S_l J_{z,l}, &
    Q_{zz} &= H_{zz,l} + J_{z,l}^T S_l J_{z,l},\\
    q_x &= -g_l + J_{x,l}^T s_l, & q_z &= J_{z,l}^T s_l, \\
    K_l &= -Q_{xx}^{-1} Q_{xz}, & k_l &= -Q_{xx}^{-1} q_x, \\
    S_{l-1} &= Q_{zz} + Q_{xz}^T K_l, & s_{l-1} &= q_z + Q_{xz}^T k_l,

and a forward sweep rolls out :math:`x_l = k_l + K_l t_{l-1}`,
:math:`t_l = J_{z,l} t_{l-1} + J_{x,l} x_l`.  The matrices
:math:`Q_{xx}, K_l, S_l` do not depend on ``g``: they are the factorization,
and each further right-hand side costs only the vector sweeps.

By Sylvester's law of inertia, :math:`H + εI` is congruent to
:math:`\mathrm{blockdiag}(Q_{xx}^{(l)})`: it is positive definite iff every
pivot is, its negative eigenvalues are counted by the pivots', and
:math:`\log|\det(H + εI)| = \sum_l \log|\det Q_{xx}^{(l)}|`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack as lapack

from ..factorization import Factorization, check_pivot

__all__ = ["RiccatiFactorization", "SymmetricPivot"]


def _sym(A):
    """The symmetric part; rounding makes sums like :math:`Q_{zz} + Q_{xz}^T K`
    drift from symmetry, and the recursion must stay symmetric."""
    return 0.5 * (A + A.T)


class SymmetricPivot:
    """A factorization of one symmetric pivot :math:`Q_{xx}`.

    Cholesky where :math:`Q_{xx} \\succ 0`; otherwise the eigendecomposition
    :math:`Q_{xx} = V \\mathrm{diag}(w) V^T`, which also gives its inertia.

    Parameters
    ----------
    Q : ndarray, shape (p, p)
    layer : int
        The layer ``l`` it belongs to (for error messages).
    """

    def __init__(self, Q, layer):
        Q = _sym(Q)
        n = Q.shape[0]
        self.layer = layer
        try:
            self._chol = scipy.linalg.cho_factor(Q, lower=True, check_finite=False)
            self.kind = "cholesky"
            rcond, _ = lapack.dpocon(self._chol[0], np.linalg.norm(Q, 1), uplo="L")
            self.n_neg = 0
        except np.linalg.LinAlgError:
            self.kind = "eigen"
            self._w, self._V = scipy.linalg.eigh(Q, check_finite=False)
            wmax = np.max(np.abs(self._w))
            rcond = np.min(np.abs(self._w)) / wmax if wmax > 0 else 0.0
            self.n_neg = int(np.count_nonzero(self._w < 0))
        self.rcond = check_pivot("riccati", layer, rcond, n)
        self.n_pos = n - self.n_neg

    def solve(self, R):
        """:math:`Q_{xx}^{-1} R`."""
        if self.kind == "cholesky":
            return scipy.linalg.cho_solve(self._chol, R, check_finite=False)
        return self._V @ ((self._V.T @ R) / self._w.reshape((-1,) + (1,) * (R.ndim - 1)))

    def logdet(self):
        """``(sign, log|det Q_xx|)``."""
        if self.kind == "cholesky":
            return 1.0, 2.0 * float(np.sum(np.log(np.diag(self._chol[0]))))
        return (-1.0) ** self.n_neg, float(np.sum(np.log(np.abs(self._w))))


class RiccatiFactorization(Factorization):
    """The Riccati sweep (``method="riccati"``), symmetric throughout.

    Attributes
    ----------
    pivots : list of SymmetricPivot
        ``pivots[l - 1]`` factors :math:`Q_{xx}^{(l)}`.
    gains : list of ndarray
        ``gains[l - 1]`` = :math:`K_l = -Q_{xx}^{-1} Q_{xz}`, shape (p_l, a_{l-1}).
    S : list of ndarray
        ``S[l]`` = cost-to-go Hessian :math:`S_l`, shape (a_l, a_l), ``l = 1..L``
        (``S[0]`` is ``None``: :math:`t_0 = 0` needs none).
    """

    method = "riccati"

    def __init__(self, curvature, damping):
        super().__init__(curvature, damping)
        blocks = curvature.blocks
        L = len(blocks)
        self.pivots, self.gains, self._Qxz = [None] * L, [None] * L, [None] * L
        self.S = [None] * (L + 1)
        S = np.zeros((blocks[-1].Jz.shape[0],) * 2)  # S_L = 0
        for l in range(L, 0, -1):
            blk = blocks[l - 1]
            self.S[l] = S
            JxT_S = blk.Jx.T @ S
            Qxx = blk.Hxx + self.damping * np.eye(blk.Hxx.shape[0]) + JxT_S @ blk.Jx
            Qxz = blk.Hxz + JxT_S @ blk.Jz
            pivot = SymmetricPivot(Qxx, layer=l)
            self.pivot_rconds.append(pivot.rcond)
            K = -pivot.solve(Qxz)
            if l > 1:
                S = _sym(blk.Hzz + blk.Jz.T @ S @ blk.Jz + Qxz.T @ K)
            self.pivots[l - 1], self.gains[l - 1], self._Qxz[l - 1] = pivot, K, Qxz

    def _solve(self, G):
        blocks = self.curvature.blocks
        gs = self.curvature.split(G)
        L = len(blocks)
        k = [None] * L
        s = np.zeros((blocks[-1].Jz.shape[0], G.shape[1]))  # s_L = 0
        for l in range(L, 0, -1):
            blk = blocks[l - 1]
            qx = -gs[l - 1] + blk.Jx.T @ s
            k[l - 1] = -self.pivots[l - 1].solve(qx)
            s = blk.Jz.T @ s + self._Qxz[l - 1].T @ k[l - 1]
        xs = []
        t = np.zeros((blocks[0].Jz.shape[1], G.shape[1]))  # t_0 = 0
        for l in range(1, L + 1):
            blk = blocks[l - 1]
            x = k[l - 1] + self.gains[l - 1] @ t
            t = blk.Jz @ t + blk.Jx @ x
            xs.append(x)
        return np.concatenate(xs)

    def logdet(self):
        r""":math:`\sum_l \log|\det Q_{xx}^{(l)}|` and the product of the signs."""
        sign, logabs = 1.0, 0.0
        for pivot in self.pivots:
            s, la = pivot.logdet()
            sign *= s
            logabs += la
        return float(sign), float(logabs)

    def inertia(self):
        """Sums of the pivots' inertias (Sylvester); ``n_zero`` is 0, since a
        singular pivot raises :class:`SingularPivotError`."""
        n_pos = sum(p.n_pos for p in self.pivots)
        n_neg = sum(p.n_neg for p in self.pivots)
        return n_pos, n_neg, 0
