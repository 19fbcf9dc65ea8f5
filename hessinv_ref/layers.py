r"""Layers with hand-written first- and second-order derivatives.

Every layer is one link :math:`z_l = f_l(z_{l-1}; x_l)` of the chain in
:ref:`notation §1 <notation-1>`.  Activations are flat, sample-major vectors: a batch of ``B``
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
:math:`b_{out} \cdot z_{out}` (:ref:`notation §3 <notation-3>`).  Anything that implements it
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

Arrays
------
Every method computes with the active array namespace
(:mod:`hessinv_ref.backend`): arguments are arrays of the active backend
(or Python lists and numbers), results are arrays of that backend in the
dtype of the arguments.  Only the Array API standard is used: Kronecker
products, block diagonals and diagonal patterns are products with identity
matrices placed by broadcasting, and blocks are assembled with ``concat``,
never by integer-array indexing or by writing through a reshaped view.
:meth:`AffineLayer.init` is the one exception: it draws on the host with
NumPy's generator, and :meth:`~hessinv_ref.network.Network.init` moves the
result.
"""

from __future__ import annotations

import math
import numbers

from .activations import get_activation
from .backend import get_backend, xp

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
    """``value`` as an int if it is a positive integer, else a TypeError or
    ValueError naming ``name`` (shared with :mod:`hessinv_ref.testing`)."""
    # numbers.Integral covers Python ints and NumPy's integer scalars
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def _is_bool(value):
    # NumPy's scalar bool (``numpy.bool_``, named ``bool`` since NumPy 2) is
    # not a subclass of Python's bool
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def _as_array(a, name):
    """``a`` as an array of the active backend; a clear error for an array of
    another library or device (see :meth:`hessinv_ref.backend.Backend.asarray`)."""
    return get_backend().asarray(a, name)


def _eye(n, like):
    """The identity of size ``n`` in the dtype and on the device of ``like``."""
    return xp.eye(n, dtype=like.dtype, device=like.device)


def _stack(arrays):
    """``xp.stack(arrays)`` for a long list of same-shape arrays: NumPy's
    ``stack`` loops over them in Python, ``concat`` in C, and the reshape
    back to (R, ...) is the same array."""
    return xp.reshape(xp.concat(arrays, axis=0), (len(arrays),) + tuple(arrays[0].shape))


def _block_diag(blocks):
    r"""Block-diagonal matrix from a stack of blocks of shape (B, r, c):
    shape (B r, B c), entry :math:`[(i,a),(j,b)] = δ_{ij}\, \mathrm{blocks}[i,a,b]`.

    The Kronecker delta is the identity :math:`I_B` broadcast against the
    blocks (the Array API has no ``block_diag``)."""
    B, r, c = blocks.shape
    delta = _eye(B, blocks)[:, None, :, None]           # (B, 1, B, 1): δ_ij
    return xp.reshape(delta * blocks[:, :, None, :], (B * r, B * c))


# -- the vectorised block builder ------------------------------------------------
#
# ``AffineLayer.curvature`` and ``.jacobians`` above build the blocks the way
# the docstrings derive them: explicit ``A_x``, ``A_z = I_B ⊗ W``, ``Λ`` as a
# block-diagonal matrix, and products of them.  That is O(B^2) memory for the
# Kronecker factors and a dozen array calls per layer.  The functions below
# compute the *same* entries from each block's nonzero pattern, and for ``R``
# layers of identical shape at once (leading axis ``R``), so a deep chain
# pays the Python overhead once per run of layers, not once per layer.  Each
# pattern is a product with an identity matrix (a Kronecker delta) placed on
# the right axes by broadcasting, and the blocks are assembled with
# ``concat``: no integer-array indexing and no writing through a reshaped
# view, which CuPy and the Array API do not guarantee.
# ``tests/test_fast_paths.py`` checks they agree with the explicit route to
# rounding.


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
    W : array, shape (R, m, n)
        Weights.
    Z : array, shape (R, B, n)
        Layer inputs.
    D : array, shape (R, B, m)
        The delta :math:`∂(b_{out}\cdot z_{out})/∂u`.
    Lam : array, shape (R, B, m, m)
        The per-sample blocks of :math:`Λ`.
    bias : bool

    Returns
    -------
    Hxx : array, shape (R, p, p)
    Hxz : array, shape (R, p, B n)
    Hzz : array, shape (R, B n, B n)
    """
    R, m, n = W.shape
    B = Z.shape[1]
    mn = m * n
    Lam_flat = xp.reshape(Lam, (R, B, m * m))      # [r, i, (k,l)]
    # Hxx, weight-weight part: one GEMM over the samples, then the
    # (k,l),(j,h) -> (k,j),(l,h) reordering of the Kronecker product.
    ZZ = xp.reshape(Z[:, :, :, None] * Z[:, :, None, :], (R, B, n * n))
    KL_JH = xp.reshape(xp.matmul(Lam_flat.mT, ZZ), (R, m, m, n, n))
    Hxx = xp.reshape(xp.permute_dims(KL_JH, (0, 1, 3, 2, 4)), (R, mn, mn))
    # Λ_i W, shape (R, B, m, n): shared by Hxz and Hzz
    LW = xp.matmul(Lam, W[:, None, :, :])
    LW_kih = xp.permute_dims(LW, (0, 2, 1, 3))      # [r, k, i, h]
    # Hxz, weight rows (R, m, n, B, n): the product term Z_ij (Λ_i W)[k,h],
    # then the cross term D_ik on j == h (δ_jh: the identity I_n)
    Zt = xp.permute_dims(Z, (0, 2, 1))              # [r, j, i]
    Dt = xp.permute_dims(D, (0, 2, 1))              # [r, k, i]
    HW = (Zt[:, None, :, :, None] * LW_kih[:, :, None, :, :]
          + Dt[:, :, None, :, None] * _eye(n, W)[:, None, :])
    Hxz = xp.reshape(HW, (R, mn, B * n))
    if bias:
        # [r, (k,j), l] = Σ_i Λ_i[k,l] Z_ij, from the same GEMM pattern
        KL_J = xp.reshape(xp.matmul(Lam_flat.mT, Z), (R, m, m, n))
        HWc = xp.reshape(xp.permute_dims(KL_J, (0, 1, 3, 2)), (R, mn, m))
        Hcc = xp.sum(Lam, axis=1)
        Hxx = xp.concat([xp.concat([Hxx, HWc], axis=2), xp.concat([HWc.mT, Hcc], axis=2)], axis=1)
        Hxz = xp.concat([Hxz, xp.reshape(LW_kih, (R, m, B * n))], axis=1)
    # Hzz: W^T Λ_i W on the diagonal blocks of the sample-major layout (δ_ii')
    WtLW = xp.matmul(W.mT[:, None, :, :], LW)             # [r, i, h, h']
    Hzz = _eye(B, W)[:, None, :, None] * WtLW[:, :, :, None, :]
    return Hxx, Hxz, xp.reshape(Hzz, (R, B * n, B * n))


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
        return self._batch(_as_array(z_in, "z_in"))

    def _batch(self, z_in):
        if z_in.ndim != 1 or z_in.shape[0] % self.n_in != 0 or z_in.shape[0] == 0:
            raise ValueError(
                f"z_in: expected a flat vector whose length is a positive "
                f"multiple of n_in={self.n_in}, got shape {z_in.shape}"
            )
        return z_in.shape[0] // self.n_in


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
        if not _is_bool(bias):
            raise TypeError(f"bias: expected a bool, got {bias!r}")
        self.bias = bool(bias)
        self.n_params = self.n_out * self.n_in + (self.n_out if self.bias else 0)

    # -- parameters ---------------------------------------------------------

    def unpack(self, x):
        """Split a flat parameter vector into ``(W, c)``.

        Returns ``W`` of shape (n_out, n_in) and ``c`` of shape (n_out,), or
        ``None`` without bias: views of ``x`` where the array library makes
        them (NumPy does), so never write into them.
        """
        x = _as_array(x, "x")
        if x.shape != (self.n_params,):
            raise ValueError(
                f"x: expected shape ({self.n_params},) for {self!r}, got {x.shape}"
            )
        return self._split(x)

    def _split(self, x):
        """:meth:`unpack` of an ``x`` known to be valid (the layer's own
        calls, after the first check): no validation on the hot path."""
        n_w = self.n_out * self.n_in
        W = get_backend().xp.reshape(x[:n_w], (self.n_out, self.n_in))
        return W, (x[n_w:] if self.bias else None)

    def pack(self, weight, bias=None):
        """Flatten ``weight`` (n_out, n_in) and ``bias`` (n_out,) into a new
        ``x`` on the active backend.

        Raises
        ------
        ValueError
            For a wrong shape, or a bias given to a layer without one.
        TypeError
            For an array of another backend, or a bias whose dtype differs
            from the weight's (no silent promotion).
        """
        weight = _as_array(weight, "weight")
        if weight.shape != (self.n_out, self.n_in):
            raise ValueError(
                f"weight: expected shape {(self.n_out, self.n_in)}, got {weight.shape}"
            )
        w = xp.reshape(weight, (-1,))
        if not self.bias:
            if bias is not None:
                raise ValueError(f"bias: {self!r} has no bias, got an array")
            return xp.asarray(w, copy=True)
        bias = _as_array(bias, "bias") if bias is not None else None
        if bias is None or bias.shape != (self.n_out,):
            raise ValueError(
                f"bias: expected shape ({self.n_out},), got "
                f"{None if bias is None else bias.shape}"
            )
        if bias.dtype != weight.dtype:
            raise TypeError(
                f"bias: expected the dtype of weight ({weight.dtype}), got {bias.dtype}"
            )
        return xp.concat([w, bias])

    def init(self, rng, scale=1.0):
        r"""Draw ``x`` as ``torch.nn.Linear`` does, times ``scale``.

        Weight, then bias, each :math:`\mathcal U(-s/\sqrt{n_{in}}, s/\sqrt{n_{in}})`
        with :math:`s` = ``scale``, drawn from the ``numpy.random.Generator``
        ``rng`` in that order.

        Returns
        -------
        numpy.ndarray, shape (n_params,), float64
            On the host, whatever the active backend: the Array API has no
            random number generator, so the draws come from NumPy's (the
            same stream as before backends existed, and as PyTorch's layout),
            and :meth:`hessinv_ref.network.Network.init` moves the whole
            parameter vector to the backend once, explicitly.
        """
        import numpy as np  # the host RNG's arrays; no math happens here

        bound = scale / math.sqrt(self.n_in)
        W = rng.uniform(-bound, bound, size=(self.n_out, self.n_in))
        c = rng.uniform(-bound, bound, size=self.n_out) if self.bias else None
        return np.concatenate([W.ravel(), c]) if self.bias else W.ravel()

    # -- the affine map and its derivatives ---------------------------------
    #
    # Every protocol method calls ``_affine`` first, which validates ``x``
    # (``unpack``); ``v`` is validated where it first appears
    # (``_affine_jvp``).  The later helpers split the already-checked vectors
    # without checking them again.
    #
    # These helpers and the protocol methods below run once per layer in
    # every R-operator pass, on tiny arrays, so Python overhead is their
    # cost: each looks the active namespace up once,
    # ``xp = get_backend().xp`` (the usual Array API idiom), rather than
    # through the module-level proxy ``xp`` at every operation.

    def _affine(self, x, Z):
        """:math:`u = Z W^T + c`, shape (B, n_out)."""
        W, c = self.unpack(x)
        U = Z @ W.T
        return U + c if self.bias else U

    def _affine_jvp(self, x, Z, T, v):
        """Directional derivative of ``u`` along ``(t_in, v)``:
        :math:`dU = T W^T + Z V_W^T + v_c`."""
        W, _ = self._split(x)
        V_W, v_c = self.unpack(v)
        dU = T @ W.T + Z @ V_W.T
        return dU + v_c if self.bias else dU

    def _affine_vjp(self, x, Z, D):
        """Pull a cotangent ``D`` on ``u`` back: returns ``(D W, vec(D^T Z, Σ_i D_i))``,
        shapes (B, n_in) and (p,)."""
        xp = get_backend().xp
        W, _ = self._split(x)
        g_x = xp.reshape(D.T @ Z, (-1,))
        if self.bias:
            g_x = xp.concat([g_x, xp.sum(D, axis=0)])
        return D @ W, g_x

    def _cross(self, D, T, v):
        r"""The bilinear cross term of ``u`` contracted with ``D``.

        Since :math:`∂^2 u_{ik} / ∂W_{kj} ∂z_{ij} = 1`, the term
        :math:`C = \sum_{ik} D_{ik} ∂^2 u_{ik}/∂x∂z` gives
        :math:`C^T v = D V_W` and :math:`C t = \mathrm{vec}(D^T T, 0)`.
        """
        xp = get_backend().xp
        V_W, _ = self._split(v)
        Ct = xp.reshape(D.T @ T, (-1,))
        if self.bias:
            Ct = xp.concat([Ct, xp.zeros(self.n_out, dtype=Ct.dtype, device=Ct.device)])
        return D @ V_W, Ct

    def _A_x(self, Z):
        """Explicit :math:`A_x = ∂u/∂x`, shape (B n_out, p).

        Row ``(i, k)`` has ``z_i`` in the columns of ``W[k, :]`` and a 1 in the
        column of ``c[k]``: :math:`A_x[(i,k),(l,j)] = δ_{kl} Z_{ij}` and
        :math:`A_x[(i,k), c_l] = δ_{kl}`."""
        B, m = Z.shape[0], self.n_out
        eye = _eye(m, Z)
        # δ_kl on axes (k, l), Z_ij on axes (i, j): shape (B, m, m, n_in)
        A_W = xp.reshape(eye[None, :, :, None] * Z[:, None, None, :], (B * m, m * self.n_in))
        if not self.bias:
            return A_W
        A_c = xp.reshape(xp.broadcast_to(eye, (B, m, m)), (B * m, m))  # I_m stacked B times
        return xp.concat([A_W, A_c], axis=1)

    def _A_z(self, x, B):
        """Explicit :math:`A_z = ∂u/∂z_{in} = I_B ⊗ W`, shape (B n_out, B n_in):
        :math:`A_z[(i,k),(i',j)] = δ_{ii'} W_{kj}`."""
        W, _ = self.unpack(x)
        m, n = W.shape
        kron = _eye(B, W)[:, None, :, None] * W[None, :, None, :]  # (B, m, B, n)
        return xp.reshape(kron, (B * m, B * n))

    def _C(self, D):
        """Explicit cross term :math:`C`, shape (p, B n_in): rows of ``W[k, j]``
        hold ``D[i, k]`` at column ``(i, j)``; bias rows are zero:
        :math:`C[(k,j),(i,l)] = D_{ik} δ_{jl}`."""
        B, m, n = D.shape[0], self.n_out, self.n_in
        # D_ik on axes (k, i), δ_jl on axes (j, l): shape (m, n, B, n)
        C_W = xp.reshape(D.T[:, None, :, None] * _eye(n, D)[None, :, None, :], (m * n, B * n))
        if not self.bias:
            return C_W
        return xp.concat([C_W, xp.zeros((m, B * n), dtype=D.dtype, device=D.device)], axis=0)

    # -- the protocol, written once for every affine layer -------------------

    def _unflat(self, z_in):
        be = get_backend()
        z_in = be.asarray(z_in, "z_in")
        B = self._batch(z_in)
        return B, be.xp.reshape(z_in, (B, self.n_in))

    def _unflat_tangent(self, B, t_in):
        be = get_backend()
        return be.xp.reshape(be.asarray(t_in, "t_in"), (B, self.n_in))

    def forward(self, x, z_in):
        """:math:`z_{out} = φ(Z W^T + c, Z)`, flat (a_out,)."""
        xp = get_backend().xp
        B, Z = self._unflat(z_in)
        return xp.reshape(self._output(self._affine(x, Z), Z), (-1,))

    def vjp(self, x, z_in, b_out):
        """Backprop: :math:`b_{in} = b_{out} J_z`, :math:`g_x = b_{out} J_x`."""
        xp = get_backend().xp
        B, Z = self._unflat(z_in)
        U = self._affine(x, Z)
        D = self._delta(U, b_out)
        b_in, g_x = self._affine_vjp(x, Z, D)
        return xp.reshape(b_in, (-1,)) + self._skip(b_out), g_x

    def jvp(self, x, z_in, t_in, v):
        """Forward tangent: :math:`t_{out} = J_z t_{in} + J_x v`."""
        xp = get_backend().xp
        B, Z = self._unflat(z_in)
        T = self._unflat_tangent(B, t_in)
        U = self._affine(x, Z)
        dU = self._affine_jvp(x, Z, T, v)
        return xp.reshape(self._out_jvp(U, dU), (-1,)) + self._skip(t_in)

    def second_order(self, x, z_in, b_out, t_in, v):
        r"""The R-backward terms :math:`(H_{zz} t + H_{xz}^T v,\ H_{xz} t + H_{xx} v)`.

        They are the derivative of :meth:`vjp` along ``(t_in, v)`` at fixed
        ``b_out``: the delta moves by :math:`R\{D\} = Λ\, dU`, and the
        bilinear affine map adds the cross term :math:`C`.
        """
        xp = get_backend().xp
        B, Z = self._unflat(z_in)
        T = self._unflat_tangent(B, t_in)
        U = self._affine(x, Z)
        RD = self._lambda(U, b_out, self._affine_jvp(x, Z, T, v))
        D = self._delta(U, b_out)
        via_u_z, via_u_x = self._affine_vjp(x, Z, RD)
        cross_z, cross_x = self._cross(D, T, v)
        return xp.reshape(via_u_z + cross_z, (-1,)), via_u_x + cross_x

    def jacobians(self, x, z_in):
        r"""Explicit :math:`J_z = (∂z_{out}/∂u) A_z` (+ I for a skip) and
        :math:`J_x = (∂z_{out}/∂u) A_x`, shapes (a_out, a_in), (a_out, p)."""
        B, Z = self._unflat(z_in)
        G = self._out_jacobian(self._affine(x, Z))
        Jz = G @ self._A_z(x, B) + self._skip_matrix(B, Z)
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
        xs, zs_in, bs_out : sequences of ``R`` arrays
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

    def _skip_matrix(self, B, like):
        """The skip's :math:`∂z_{out}/∂z_{in}` for a batch of ``B`` (dtype and
        device of ``like``); none here."""
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
        be = get_backend()
        return be.xp.reshape(be.asarray(b_out, "b_out"), U.shape)

    def _output(self, U, Z):
        return self.activation.f(U)

    def _delta(self, U, b_out):
        return self._b(U, b_out) * self.activation.df(U)

    def _lambda(self, U, b_out, dU):
        return self._b(U, b_out) * self.activation.d2f(U) * dU

    def _lambda_blocks(self, U, b_out):
        w = self._b(U, b_out) * self.activation.d2f(U)
        return w[:, :, None] * _eye(self.n_out, w)  # diag(w_i) per sample

    def _out_jvp(self, U, dU):
        return self.activation.df(U) * dU

    def _out_jacobian(self, U):
        d = xp.reshape(self.activation.df(U), (-1,))
        return d[:, None] * _eye(d.shape[0], d)  # diag(σ'(u))

    def _stacked_params(self, xs):
        """The weights (R, n_out, n_in) and biases (R, n_out) or ``None`` of a
        run, split once for the whole run."""
        mn = self.n_out * self.n_in
        Xs = _stack(xs)
        W = xp.reshape(Xs[:, :mn], (len(xs), self.n_out, self.n_in))
        return W, (Xs[:, mn:] if self.bias else None)

    def forward_run(self, xs, z_in):
        r""":meth:`forward` through a run of layers without re-validating and
        re-unpacking at every layer: :math:`U_r = Z_{r-1} W_r^T + c_r`,
        :math:`Z_r = φ(U_r, Z_{r-1})`.  The cache is the stack of the
        pre-activations :math:`U_r`, shape (R, B, n_out), which the backward
        pass needs (``vjp`` would recompute them), and of the weights
        :math:`W_r`, shape (R, n_out, n_in)."""
        R = len(xs)
        W, c = self._stacked_params(xs)
        Z = xp.reshape(z_in, (-1, self.n_in))
        # The loop is the only sequential work: two products and the
        # activation per layer, everything else once per run.
        Us, Zs = [None] * R, [None] * R
        for r in range(R):
            U = Z @ W[r, ...].T
            if c is not None:
                U = U + c[r, ...]
            Us[r] = U
            Zs[r] = Z = self._output(U, Z)
        flat = xp.reshape(_stack(Zs), (R, -1))  # z_r = vec(Z_r), row r
        return [flat[r, ...] for r in range(R)], (_stack(Us), W)

    def vjp_run(self, xs, zs_in, b_out, cache):
        r""":meth:`vjp` through the run: :math:`D_r = b_r ⊙ σ'(U_r)`,
        :math:`b_{r-1} = D_r W_r` (+ :math:`b_r` for a skip).  The only
        sequential work is those two products; :math:`σ'` of every layer and
        the gradients :math:`g_r = (\mathrm{vec}(D_r^T Z_{r-1}), \sum_i D_{r,i})`
        are computed for the whole run at once."""
        m, n = self.n_out, self.n_in
        U, W = cache
        R, B = U.shape[:2]
        S1 = self.activation.df(U)  # σ'(U_r) of the whole run
        skip = isinstance(self, Residual)
        b = xp.reshape(b_out, (B, m))  # b_r as a (B, n_out) matrix
        Ds, bs = [None] * R, [None] * R
        for r in range(R - 1, -1, -1):
            Ds[r] = D = S1[r, ...] * b
            b_in = D @ W[r, ...]
            bs[r] = b = b_in + b if skip else b_in
        D = _stack(Ds)
        bs_in = xp.reshape(_stack(bs), (R, B * n))  # b_{r-1} = vec(...), row r
        Z = xp.reshape(_stack(zs_in), (R, B, n))
        G = xp.reshape(xp.matmul(D.mT, Z), (R, m * n))
        if self.bias:
            G = xp.concat([G, xp.sum(D, axis=1)], axis=1)
        return [bs_in[r, ...] for r in range(R)], [G[r, ...] for r in range(R)]

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
        :meth:`AffineLayer.stacked_blocks`.  Every Kronecker delta of these
        patterns (same sample, same unit) is an identity matrix broadcast
        against the values.
        """
        R, m, n = len(xs), self.n_out, self.n_in
        mn = m * n
        W, c = self._stacked_params(xs)
        Z = xp.reshape(_stack(zs_in), (R, -1, n))
        B = Z.shape[1]
        U = xp.matmul(Z, W.mT)
        if self.bias:
            U = U + c[:, None, :]
        b = xp.reshape(_stack(bs_out), (R, B, m))
        s1 = self.activation.df(U)
        eye_m, eye_B = _eye(m, W), _eye(B, W)
        Lam = (b * self.activation.d2f(U))[..., None] * eye_m  # diag(b_i ⊙ σ''_i)
        # Jz: diag(σ'_i) W on the diagonal blocks (sample i to sample i'),
        # [r, i, k, i', h] = δ_ii' σ'_ik W_kh
        Jz = eye_B[:, None, :, None] * (s1[..., None] * W[:, None, :, :])[:, :, :, None, :]
        Jz = xp.reshape(Jz, (R, B * m, B * n)) + self._skip_matrix(B, W)  # I of a residual skip
        # Jx: unit k of sample i sees only row k of W (and bias c_k),
        # [r, i, k, l, j] = δ_kl σ'_ik Z_ij
        Jx = eye_m[:, :, None] * (s1[..., None] * Z[:, :, None, :])[:, :, :, None, :]
        Jx = xp.reshape(Jx, (R, B * m, mn))
        if self.bias:
            Jc = xp.reshape(s1[..., None] * eye_m, (R, B * m, m))
            Jx = xp.concat([Jx, Jc], axis=2)
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
        return _as_array(vec, "vec")

    def _skip_matrix(self, B, like):
        return _eye(B * self.n_in, like)


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

    def bind(self, y, dtype=None):
        """Return a copy of this head holding the validated targets ``y``
        (see :meth:`check_targets` for ``dtype``)."""
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.y = self.check_targets(y, dtype=dtype)
        return bound

    def check_targets(self, y, batch=None, dtype=None):
        """Validate and return a read-only copy of the targets, an array of
        the active backend.

        Parameters
        ----------
        y : array
            The targets.
        batch : int, optional
            The batch size they must match.
        dtype : dtype, optional
            The working precision (the parameters' dtype): floating targets
            must have it (no silent precision change).  ``None``: any.
        """
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
        a 0-d array, shape (B, n_out) and (B, n_out, n_out)."""
        raise NotImplementedError

    def _loss_hvp(self, U, dU):
        """:math:`∇^2 ℓ(u)\\, dU` without forming the blocks."""
        raise NotImplementedError

    def _beta(self, b_out):
        b_out = _as_array(b_out, "b_out")
        if math.prod(b_out.shape) != 1:
            raise ValueError(f"b_out: expected shape (1,) for a loss head, got {b_out.shape}")
        return xp.reshape(b_out, ())

    def _output(self, U, Z):
        return xp.reshape(self.loss_terms(U)[0], (1,))

    def _delta(self, U, b_out):
        return self._beta(b_out) * self.loss_terms(U)[1]

    def _lambda(self, U, b_out, dU):
        return self._beta(b_out) * self._loss_hvp(U, dU)

    def _lambda_blocks(self, U, b_out):
        return self._beta(b_out) * self.loss_terms(U)[2]

    def _out_jvp(self, U, dU):
        return xp.reshape(xp.sum(self.loss_terms(U)[1] * dU), (1,))

    def _out_jacobian(self, U):
        return xp.reshape(self.loss_terms(U)[1], (1, -1))

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
        Jz = xp.reshape(grad @ W, (1, 1, -1))
        Jx = xp.reshape(grad.T @ Z, (-1,))
        if self.bias:
            Jx = xp.concat([Jx, xp.sum(grad, axis=0)])
        curv = _stacked_curvature(W[None, ...], Z[None, ...], (beta * grad)[None, ...], (beta * hess)[None, ...], self.bias)
        return (Jz, xp.reshape(Jx, (1, 1, -1))) + curv


def _others(p):
    r""":math:`\sum_{j \ne k} p_{ij}` for every ``(i, k)``, summed directly:
    ``1 - p`` or ``p.sum() - p`` cancel when :math:`p_{ik} \to 1`."""
    return p @ (1.0 - _eye(p.shape[1], p))


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

    def check_targets(self, y, batch=None, dtype=None):
        be = get_backend()
        y = be.asarray(y, "y")
        if y.ndim != 1 or (batch is not None and y.shape[0] != batch):
            want = f"({batch},)" if batch is not None else "(B,)"
            raise ValueError(f"y: expected integer labels of shape {want}, got shape {y.shape}")
        if not xp.isdtype(y.dtype, "integral"):
            raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
        if y.shape[0] and (int(xp.min(y)) < 0 or int(xp.max(y)) >= self.n_out):
            bad = (y < 0) | (y >= self.n_out)
            # argmax finds the first offending label (the standard has no
            # boolean-mask indexing without data-dependent shapes)
            first = int(xp.argmax(xp.astype(bad, xp.int8)))
            raise ValueError(
                f"y: labels must lie in [0, {self.n_out}), got {int(y[first])}"
            )
        return be.read_only(xp.asarray(y, copy=True))

    def _probs(self, U):
        shifted = U - xp.max(U, axis=1, keepdims=True)
        e = xp.exp(shifted)
        return e / xp.sum(e, axis=1, keepdims=True), shifted

    def _one_hot(self, U):
        """The labels as a boolean mask of shape (B, C): ``Y[i, k] = (y_i == k)``."""
        y = self._targets(U)
        classes = xp.arange(U.shape[1], dtype=y.dtype, device=y.device)
        return y[:, None] == classes[None, :]

    def loss_terms(self, U):
        Y = self._one_hot(U)
        B = U.shape[0]
        p, shifted = self._probs(U)
        logsumexp = xp.log(xp.sum(xp.exp(shifted), axis=1))
        shifted_y = xp.sum(xp.where(Y, shifted, xp.zeros_like(shifted)), axis=1)  # u_{i y_i} - max_k u_ik
        loss = xp.mean(logsumexp - shifted_y)
        grad = xp.where(Y, -_others(p), p) / B  # p_y - 1 without cancellation
        return loss, grad, self._softmax_hessian(p) / B

    @staticmethod
    def _softmax_hessian(p):
        r""":math:`\mathrm{diag}(p) - p p^T` per sample, shape (B, C, C).

        The diagonal :math:`p_k (1 - p_k)` is written as
        :math:`p_k \sum_{j \ne k} p_j`: for a saturated softmax
        (:math:`p_k \to 1`) the difference ``p - p*p`` cancels and loses
        relative accuracy, the sum of the other probabilities does not.
        """
        C = p.shape[1]
        k = xp.arange(C, device=p.device)
        diagonal = k[:, None] == k[None, :]  # (C, C) mask
        return xp.where(diagonal, (p * _others(p))[:, :, None], -p[:, :, None] * p[:, None, :])

    def _loss_hvp(self, U, dU):
        r""":math:`(∇^2 ℓ\, dU)_{ik} = \frac1B p_{ik} \sum_j p_{ij} (dU_{ik} - dU_{ij})`,
        the same product without the cancellation of ``p dU - p (p·dU)``."""
        p, _ = self._probs(U)
        diff = dU[:, :, None] - dU[:, None, :]  # [i, k, j]
        return p * xp.sum(p[:, None, :] * diff, axis=2) / U.shape[0]


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

    def check_targets(self, y, batch=None, dtype=None):
        be = get_backend()
        y = be.asarray(y, "y")
        if y.ndim != 2 or y.shape[1] != self.n_out or (batch is not None and y.shape[0] != batch):
            want = f"({batch if batch is not None else 'B'}, {self.n_out})"
            raise ValueError(f"y: expected float targets of shape {want}, got shape {y.shape}")
        if not xp.isdtype(y.dtype, "real floating"):
            raise TypeError(f"y: expected floating-point targets, got dtype {y.dtype}")
        if dtype is not None and y.dtype != dtype:
            raise TypeError(
                f"y: the targets have dtype {y.dtype} but the parameters {dtype}; "
                f"convert one explicitly (the precision never changes silently)"
            )
        if not bool(xp.all(xp.isfinite(y))):
            raise ValueError("y: targets must be finite, got NaN or inf")
        return be.read_only(xp.asarray(y, copy=True))

    def _scale(self, U):
        return 2.0 / (U.shape[0] * U.shape[1])

    def loss_terms(self, U):
        r = U - self._targets(U)
        loss = xp.mean(r * r)
        m = self.n_out
        hess = xp.broadcast_to(self._scale(U) * _eye(m, U), (U.shape[0], m, m))
        return loss, self._scale(U) * r, hess

    def _loss_hvp(self, U, dU):
        return self._scale(U) * dU
