r"""The dense oracle: the full ``P × P`` Hessian, assembled exactly.

Everything structured in this library is checked against this module.  The
assembly follows :ref:`notation §4 <notation-4>` one layer at a time: with
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

from .backend import namespace_of
from .backend.constants import machine_eps
from .factorization import Factorization, check_pivot
from .finite import check_finite, largest, overflow_cause
from .layout import BlockLayout
from .point import LayerBlocks, Point

__all__ = ["hessian", "dense_hessian", "hessian_from_blocks", "DenseFactorization"]


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
    return dense_hessian(Point(net, params, X, y))


def dense_hessian(point):
    """The dense Hessian at a :class:`~hessinv_ref.point.Point`, from its
    cached blocks (:func:`hessian_from_blocks`), shape (P, P).

    Raises :class:`~hessinv_ref.finite.NonFiniteError` if the assembly
    overflows, even from finite blocks (the products
    :math:`T_{l-1}^T H_{zz,l} T_{l-1}` can)."""
    blocks = point.blocks
    H = hessian_from_blocks(blocks, point.layout)

    def cause():
        mags = [(f"the blocks {name}", max(largest(getattr(blk, name)) for blk in blocks), "rescale X or the parameters")
                for name in LayerBlocks._fields]
        return overflow_cause(point.dtype, mags, "the dense Hessian's assembly")

    return check_finite("dense Hessian", H, cause=cause)


def hessian_from_blocks(blocks, layout=None):
    """Assemble the dense Hessian from per-layer :class:`LayerBlocks`
    (shape (P, P), in the blocks' dtype, on their device); ``layout``, a
    :class:`~hessinv_ref.layout.BlockLayout`, is read from the blocks'
    shapes when not given."""
    layout = BlockLayout.of_blocks(blocks) if layout is None else layout
    xp = namespace_of(blocks[0].Hxx).xp
    off, P = layout.x_offsets, layout.P
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
        be = self.curvature.backend
        H = dense_hessian(self.curvature)
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
            be = self.curvature.backend
            self._eigvals = be.read_only(be.eigvalsh(self.A))
        return self._eigvals

    def logdet(self):
        """``(sign, log|det|)`` from the eigenvalues, as floats."""
        w = self.eigenvalues()
        xp = self.curvature.xp
        return float(xp.prod(xp.sign(w))), float(xp.sum(xp.log(xp.abs(w))))

    def inertia(self):
        """Eigenvalue sign counts; zero means ``|w| <= P eps max|w|``, with
        ``eps`` of the working precision."""
        w = self.eigenvalues()
        xp = self.curvature.xp
        tol = self.P * machine_eps(w.dtype) * float(xp.max(xp.abs(w)))
        n_zero = int(xp.count_nonzero(xp.abs(w) <= tol))
        n_neg = int(xp.count_nonzero(w < -tol))
        return self.P - n_zero - n_neg, n_neg, n_zero
