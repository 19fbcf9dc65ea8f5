r"""Layers with hand-written first- and second-order derivatives.

Every layer is one link :math:`z_l = f_l(z_{l-1}; x_l)` of the chain in
``math.md`` §1.  Activations are flat, sample-major vectors: a batch of ``B``
samples of width ``n`` is a vector of length ``a = B n`` (sample ``i``, unit
``k`` sits at index ``i n + k``).  A layer's parameters are one flat vector
``x`` of length ``p``: the weight ``W`` of shape ``(n_out, n_in)`` row-major,
then the bias (``torch.nn.Linear``'s order).

The layer protocol
------------------
A layer has attributes ``n_in``, ``n_out`` (per-sample widths),
``n_params`` and the method ``out_dim(batch)``, plus::

    forward(x, z_in)                    -> z_out                     (a_out,)
    vjp(x, z_in, b_out)                 -> (b_in, g_x)               (a_in,), (p,)
    jvp(x, z_in, t_in, v)               -> t_out                     (a_out,)
    second_order(x, z_in, b_out, t_in, v)
                      -> (Hzz t_in + Hxz^T v,  Hxz t_in + Hxx v)     (a_in,), (p,)
    jacobians(x, z_in)                  -> (Jz, Jx)      (a_out, a_in), (a_out, p)
    curvature(x, z_in, b_out)           -> (Hxx, Hxz, Hzz)
                                          (p, p), (p, a_in), (a_in, a_in)

with ``Hxx, Hxz, Hzz`` the second derivatives of the scalar
:math:`b_{out} \cdot z_{out}` (``math.md`` §3).  Anything that implements it
works in :class:`~hessinv_ref.network.Network`, in every solver and in
:func:`hessinv_ref.testing.check_layer`.

Every built-in layer here is an *affine map followed by an output map*:

.. math::

    u = Z W^T + c \quad (B \times n_{out}), \qquad z_{out} = φ(u, z_{in}).

Because :math:`u` is affine in :math:`x` and affine in :math:`z_{in}`, all the
second-order information of the layer reduces to two objects in
:math:`u`-space: the *delta* :math:`D = ∂(b_{out} \cdot z_{out}) / ∂u` and its
derivative :math:`Λ = ∂^2 (b_{out}\cdot z_{out}) / ∂u^2`.  With
:math:`A_x = ∂u/∂x`, :math:`A_z = ∂u/∂z_{in}` and the bilinear cross term
:math:`C = \sum_{ik} D_{ik}\, ∂^2 u_{ik} / ∂x\, ∂z_{in}`:

.. math::

    H_{xx} = A_x^T Λ A_x, \qquad H_{zz} = A_z^T Λ A_z, \qquad
    H_{xz} = A_x^T Λ A_z + C.

Subclasses supply only the output map (:class:`Dense`: an elementwise
activation; the loss heads: a loss of the logits).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from .activations import get_activation

__all__ = [
    "Layer",
    "AffineLayer",
    "Dense",
    "Residual",
    "LossHead",
    "SoftmaxCrossEntropy",
    "SquaredError",
]


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def _block_diag(blocks):
    """Block-diagonal matrix from a stack of blocks, shape (B, r, c)."""
    return scipy.linalg.block_diag(*blocks)


# -- the vectorised block builder ------------------------------------------------
#
# ``AffineLayer.curvature`` and ``.jacobians`` above build the blocks the way
# the docstrings derive them: explicit ``A_x``, ``A_z = I_B ⊗ W``, ``Λ`` as a
# block-diagonal matrix, and products of them.  That is O(B^2) memory for the
# Kronecker factors and a dozen NumPy calls per layer.  The functions below
# compute the *same* entries by writing each nonzero pattern straight into
# the output, and for ``R`` layers of identical shape at once (leading axis
# ``R``), so a deep chain pays the Python overhead once per run of layers,
# not once per layer.  ``tests/test_fast_paths.py`` checks they agree with
# the explicit route to rounding.


def _view(a, shape):
    """``a.reshape(shape)`` that must be a view (we write through it).

    Splitting an axis of a strided array never needs a copy, which is all
    the callers do; the check guards the assumption."""
    v = a.reshape(shape)
    if not np.may_share_memory(v, a):  # pragma: no cover - a NumPy regression
        raise AssertionError("reshape copied; the block builder relies on a view")
    return v


def _stacked_curvature(W, Z, D, Lam, bias):
    r"""The curvature blocks of ``R`` affine layers at once.

    With :math:`A_x, A_z, C` as in :meth:`AffineLayer.curvature`, written out
    entrywise (``k, l`` output units, ``j, h`` input units, ``i`` samples):

    .. math::

        H_{xx}[(k,j),(l,h)] &= \sum_i Λ_i[k,l]\, Z_{ij} Z_{ih}
            \quad(= \textstyle\sum_i Λ_i ⊗ z_i z_i^T), \\
        H_{xz}[(k,j),(i,h)] &= Z_{ij}\, (Λ_i W)[k,h] + D_{ik}\, δ_{jh}, \\
        H_{zz} &= \mathrm{blockdiag}_i\bigl(W^T Λ_i W\bigr),

    and for the bias rows :math:`H_{xx}[c_k, c_l] = \sum_i Λ_i[k,l]`,
    :math:`H_{xx}[(k,j), c_l] = \sum_i Λ_i[k,l] Z_{ij}`,
    :math:`H_{xz}[c_k, (i,h)] = (Λ_i W)[k,h]`.

    Parameters
    ----------
    W : ndarray, shape (R, m, n)
        Weights.
    Z : ndarray, shape (R, B, n)
        Layer inputs.
    D : ndarray, shape (R, B, m)
        The delta :math:`∂(b_{out}\cdot z_{out})/∂u`.
    Lam : ndarray, shape (R, B, m, m)
        The per-sample blocks of :math:`Λ`.
    bias : bool

    Returns
    -------
    Hxx : ndarray, shape (R, p, p)
    Hxz : ndarray, shape (R, p, B n)
    Hzz : ndarray, shape (R, B n, B n)
    """
    R, m, n = W.shape
    B = Z.shape[1]
    mn = m * n
    p = mn + (m if bias else 0)
    # Hxx, weight-weight part: one GEMM over the samples, then the
    # (k,l),(j,h) -> (k,j),(l,h) reordering of the Kronecker product.
    ZZ = (Z[:, :, :, None] * Z[:, :, None, :]).reshape(R, B, n * n)
    KL_JH = np.matmul(Lam.reshape(R, B, m * m).transpose(0, 2, 1), ZZ)
    Hxx = np.empty((R, p, p))
    _view(Hxx[:, :mn, :mn], (R, m, n, m, n))[...] = KL_JH.reshape(R, m, m, n, n).transpose(0, 1, 3, 2, 4)
    # Λ_i W, shape (R, B, m, n): shared by Hxz and Hzz
    LW = np.matmul(Lam, W[:, None])
    # Hxz, weight rows: the product term, then the cross term D_ik on j == h
    Hxz = np.empty((R, p, B * n))
    HW = _view(Hxz[:, :mn], (R, m, n, B, n))
    np.multiply(Z.transpose(0, 2, 1)[:, None, :, :, None], LW.transpose(0, 2, 1, 3)[:, :, None], out=HW)
    jj = np.arange(n)  # the same index on two axes picks their diagonal
    HW[:, :, jj, :, jj] += D.transpose(0, 2, 1)[None]
    if bias:
        Hxx[:, mn:, mn:] = Lam.sum(axis=1)
        HWc = np.einsum("rikl,rij->rkjl", Lam, Z).reshape(R, mn, m)
        Hxx[:, :mn, mn:] = HWc
        Hxx[:, mn:, :mn] = HWc.transpose(0, 2, 1)
        Hxz[:, mn:] = LW.transpose(0, 2, 1, 3).reshape(R, m, B * n)
    # Hzz: W^T Λ_i W on the diagonal blocks of the sample-major layout
    Hzz = np.zeros((R, B, n, B, n))
    ii = np.arange(B)
    Hzz[:, ii, :, ii, :] = np.matmul(W.transpose(0, 2, 1)[:, None], LW).transpose(1, 0, 2, 3)
    return Hxx, Hxz, Hzz.reshape(R, B * n, B * n)


class Layer:
    """Base class documenting the layer protocol (see the module docstring).

    Subclasses must set ``n_in``, ``n_out``, ``n_params`` and implement
    ``forward``, ``vjp``, ``jvp``, ``second_order``, ``jacobians``,
    ``curvature`` and ``init``.
    """

    is_loss = False

    def out_dim(self, batch):
        """Length ``a_out`` of the flat output for a batch of ``batch``."""
        return batch * self.n_out

    def batch_of(self, z_in):
        """Number of samples in a flat input vector ``z_in`` of length B n_in."""
        z_in = np.asarray(z_in)
        if z_in.ndim != 1 or z_in.size % self.n_in != 0 or z_in.size == 0:
            raise ValueError(
                f"z_in: expected a flat vector whose length is a positive "
                f"multiple of n_in={self.n_in}, got shape {z_in.shape}"
            )
        return z_in.size // self.n_in


class AffineLayer(Layer):
    r"""An affine map :math:`u = Z W^T + c` followed by an output map.

    Parameters
    ----------
    n_in, n_out : int
        Per-sample input and output widths of the affine map.
    bias : bool
        Whether the layer has the bias ``c``.

    Subclasses implement the output map through :meth:`_output`,
    :meth:`_delta`, :meth:`_lambda`, :meth:`_lambda_blocks`,
    :meth:`_out_jvp` and :meth:`_out_jacobian`.
    """

    def __init__(self, n_in, n_out, bias=True):
        self.n_in = _check_positive_int("n_in", n_in)
        self.n_out = _check_positive_int("n_out", n_out)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool, got {bias!r}")
        self.bias = bool(bias)
        self.n_params = self.n_out * self.n_in + (self.n_out if self.bias else 0)

    # -- parameters ---------------------------------------------------------

    def unpack(self, x):
        """Split a flat parameter vector into ``(W, c)``.

        Returns views: ``W`` of shape (n_out, n_in) and ``c`` of shape
        (n_out,), or ``None`` without bias.
        """
        x = np.asarray(x)
        if x.shape != (self.n_params,):
            raise ValueError(
                f"x: expected shape ({self.n_params},) for {self!r}, got {x.shape}"
            )
        n_w = self.n_out * self.n_in
        W = x[:n_w].reshape(self.n_out, self.n_in)
        c = x[n_w:] if self.bias else None
        return W, c

    def pack(self, weight, bias=None):
        """Flatten ``weight`` (n_out, n_in) and ``bias`` (n_out,) into ``x``."""
        weight = np.asarray(weight)
        if weight.shape != (self.n_out, self.n_in):
            raise ValueError(
                f"weight: expected shape {(self.n_out, self.n_in)}, got {weight.shape}"
            )
        if not self.bias:
            if bias is not None:
                raise ValueError(f"bias: {self!r} has no bias, got an array")
            return weight.ravel().copy()
        bias = np.asarray(bias) if bias is not None else None
        if bias is None or bias.shape != (self.n_out,):
            raise ValueError(
                f"bias: expected shape ({self.n_out},), got "
                f"{None if bias is None else bias.shape}"
            )
        return np.concatenate([weight.ravel(), bias])

    def init(self, rng, scale=1.0):
        r"""Draw ``x`` as ``torch.nn.Linear`` does, times ``scale``.

        Weight, then bias, each :math:`\mathcal U(-s/\sqrt{n_{in}}, s/\sqrt{n_{in}})`
        with :math:`s` = ``scale``, drawn from the ``numpy.random.Generator``
        ``rng`` in that order.
        """
        bound = scale / math.sqrt(self.n_in)
        W = rng.uniform(-bound, bound, size=(self.n_out, self.n_in))
        c = rng.uniform(-bound, bound, size=self.n_out) if self.bias else None
        return self.pack(W, c)

    # -- the affine map and its derivatives ---------------------------------

    def _affine(self, x, Z):
        """:math:`u = Z W^T + c`, shape (B, n_out)."""
        W, c = self.unpack(x)
        U = Z @ W.T
        return U + c if self.bias else U

    def _affine_jvp(self, x, Z, T, v):
        """Directional derivative of ``u`` along ``(t_in, v)``:
        :math:`dU = T W^T + Z V_W^T + v_c`."""
        W, _ = self.unpack(x)
        V_W, v_c = self.unpack(v)
        dU = T @ W.T + Z @ V_W.T
        return dU + v_c if self.bias else dU

    def _affine_vjp(self, x, Z, D):
        """Pull a cotangent ``D`` on ``u`` back: returns ``(D W, vec(D^T Z, Σ_i D_i))``,
        shapes (B, n_in) and (p,)."""
        W, _ = self.unpack(x)
        g_W = D.T @ Z
        g_x = np.concatenate([g_W.ravel(), D.sum(axis=0)]) if self.bias else g_W.ravel()
        return D @ W, g_x

    def _cross(self, D, T, v):
        r"""The bilinear cross term of ``u`` contracted with ``D``.

        Since :math:`∂^2 u_{ik} / ∂W_{kj} ∂z_{ij} = 1`, the term
        :math:`C = \sum_{ik} D_{ik} ∂^2 u_{ik}/∂x∂z` gives
        :math:`C^T v = D V_W` and :math:`C t = \mathrm{vec}(D^T T, 0)`.
        """
        V_W, _ = self.unpack(v)
        Ct = (D.T @ T).ravel()
        if self.bias:
            Ct = np.concatenate([Ct, np.zeros(self.n_out, dtype=Ct.dtype)])
        return D @ V_W, Ct

    def _A_x(self, Z):
        """Explicit :math:`A_x = ∂u/∂x`, shape (B n_out, p).

        Row ``(i, k)`` has ``z_i`` in the columns of ``W[k, :]`` and a 1 in the
        column of ``c[k]``."""
        B = Z.shape[0]
        eye = np.eye(self.n_out, dtype=Z.dtype)
        A_W = np.einsum("kl,ij->iklj", eye, Z).reshape(B * self.n_out, -1)
        if not self.bias:
            return A_W
        return np.hstack([A_W, np.tile(eye, (B, 1))])

    def _A_z(self, x, B):
        """Explicit :math:`A_z = ∂u/∂z_{in} = I_B ⊗ W`, shape (B n_out, B n_in)."""
        W, _ = self.unpack(x)
        return np.kron(np.eye(B, dtype=W.dtype), W)

    def _C(self, D):
        """Explicit cross term :math:`C`, shape (p, B n_in): rows of ``W[k, j]``
        hold ``D[i, k]`` at column ``(i, j)``; bias rows are zero."""
        B = D.shape[0]
        eye = np.eye(self.n_in, dtype=D.dtype)
        C_W = np.einsum("ik,jl->kjil", D, eye).reshape(self.n_out * self.n_in, B * self.n_in)
        if not self.bias:
            return C_W
        return np.vstack([C_W, np.zeros((self.n_out, B * self.n_in), dtype=D.dtype)])

    # -- the protocol, written once for every affine layer -------------------

    def _unflat(self, z_in):
        B = self.batch_of(z_in)
        return B, np.asarray(z_in).reshape(B, self.n_in)

    def forward(self, x, z_in):
        """:math:`z_{out} = φ(Z W^T + c, Z)`, flat (a_out,)."""
        B, Z = self._unflat(z_in)
        return self._output(self._affine(x, Z), Z).ravel()

    def vjp(self, x, z_in, b_out):
        """Backprop: :math:`b_{in} = b_{out} J_z`, :math:`g_x = b_{out} J_x`."""
        B, Z = self._unflat(z_in)
        U = self._affine(x, Z)
        D = self._delta(U, b_out)
        b_in, g_x = self._affine_vjp(x, Z, D)
        return b_in.ravel() + self._skip(b_out), g_x

    def jvp(self, x, z_in, t_in, v):
        """Forward tangent: :math:`t_{out} = J_z t_{in} + J_x v`."""
        B, Z = self._unflat(z_in)
        T = np.asarray(t_in).reshape(B, self.n_in)
        U = self._affine(x, Z)
        dU = self._affine_jvp(x, Z, T, v)
        return self._out_jvp(U, dU).ravel() + self._skip(t_in)

    def second_order(self, x, z_in, b_out, t_in, v):
        r"""The R-backward terms :math:`(H_{zz} t + H_{xz}^T v,\ H_{xz} t + H_{xx} v)`.

        They are the derivative of :meth:`vjp` along ``(t_in, v)`` at fixed
        ``b_out``: the delta moves by :math:`R\{D\} = Λ\, dU`, and the
        bilinear affine map adds the cross term :math:`C`.
        """
        B, Z = self._unflat(z_in)
        T = np.asarray(t_in).reshape(B, self.n_in)
        U = self._affine(x, Z)
        RD = self._lambda(U, b_out, self._affine_jvp(x, Z, T, v))
        D = self._delta(U, b_out)
        via_u_z, via_u_x = self._affine_vjp(x, Z, RD)
        cross_z, cross_x = self._cross(D, T, v)
        return (via_u_z + cross_z).ravel(), via_u_x + cross_x

    def jacobians(self, x, z_in):
        r"""Explicit :math:`J_z = (∂z_{out}/∂u) A_z` (+ I for a skip) and
        :math:`J_x = (∂z_{out}/∂u) A_x`, shapes (a_out, a_in), (a_out, p)."""
        B, Z = self._unflat(z_in)
        G = self._out_jacobian(self._affine(x, Z))
        Jz = G @ self._A_z(x, B) + self._skip_matrix(B)
        return Jz, G @ self._A_x(Z)

    def curvature(self, x, z_in, b_out):
        r"""Explicit :math:`H_{xx} = A_x^T Λ A_x`, :math:`H_{xz} = A_x^T Λ A_z + C`,
        :math:`H_{zz} = A_z^T Λ A_z`, shapes (p, p), (p, a_in), (a_in, a_in)."""
        B, Z = self._unflat(z_in)
        U = self._affine(x, Z)
        Lam = _block_diag(self._lambda_blocks(U, b_out))
        A_x, A_z = self._A_x(Z), self._A_z(x, B)
        Hxx = A_x.T @ Lam @ A_x
        Hxz = A_x.T @ Lam @ A_z + self._C(self._delta(U, b_out))
        Hzz = A_z.T @ Lam @ A_z
        return Hxx, Hxz, Hzz

    # -- the fast block builder (optional protocol) ---------------------------

    def stack_key(self):
        """A hashable key, equal for layers whose blocks
        :meth:`stacked_blocks` can build together, or ``None`` when this
        layer has no fast builder (then ``jacobians`` and ``curvature`` are
        used).  Optional: a user-written layer need not define it."""
        return None

    def stacked_blocks(self, xs, zs_in, bs_out):
        """``(Jz, Jx, Hxx, Hxz, Hzz)`` of ``R`` layers at once, each stacked
        on a leading axis of length ``R``: the same entries as
        :meth:`jacobians` and :meth:`curvature` layer by layer.

        Parameters
        ----------
        xs, zs_in, bs_out : sequences of ``R`` ndarrays
            Parameters (p,), inputs (a_in,) and backprop vectors (a_out,) of
            ``R`` layers sharing this layer's :meth:`stack_key`.
        """
        raise NotImplementedError

    def forward_run(self, xs, z_in):
        """The forward pass through ``R`` consecutive layers sharing this
        layer's :meth:`stack_key` (parameters ``xs``), from ``z_in``.

        Returns ``(zs, cache)``: the ``R`` outputs (flat) and whatever
        :meth:`vjp_run` needs again.  This default is the plain protocol,
        one :meth:`forward` per layer; :class:`Dense` overrides it."""
        zs = []
        for x in xs:
            z_in = self.forward(x, z_in)
            zs.append(z_in)
        return zs, None

    def vjp_run(self, xs, zs_in, b_out, cache):
        """The backward pass through the same ``R`` layers, from the
        backprop vector ``b_out`` of the last one.

        Returns ``(bs_in, grads)``: ``bs_in[r]`` = :math:`b_{in}` of layer
        ``r`` (so ``bs_in[0]`` enters the layer before the run) and
        ``grads[r]`` its :math:`g_x`.  Default: one :meth:`vjp` per layer."""
        R = len(xs)
        bs_in, grads = [None] * R, [None] * R
        for r in range(R - 1, -1, -1):
            bs_in[r], grads[r] = self.vjp(xs[r], zs_in[r], b_out)
            b_out = bs_in[r]
        return bs_in, grads

    # -- the skip connection (none here; Residual overrides) -----------------

    def _skip(self, vec):
        return 0.0

    def _skip_matrix(self, B):
        return 0.0

    # -- the output map, supplied by subclasses ------------------------------

    def _output(self, U, Z):
        """:math:`φ(u, z_{in})` without the skip, shape (B, n_out) or (1,)."""
        raise NotImplementedError

    def _delta(self, U, b_out):
        """:math:`D = ∂(b_{out}\\cdot z_{out})/∂u`, shape (B, n_out)."""
        raise NotImplementedError

    def _lambda(self, U, b_out, dU):
        """:math:`Λ\\, dU`, shape (B, n_out)."""
        raise NotImplementedError

    def _lambda_blocks(self, U, b_out):
        """The per-sample blocks of :math:`Λ`, shape (B, n_out, n_out)."""
        raise NotImplementedError

    def _out_jvp(self, U, dU):
        """:math:`(∂z_{out}/∂u)\\, dU`."""
        raise NotImplementedError

    def _out_jacobian(self, U):
        """Explicit :math:`∂z_{out}/∂u`, shape (a_out, B n_out)."""
        raise NotImplementedError


class Dense(AffineLayer):
    r"""A fully connected layer :math:`z_{out} = σ(Z W^T + c)` per sample.

    Parameters
    ----------
    n_in, n_out : int
        Per-sample widths.
    activation : str or Activation
        ``identity, tanh, sigmoid, softplus, gelu, silu`` or ``relu``.
    bias : bool
        Whether to learn the bias ``c``.

    Notes
    -----
    The output map is elementwise, so
    :math:`D = b_{out} ⊙ σ'(u)` and :math:`Λ = \mathrm{diag}(b_{out} ⊙ σ''(u))`.
    """

    def __init__(self, n_in, n_out, activation="tanh", bias=True):
        super().__init__(n_in, n_out, bias)
        self.activation = get_activation(activation)

    def __repr__(self):
        name = getattr(self.activation, "name", repr(self.activation))
        return (
            f"{type(self).__name__}({self.n_in}, {self.n_out}, "
            f"activation={name!r}, bias={self.bias})"
        )

    def _b(self, U, b_out):
        return np.asarray(b_out).reshape(U.shape)

    def _output(self, U, Z):
        return self.activation.f(U)

    def _delta(self, U, b_out):
        return self._b(U, b_out) * self.activation.df(U)

    def _lambda(self, U, b_out, dU):
        return self._b(U, b_out) * self.activation.d2f(U) * dU

    def _lambda_blocks(self, U, b_out):
        w = self._b(U, b_out) * self.activation.d2f(U)
        return w[:, :, None] * np.eye(self.n_out, dtype=w.dtype)

    def _out_jvp(self, U, dU):
        return self.activation.df(U) * dU

    def _out_jacobian(self, U):
        return np.diag(self.activation.df(U).ravel())

    def forward_run(self, xs, z_in):
        r""":meth:`forward` through a run of layers without re-validating and
        re-unpacking at every layer: :math:`U_r = Z_{r-1} W_r^T + c_r`,
        :math:`Z_r = φ(U_r, Z_{r-1})`.  The cache is the stack of the
        pre-activations :math:`U_r`, shape (R, B, n_out), which the backward
        pass needs (``vjp`` would recompute them)."""
        m, n = self.n_out, self.n_in
        Z = np.asarray(z_in).reshape(-1, n)
        zs, Us = [], []
        for x in xs:
            U = Z @ x[:m * n].reshape(m, n).T
            if self.bias:
                U += x[m * n:]
            Us.append(U)
            Z = self._output(U, Z)
            zs.append(Z.ravel())
        return zs, np.stack(Us)

    def vjp_run(self, xs, zs_in, b_out, cache):
        r""":meth:`vjp` through the run: :math:`D_r = b_r ⊙ σ'(U_r)`,
        :math:`b_{r-1} = D_r W_r` (+ :math:`b_r` for a skip).  The only
        sequential work is those two products; :math:`σ'` of every layer and
        the gradients :math:`g_r = (\mathrm{vec}(D_r^T Z_{r-1}), \sum_i D_{r,i})`
        are computed for the whole run at once."""
        m, n = self.n_out, self.n_in
        R, B = cache.shape[:2]
        D = self.activation.df(cache)  # becomes D_r = b_r ⊙ σ'(U_r), row by row
        skip = isinstance(self, Residual)
        bs_in = [None] * R
        for r in range(R - 1, -1, -1):
            D[r] *= b_out.reshape(B, m)
            b_in = (D[r] @ xs[r][:m * n].reshape(m, n)).ravel()
            if skip:
                b_in += b_out
            bs_in[r] = b_out = b_in
        Z = np.stack(zs_in).reshape(R, B, n)
        G = np.matmul(D.transpose(0, 2, 1), Z).reshape(R, m * n)
        if self.bias:
            G = np.concatenate([G, D.sum(axis=1)], axis=1)
        return bs_in, list(G)

    def stack_key(self):
        # Only the classes whose output map the builder below knows; a
        # subclass may change the map and must fall back to the explicit path.
        if type(self) not in (Dense, Residual):
            return None
        return (type(self), self.n_in, self.n_out, self.bias, id(self.activation))

    def stacked_blocks(self, xs, zs_in, bs_out):
        r"""The blocks of ``R`` identical-shape layers, written entrywise.

        With :math:`σ'_{ik} = σ'(u_{ik})`:
        :math:`J_z = \mathrm{blockdiag}_i(\mathrm{diag}(σ'_i) W)` (+ I for a skip),
        :math:`J_x[(i,k),(k,j)] = σ'_{ik} Z_{ij}`, :math:`J_x[(i,k), c_k] = σ'_{ik}`,
        :math:`Λ_i = \mathrm{diag}(b_i ⊙ σ''_i)`, :math:`D = b ⊙ σ'`; the
        curvature blocks come from :func:`_stacked_curvature`.  Shapes as in
        :meth:`AffineLayer.stacked_blocks`.
        """
        R, m, n = len(xs), self.n_out, self.n_in
        mn, p = m * n, self.n_params
        Xs = np.stack(xs)
        W = Xs[:, :mn].reshape(R, m, n)
        Z = np.stack(zs_in).reshape(R, -1, n)
        B = Z.shape[1]
        U = np.matmul(Z, W.transpose(0, 2, 1))
        if self.bias:
            U += Xs[:, None, mn:]
        b = np.stack(bs_out).reshape(R, B, m)
        s1 = self.activation.df(U)
        ii, kk = np.arange(B), np.arange(m)
        Lam = np.zeros((R, B, m, m))
        Lam[:, :, kk, kk] = b * self.activation.d2f(U)
        # Jz: diag(σ'_i) W on the diagonal blocks (sample i to sample i)
        Jz = np.zeros((R, B, m, B, n))
        Jz[:, ii, :, ii, :] = (s1[..., None] * W[:, None]).transpose(1, 0, 2, 3)
        Jz = Jz.reshape(R, B * m, B * n)
        Jz += self._skip_matrix(B)  # the identity of a residual skip, else 0
        # Jx: unit k of sample i sees only row k of W (and bias c_k)
        Jx = np.zeros((R, B * m, p))
        _view(Jx[:, :, :mn], (R, B, m, m, n))[:, :, kk, kk, :] = s1[..., None] * Z[:, :, None, :]
        if self.bias:
            _view(Jx[:, :, mn:], (R, B, m, m))[:, :, kk, kk] = s1
        return (Jz, Jx) + _stacked_curvature(W, Z, b * s1, Lam, self.bias)


class Residual(Dense):
    r"""A residual block :math:`z_{out} = z_{in} + σ(Z W^T + c)` of one width.

    The skip is linear and parameter-free, so it adds the identity to
    :math:`J_z` and :math:`b_{out}` to :math:`b_{in}`, and nothing to the
    curvature blocks.
    """

    def __init__(self, width, activation="tanh", bias=True):
        super().__init__(width, width, activation, bias)

    def __repr__(self):
        name = getattr(self.activation, "name", repr(self.activation))
        return f"Residual({self.n_in}, activation={name!r}, bias={self.bias})"

    def _output(self, U, Z):
        return Z + self.activation.f(U)

    def _skip(self, vec):
        return np.asarray(vec)

    def _skip_matrix(self, B):
        return np.eye(B * self.n_in)


class LossHead(AffineLayer):
    r"""A final affine map fused with a batch-mean loss; the output is the
    scalar training loss, so ``a_out = 1`` and ``b_out`` has shape (1,).

    A head needs targets: :meth:`bind` returns a copy that holds them and
    follows the plain layer protocol.  With the loss :math:`ℓ(u)` of the
    logits and :math:`β` = ``b_out[0]``,
    :math:`D = β ∇ℓ(u)` and :math:`Λ = β ∇^2 ℓ(u)`.
    """

    is_loss = True

    def __init__(self, n_in, n_out, bias=True):
        super().__init__(n_in, n_out, bias)
        self.y = None

    def out_dim(self, batch):
        return 1

    def bind(self, y):
        """Return a copy of this head holding the validated targets ``y``."""
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.y = self.check_targets(y)
        return bound

    def check_targets(self, y, batch=None):
        """Validate and return a read-only copy of the targets."""
        raise NotImplementedError

    def logits(self, x, z_in):
        """The head's affine outputs :math:`u = Z W^T + c`, shape (B, n_out)."""
        B, Z = self._unflat(z_in)
        return self._affine(x, Z)

    def _targets(self, U):
        if self.y is None:
            raise ValueError(f"{self!r} has no targets: call .bind(y) first")
        if self.y.shape[0] != U.shape[0]:
            raise ValueError(
                f"y: expected {U.shape[0]} targets to match the batch, "
                f"got {self.y.shape[0]}"
            )
        return self.y

    def loss_terms(self, U):
        """Return ``(loss, grad, hess_blocks)`` of the loss in the logits:
        a float, shape (B, n_out) and (B, n_out, n_out)."""
        raise NotImplementedError

    def _loss_hvp(self, U, dU):
        """:math:`∇^2 ℓ(u)\\, dU` without forming the blocks."""
        raise NotImplementedError

    def _beta(self, b_out):
        b_out = np.asarray(b_out)
        if b_out.size != 1:
            raise ValueError(f"b_out: expected shape (1,) for a loss head, got {b_out.shape}")
        return b_out.reshape(())

    def _output(self, U, Z):
        return np.array([self.loss_terms(U)[0]])

    def _delta(self, U, b_out):
        return self._beta(b_out) * self.loss_terms(U)[1]

    def _lambda(self, U, b_out, dU):
        return self._beta(b_out) * self._loss_hvp(U, dU)

    def _lambda_blocks(self, U, b_out):
        return self._beta(b_out) * self.loss_terms(U)[2]

    def _out_jvp(self, U, dU):
        return np.array([np.sum(self.loss_terms(U)[1] * dU)])

    def _out_jacobian(self, U):
        return self.loss_terms(U)[1].reshape(1, -1)

    def stack_key(self):
        if type(self) not in (SoftmaxCrossEntropy, SquaredError):
            return None
        return ("head", id(self))  # a head is the last layer: never stacked

    def stacked_blocks(self, xs, zs_in, bs_out):
        r"""The head's blocks, entrywise, with a leading axis of length 1.

        The output is the scalar loss, so :math:`J_z` and :math:`J_x` are
        rows: :math:`J_z[(i,h)] = (∇ℓ\, W)_{ih}`,
        :math:`J_x = (\mathrm{vec}(∇ℓ^T Z), \sum_i ∇ℓ_i)`; :math:`D = β∇ℓ`,
        :math:`Λ_i = β∇^2_{u_i}ℓ`.
        """
        (x,), (z_in,), (b_out,) = xs, zs_in, bs_out
        B, Z = self._unflat(z_in)
        W, _ = self.unpack(x)
        _, grad, hess = self.loss_terms(self._affine(x, Z))
        beta = self._beta(b_out)
        Jz = (grad @ W).reshape(1, 1, -1)
        Jx = (grad.T @ Z).ravel()
        if self.bias:
            Jx = np.concatenate([Jx, grad.sum(axis=0)])
        curv = _stacked_curvature(W[None], Z[None], (beta * grad)[None], (beta * hess)[None], self.bias)
        return (Jz, Jx.reshape(1, 1, -1)) + curv


def _others(p):
    r""":math:`\sum_{j \ne k} p_{ij}` for every ``(i, k)``, summed directly:
    ``1 - p`` or ``p.sum() - p`` cancel when :math:`p_{ik} \to 1`."""
    C = p.shape[1]
    return p @ (1.0 - np.eye(C, dtype=p.dtype))


class SoftmaxCrossEntropy(LossHead):
    r"""Logits :math:`u = Z W^T + c` and the batch-mean cross-entropy.

    Exactly ``torch.nn.functional.cross_entropy(u, y)`` (mean reduction):

    .. math::

        ℓ(u) = \frac1B \sum_i \Bigl(\log\sum_k e^{u_{ik}} - u_{i y_i}\Bigr),\quad
        ∇ℓ = \frac{p - Y}{B},\quad
        ∇^2_{u_i} ℓ = \frac{\mathrm{diag}(p_i) - p_i p_i^T}{B},

    with :math:`p_i = \mathrm{softmax}(u_i)` and :math:`Y` one-hot labels.

    Parameters
    ----------
    n_in : int
        Input width.
    n_classes : int
        Number of classes.
    bias : bool
        Whether the logits have a bias.  With a bias, the Hessian has a null
        space (adding a constant to every class's bias changes nothing).
    """

    def __init__(self, n_in, n_classes, bias=True):
        super().__init__(n_in, n_classes, bias)
        if self.n_out < 2:
            raise ValueError(
                f"n_classes: expected at least 2 classes, got {self.n_out} "
                f"(with one class the loss is identically 0)"
            )

    @property
    def n_classes(self):
        return self.n_out

    def __repr__(self):
        return f"SoftmaxCrossEntropy({self.n_in}, {self.n_out}, bias={self.bias})"

    def check_targets(self, y, batch=None):
        y = np.asarray(y)
        if y.ndim != 1 or (batch is not None and y.shape[0] != batch):
            want = f"({batch},)" if batch is not None else "(B,)"
            raise ValueError(f"y: expected integer labels of shape {want}, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.n_out):
            bad = y[(y < 0) | (y >= self.n_out)][0]
            raise ValueError(
                f"y: labels must lie in [0, {self.n_out}), got {int(bad)}"
            )
        y = y.astype(np.intp, copy=True)
        y.flags.writeable = False
        return y

    def _probs(self, U):
        shifted = U - U.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True), shifted

    def loss_terms(self, U):
        y = self._targets(U)
        B = U.shape[0]
        p, shifted = self._probs(U)
        rows = np.arange(B)
        logsumexp = np.log(np.exp(shifted).sum(axis=1))
        loss = np.mean(logsumexp - shifted[rows, y])
        grad = p.copy()
        grad[rows, y] = -_others(p)[rows, y]  # p_y - 1, without cancellation
        grad /= B
        return loss, grad, self._softmax_hessian(p) / B

    @staticmethod
    def _softmax_hessian(p):
        r""":math:`\mathrm{diag}(p) - p p^T` per sample, shape (B, C, C).

        The diagonal :math:`p_k (1 - p_k)` is written as
        :math:`p_k \sum_{j \ne k} p_j`: for a saturated softmax
        (:math:`p_k \to 1`) the difference ``p - p*p`` cancels and loses
        relative accuracy, the sum of the other probabilities does not.
        """
        hess = -p[:, :, None] * p[:, None, :]
        k = np.arange(p.shape[1])
        hess[:, k, k] = p * _others(p)
        return hess

    def _loss_hvp(self, U, dU):
        r""":math:`(∇^2 ℓ\, dU)_{ik} = \frac1B p_{ik} \sum_j p_{ij} (dU_{ik} - dU_{ij})`,
        the same product without the cancellation of ``p dU - p (p·dU)``."""
        p, _ = self._probs(U)
        diff = dU[:, :, None] - dU[:, None, :]
        return p * np.einsum("bj,bkj->bk", p, diff) / U.shape[0]


class SquaredError(LossHead):
    r"""Outputs :math:`u = Z W^T + c` and the mean squared error.

    Exactly ``torch.nn.functional.mse_loss(u, y)``, the mean over all
    :math:`B n_{out}` elements:

    .. math::

        ℓ(u) = \frac{1}{B n_{out}} \sum_{ik} (u_{ik} - y_{ik})^2, \quad
        ∇ℓ = \frac{2 (u - y)}{B n_{out}}, \quad
        ∇^2_{u_i} ℓ = \frac{2 I}{B n_{out}}.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths; targets have shape (B, n_out).
    bias : bool
        Whether the output has a bias.
    """

    def __repr__(self):
        return f"SquaredError({self.n_in}, {self.n_out}, bias={self.bias})"

    def check_targets(self, y, batch=None):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != self.n_out or (batch is not None and y.shape[0] != batch):
            want = f"({batch if batch is not None else 'B'}, {self.n_out})"
            raise ValueError(f"y: expected float targets of shape {want}, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.floating):
            raise TypeError(f"y: expected floating-point targets, got dtype {y.dtype}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y: targets must be finite, got NaN or inf")
        y = y.astype(np.float64, copy=True)
        y.flags.writeable = False
        return y

    def _scale(self, U):
        return 2.0 / U.size

    def loss_terms(self, U):
        r = U - self._targets(U)
        loss = np.mean(r * r)
        hess = np.broadcast_to(self._scale(U) * np.eye(self.n_out), (U.shape[0], self.n_out, self.n_out))
        return loss, self._scale(U) * r, hess

    def _loss_hvp(self, U, dU):
        return self._scale(U) * dU
