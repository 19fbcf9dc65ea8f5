r"""The same solve as a dual network: the Riccati (stagewise Newton) sweep.

:math:`(H + εI) x = g` is the stationarity condition of the quadratic program
(:ref:`notation §6 <notation-6>`)

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

Two implementations of the same sweeps are kept side by side, chosen by
``path=``.  The reference one (``path="reference"``,
:meth:`RiccatiFactorization._sweep_plain`) is the recursion above, line by
line.  The fast one (``path="fast"``, the default) groups each layer's blocks into
the *stage* matrices of the quadratic program,

.. math::

    J_l = [\,J_{x,l} \;\; J_{z,l}\,], \qquad
    \mathcal H_l = \begin{bmatrix} H_{xx,l} + εI & H_{xz,l} \\ H_{xz,l}^T & H_{zz,l} \end{bmatrix},
    \qquad
    Q = \begin{bmatrix} Q_{xx} & Q_{xz} \\ Q_{xz}^T & Q_{zz} \end{bmatrix}
      = \mathcal H_l + J_l^T S_l J_l,

built for many layers at once, so that each step is two large matrix
products instead of six small ones; the pivot, the gain and
:math:`S_{l-1} = Q_{zz} + Q_{xz}^T K_l` are then read off :math:`Q`.  The
arithmetic is the same up to rounding (``tests/test_fast_paths.py``).

By Sylvester's law of inertia, :math:`H + εI` is congruent to
:math:`\mathrm{blockdiag}(Q_{xx}^{(l)})`: it is positive definite iff every
pivot is, its negative eigenvalues are counted by the pivots', and
:math:`\log|\det(H + εI)| = \sum_l \log|\det Q_{xx}^{(l)}|`.

Each pivot is judged by the rule of :mod:`hessinv_ref.factorization` as it
is: :math:`Q_{xx}^{(l)}` is a symmetric Schur complement of :math:`H + εI`
(of its trailing layers), in the matrix's own units, so ``ε`` of any size
leaves it well scaled.  ``rcond < eps`` stops the sweep.  On a positive
definite :math:`H + εI` that means the matrix is singular at this precision;
on an indefinite one a trailing block can be singular while the whole is
not, and the error then says so and names the route that factors it
(``banded`` on NumPy).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import namespace_of
from ..factorization import Factorization, check_pivot, slogdet_of_blocks

__all__ = ["RiccatiFactorization", "Stage", "SymmetricPivot"]


def _sym(A):
    """The symmetric part :math:`(A + A^T)/2`; rounding makes sums like
    :math:`Q_{zz} + Q_{xz}^T K` drift from symmetry, and the recursion must
    stay symmetric.  (Two passes over ``A``, not three: it runs per layer;
    the in-place scaling is on the fresh sum.)"""
    out = A + A.T
    out *= 0.5
    return out


class SymmetricPivot:
    """A factorization of one symmetric pivot :math:`Q_{xx}`.

    Cholesky where :math:`Q_{xx} \\succ 0`; otherwise LU with partial
    pivoting, which runs at matrix-multiply speed (a symmetric
    eigendecomposition costs about ten times as much, and LAPACK's
    Bunch-Kaufman ``?sytrf`` about four times, at ``p = 1024``).  The LU
    factors of a symmetric matrix do not carry its inertia, so an LU pivot
    counts its negative eigenvalues (``eigvalsh``) only when :attr:`n_neg`
    is first read: solves never pay for it.

    Parameters
    ----------
    Q : array, shape (p, p)
        Of any backend; not modified.
    layer : int
        The layer ``l`` it belongs to (for error messages).
    backend : Backend, optional
        The backend of ``Q`` (:func:`~hessinv_ref.backend.namespace_of` of it
        when not given; the sweeps pass the curvature's once instead of
        looking it up per layer).

    Attributes
    ----------
    Q : array, shape (p, p)
        The pivot :math:`Q_{xx}^{(l)}` as given.
    kind : {"cholesky", "lu"}
    n_pos, n_neg : int
        Its inertia (for an LU pivot computed on first use).
    rcond : float
        Its reciprocal 1-norm condition estimate: LAPACK's (``?pocon`` or
        ``?gecon``) on NumPy, exact from the inverse on backends without
        LAPACK's estimators.

    Notes
    -----
    The dense kernels are the backend's (:meth:`~hessinv_ref.backend.Backend.cholesky`,
    ``cho_solve``, ``cho_rcond``, ``lu``, ``eigvalsh``).  On NumPy they call
    LAPACK directly (``?potrf``, ``?pocon``, ``?potrs``, ``?getrf``,
    ``?getrs``, ``?gecon``, in the precision of ``Q``): the pivots of a tall-skinny chain are tiny, and the
    input validation of the ``scipy.linalg`` wrappers would cost several
    times the factorization itself, once per layer.
    """

    def __init__(self, Q, layer, backend=None):
        be = namespace_of(Q) if backend is None else backend
        self._be = be
        Qs = _sym(Q)
        n = Qs.shape[0]
        self.layer = layer
        self.Q = Q  # kept for inspection; the factorization works on Qs
        C = be.cholesky(Qs)
        if C is not None:
            self.kind = "cholesky"
            self._C = C  # lower triangular, Qs = C C^T
            rcond = be.cho_rcond(C, Qs)
            self._n_neg = 0
        else:  # not positive definite: LU with partial pivoting
            self.kind = "lu"
            self._lu = be.lu(Qs)
            rcond = self._lu.rcond
            self._n_neg = None  # the inertia is computed when asked for
        self.rcond = check_pivot("riccati", layer, rcond, n, dtype=Qs.dtype)

    @property
    def n_neg(self):
        """Number of negative eigenvalues of the pivot: 0 for a Cholesky
        pivot; for an LU pivot counted from its eigenvalues on first use
        (the LU factors of a symmetric matrix do not carry its inertia, and
        the solves do not need it)."""
        if self._n_neg is None:
            xp = self._be.xp
            self._n_neg = int(xp.count_nonzero(self._be.eigvalsh(self._lu.A) < 0))
        return self._n_neg

    @property
    def n_pos(self):
        """Number of positive eigenvalues (none is zero: a singular pivot raises)."""
        return self.Q.shape[0] - self.n_neg

    def solve(self, R):
        """:math:`Q_{xx}^{-1} R`, ``R`` of shape (p,) or (p, k); a new array."""
        if self.kind == "cholesky":
            return self._be.cho_solve(self._C, R)
        return self._lu.solve(R)

    def logdet(self):
        """``(sign, log|det Q_xx|)`` as floats: twice the log of the Cholesky
        diagonal, or the LU's (pivot signs and the diagonal of ``U``)."""
        xp = self._be.xp
        if self.kind == "cholesky":
            return 1.0, 2.0 * float(xp.sum(xp.log(xp.linalg.diagonal(self._C))))
        return self._lu.slogdet()


_CHUNK_ENTRIES = 1 << 22
"""Most matrix entries of stage matrices built at once (32 MiB): long runs of
small layers are grouped by up to this much, wide layers a few at a time."""


def _chunks(blocks):
    """``[(start, end), ...]``: runs of consecutive layers with equal block
    shapes, cut so that a run's stage matrices hold at most
    :data:`_CHUNK_ENTRIES` entries."""
    shape = [(blk.Jx.shape, blk.Jz.shape) for blk in blocks]
    runs, start = [], 0
    for l in range(1, len(blocks) + 1):
        if l < len(blocks) and shape[l] == shape[start]:
            a, p = shape[start][0]
            n = p + shape[start][1][1]
            if (l - start + 1) * (n * n + a * n) <= _CHUNK_ENTRIES:
                continue
        runs.append((start, l))
        start = l
    return runs


def _stage_matrices(xp, blocks, damping):
    r"""For layers with equal block shapes, stacked on a leading axis:
    :math:`J = [J_x\; J_z]`, shape (R, a, p + a_in), and the stage Hessian
    :math:`\mathcal H = [[H_{xx} + εI, H_{xz}], [H_{xz}^T, H_{zz}]]`, shape
    (R, p + a_in, p + a_in), assembled from its four blocks."""
    def stack(name):
        return xp.stack([getattr(b, name) for b in blocks])

    Hxx, Hxz = stack("Hxx"), stack("Hxz")
    p = Hxx.shape[1]
    J = xp.concat([stack("Jx"), stack("Jz")], axis=2)
    eye = xp.eye(p, dtype=Hxx.dtype, device=Hxx.device)
    H = xp.concat(
        [
            xp.concat([Hxx + damping * eye, Hxz], axis=2),  # broadcast over the layers
            xp.concat([Hxz.mT, stack("Hzz")], axis=2),
        ],
        axis=1,
    )
    return J, H


class Stage(NamedTuple):
    r"""What the backward sweep keeps of stage ``l``: everything the solve's
    two sweeps and the inertia read, in one record.

    Attributes
    ----------
    pivot : SymmetricPivot
        The factored :math:`Q_{xx}^{(l)}`, shape (p_l, p_l).
    K : array, shape (p_l, a_{l-1})
        The gain :math:`K_l = -Q_{xx}^{-1} Q_{xz}`.
    Qxz : array, shape (p_l, a_{l-1})
        :math:`Q_{xz}^{(l)} = H_{xz} + J_x^T S_l J_z`.
    S : array, shape (a_l, a_l)
        The cost-to-go Hessian :math:`S_l` the stage was built from.
    J : array or None, shape (a_l, p_l + a_{l-1})
        :math:`[J_x\; J_z]` (the fast path's stage matrix; ``None`` on the
        reference path, which reads the blocks).
    """

    pivot: Any
    K: Any
    Qxz: Any
    S: Any
    J: Any = None


class RiccatiFactorization(Factorization):
    r"""The Riccati sweep (``method="riccati"``), symmetric throughout.

    Parameters
    ----------
    curvature, damping, diagnose
        As for :class:`~hessinv_ref.factorization.Factorization`.
    path : {"fast", "reference"}, optional
        The stage-matrix sweeps (default, two products per layer) or the
        reference sweeps, the module docstring's equations line by line;
        they agree to rounding (``tests/test_fast_paths.py``).

    Attributes
    ----------
    stages : tuple of Stage
        ``stages[l - 1]`` holds stage ``l``'s pivot, gain, :math:`Q_{xz}`,
        :math:`S_l` (and, on the fast path, :math:`[J_x\; J_z]`).
    pivots : list of SymmetricPivot
        ``pivots[l - 1]`` factors :math:`Q_{xx}^{(l)}` (from :attr:`stages`).
    gains : list of ndarray
        ``gains[l - 1]`` = :math:`K_l = -Q_{xx}^{-1} Q_{xz}`, shape (p_l, a_{l-1}).
    S : list of ndarray
        ``S[l]`` = cost-to-go Hessian :math:`S_l`, shape (a_l, a_l), ``l = 1..L``
        (``S[0]`` is ``None``: :math:`t_0 = 0` needs none).
    """

    method = "riccati"

    def __init__(self, curvature, damping, *, path="fast", diagnose=True):
        if path not in ("fast", "reference"):
            raise ValueError(f"path: expected 'fast' or 'reference', got {path!r}")
        self.path = path
        super().__init__(curvature, damping, diagnose=diagnose)

    # the per-stage lists, read from the one record per stage
    @property
    def pivots(self):
        return [st.pivot for st in self.stages]

    @property
    def gains(self):
        return [st.K for st in self.stages]

    @property
    def S(self):
        return [None] + [st.S for st in self.stages]

    def _factor(self):
        self._be = self.curvature.backend
        blocks = self.curvature.blocks
        stages = [None] * len(blocks)
        for l, stage in (self._sweep_fast(blocks) if self.path == "fast" else self._sweep_plain(blocks)):
            self.pivot_rconds.append(stage.pivot.rcond)
            stages[l - 1] = stage
        self.stages = tuple(stages)

    def _solve(self, G):
        return self._solve_fast(G) if self.path == "fast" else self._solve_plain(G)

    # -- the reference sweeps: the module docstring's equations, line by line --

    def _zeros(self, shape, like):
        return self._be.xp.zeros(shape, dtype=self.dtype, device=like.device)

    def _sweep_plain(self, blocks):
        """Yield ``(l, Stage)`` for ``l = L..1``."""
        xp = self._be.xp
        S = self._zeros((blocks[-1].Jz.shape[0],) * 2, blocks[-1].Jz)  # S_L = 0
        for l in range(len(blocks), 0, -1):
            blk = blocks[l - 1]
            JxT_S = blk.Jx.T @ S
            eye = xp.eye(blk.Hxx.shape[0], dtype=self.dtype, device=S.device)
            Qxx = blk.Hxx + self.damping * eye + JxT_S @ blk.Jx
            Qxz = blk.Hxz + JxT_S @ blk.Jz
            pivot = SymmetricPivot(Qxx, layer=l, backend=self._be)
            K = -pivot.solve(Qxz)
            yield l, Stage(pivot, K, Qxz, S)
            if l > 1:
                S = _sym(blk.Hzz + blk.Jz.T @ S @ blk.Jz + Qxz.T @ K)

    def _solve_plain(self, G):
        blocks = self.curvature.blocks
        gs = self.curvature.split(G)
        L = len(blocks)
        k = [None] * L
        s = self._zeros((blocks[-1].Jz.shape[0], G.shape[1]), G)  # s_L = 0
        for l in range(L, 0, -1):
            blk, st = blocks[l - 1], self.stages[l - 1]
            qx = -gs[l - 1] + blk.Jx.T @ s
            k[l - 1] = -st.pivot.solve(qx)
            s = blk.Jz.T @ s + st.Qxz.T @ k[l - 1]
        xs = []
        t = self._zeros((blocks[0].Jz.shape[1], G.shape[1]), G)  # t_0 = 0
        for l in range(1, L + 1):
            blk = blocks[l - 1]
            x = k[l - 1] + self.stages[l - 1].K @ t
            t = blk.Jz @ t + blk.Jx @ x
            xs.append(x)
        return self.curvature.layout.concat(xs)

    # -- the fast sweeps: the same recursion on stage matrices -------------------

    def _sweep_fast(self, blocks):
        """Yield ``(l, Stage)`` for ``l = L..1``, a run of equal-shaped
        layers' stage matrices assembled at a time."""
        be = self._be
        S = self._zeros((blocks[-1].Jz.shape[0],) * 2, blocks[-1].Jz)  # S_L = 0
        for start, end in reversed(_chunks(blocks)):
            J_run, H_run = _stage_matrices(be.xp, blocks[start:end], self.damping)
            p = blocks[start].Jx.shape[1]
            for r in range(end - start - 1, -1, -1):
                l = start + r + 1
                J = J_run[r, ...]
                Q = J.T @ S @ J  # J^T S J, then + the stage Hessian
                Q += H_run[r, ...]  # in place: Q is a fresh product
                Qxz = Q[:p, p:]
                pivot = SymmetricPivot(Q[:p, :p], layer=l, backend=be)
                K = -pivot.solve(Qxz)  # K_l = -Qxx^{-1} Qxz
                yield l, Stage(pivot, K, Qxz, S, J)
                if l > 1:
                    S = _sym(Q[p:, p:] + Qxz.T @ K)

    def _solve_fast(self, G):
        gs = self.curvature.split(G)
        L = len(self.stages)
        xp = self._be.xp
        k = [None] * L
        s = self._zeros((self.stages[-1].S.shape[0], G.shape[1]), G)  # s_L = 0
        for l in range(L, 0, -1):
            st = self.stages[l - 1]
            p = gs[l - 1].shape[0]
            JT_s = st.J.T @ s  # [Jx^T s; Jz^T s]
            # k_l = -Qxx^{-1} q_x with q_x = -g_l + Jx^T s_l: the sign folded
            # into the subtraction, one elementwise pass fewer per layer
            k[l - 1] = kl = st.pivot.solve(gs[l - 1] - JT_s[:p, :])
            s = JT_s[p:, :] + st.Qxz.T @ kl  # s_{l-1} = q_z + Qxz^T k_l
        xs = []
        t = self._zeros((self.stages[0].J.shape[1] - gs[0].shape[0], G.shape[1]), G)  # t_0 = 0
        for l in range(1, L + 1):
            st = self.stages[l - 1]
            x = st.K @ t
            x += k[l - 1]  # in place: x is a fresh product
            t = st.J @ xp.concat([x, t])  # Jx x + Jz t
            xs.append(x)
        return self.curvature.layout.concat(xs)

    def logdet(self):
        r""":math:`\sum_l \log|\det Q_{xx}^{(l)}|` and the product of the signs."""
        return slogdet_of_blocks(st.pivot.logdet() for st in self.stages)

    def inertia(self):
        """Sums of the pivots' inertias (Sylvester); ``n_zero`` is 0, since a
        singular pivot raises :class:`SingularPivotError`."""
        n_pos = sum(st.pivot.n_pos for st in self.stages)
        n_neg = sum(st.pivot.n_neg for st in self.stages)
        return n_pos, n_neg, 0
