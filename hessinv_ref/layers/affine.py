r"""The affine reference: :class:`AffineLayer`, an affine map followed by an
output map, with every protocol method written once from the two objects
:math:`D` and :math:`Λ` of the output map.

The derivation (:math:`H_{xx} = A_x^T Λ A_x`, :math:`H_{zz} = A_z^T Λ A_z`,
:math:`H_{xz} = A_x^T Λ A_z + C`) is in the docstring of
:mod:`hessinv_ref.layers`; :meth:`AffineLayer.jacobians` and
:meth:`AffineLayer.curvature` build those products explicitly, the way the
derivation reads (the vectorised builders of
:mod:`hessinv_ref.layers.stacked` compute the same entries faster).
Subclasses supply only the output map: :class:`~hessinv_ref.layers.Dense`
and :class:`~hessinv_ref.layers.Residual` an elementwise activation, the
loss heads a loss of the logits.
"""

from __future__ import annotations

import math

from ..backend import namespace_of
from ._arrays import _block_diag, _eye
from ._checks import Z_IN, _as_array, _check_positive_int, _is_bool, _own_array
from .protocol import Layer

__all__ = ["AffineLayer"]


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
        them (NumPy does), so never write into them.  In the namespace of
        ``x``, whichever backend is active.
        """
        be, x = _own_array(x, "x")
        return self._unpack(x, be.xp)

    def _unpack(self, x, xp):
        """:meth:`unpack` of an array already checked (``x`` or ``v`` of the
        protocol methods, checked against the backend of ``z_in``), in the
        namespace ``xp``."""
        if x.shape != (self.n_params,):
            raise ValueError(
                f"x: expected shape ({self.n_params},) for {self!r}, got {x.shape}"
            )
        return self._split(x, xp)

    def _split(self, x, xp=None):
        """:meth:`unpack` of an ``x`` known to be valid (the layer's own
        calls, after the first check): no validation on the hot path.
        ``xp``: its namespace, when the caller has it already."""
        n_w = self.n_out * self.n_in
        W = (namespace_of(x).xp if xp is None else xp).reshape(x[:n_w], (self.n_out, self.n_in))
        return W, (x[n_w:] if self.bias else None)

    def pack(self, weight, bias=None):
        """Flatten ``weight`` (n_out, n_in) and ``bias`` (n_out,) into a new
        ``x`` on the active backend (a door: they are new parameters, which
        :meth:`~hessinv_ref.network.Network.layer_vectors` validates).

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
        xp = namespace_of(weight).xp
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
    # Every protocol method checks ``z_in`` first (``_input``), which gives
    # the backend ``be`` of the call; ``_affine`` checks ``x`` against it,
    # and ``v`` is checked where it first appears (``_affine_jvp``).  The
    # later helpers split the already-checked vectors without checking them
    # again.
    #
    # These helpers and the protocol methods below run once per layer in
    # every R-operator pass, on tiny arrays, so Python overhead is their
    # cost: each looks its namespace up once, from its own arrays
    # (``namespace_of``, one dict lookup), and hands it to ``_split``,
    # rather than at every operation.  (Their signatures are the ones a
    # subclass may override.)

    def _affine(self, x, Z):
        """:math:`u = Z W^T + c`, shape (B, n_out)."""
        be = namespace_of(Z)
        W, c = self._unpack(be.asarray(x, "x", why=Z_IN), be.xp)
        U = Z @ W.T
        return U + c if self.bias else U

    def _affine_jvp(self, x, Z, T, v):
        """Directional derivative of ``u`` along ``(t_in, v)``:
        :math:`dU = T W^T + Z V_W^T + v_c`."""
        be = namespace_of(Z)
        W, _ = self._split(x, be.xp)
        V_W, v_c = self._unpack(be.asarray(v, "x", why=Z_IN), be.xp)
        dU = T @ W.T + Z @ V_W.T
        return dU + v_c if self.bias else dU

    def _affine_vjp(self, x, Z, D):
        """Pull a cotangent ``D`` on ``u`` back: returns ``(D W, vec(D^T Z, Σ_i D_i))``,
        shapes (B, n_in) and (p,)."""
        xp = namespace_of(D).xp
        W, _ = self._split(x, xp)
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
        xp = namespace_of(D).xp
        V_W, _ = self._split(v, xp)
        Ct = xp.reshape(D.T @ T, (-1,))
        if self.bias:
            Ct = xp.concat([Ct, xp.zeros(self.n_out, dtype=Ct.dtype, device=Ct.device)])
        return D @ V_W, Ct

    def _A_x(self, Z):
        """Explicit :math:`A_x = ∂u/∂x`, shape (B n_out, p).

        Row ``(i, k)`` has ``z_i`` in the columns of ``W[k, :]`` and a 1 in the
        column of ``c[k]``: :math:`A_x[(i,k),(l,j)] = δ_{kl} Z_{ij}` and
        :math:`A_x[(i,k), c_l] = δ_{kl}`."""
        xp = namespace_of(Z).xp
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
        xp = namespace_of(W).xp
        m, n = W.shape
        kron = _eye(B, W)[:, None, :, None] * W[None, :, None, :]  # (B, m, B, n)
        return xp.reshape(kron, (B * m, B * n))

    def _C(self, D):
        """Explicit cross term :math:`C`, shape (p, B n_in): rows of ``W[k, j]``
        hold ``D[i, k]`` at column ``(i, j)``; bias rows are zero:
        :math:`C[(k,j),(i,l)] = D_{ik} δ_{jl}`."""
        xp = namespace_of(D).xp
        B, m, n = D.shape[0], self.n_out, self.n_in
        # D_ik on axes (k, i), δ_jl on axes (j, l): shape (m, n, B, n)
        C_W = xp.reshape(D.T[:, None, :, None] * _eye(n, D)[None, :, None, :], (m * n, B * n))
        if not self.bias:
            return C_W
        return xp.concat([C_W, xp.zeros((m, B * n), dtype=D.dtype, device=D.device)], axis=0)

    # -- the protocol, written once for every affine layer -------------------

    # the protocol methods compute in the namespace of ``z_in``: every other
    # array argument must belong to its backend (a list is converted there)

    def _input(self, z_in):
        """``(B, Z, be)``: the batch size, ``z_in`` as a (B, n_in) matrix and
        its backend, the one the whole call computes on."""
        be, z_in = _own_array(z_in, "z_in")
        B = self._batch(z_in)
        return B, be.xp.reshape(z_in, (B, self.n_in)), be

    def _unflat(self, z_in):
        B, Z, _ = self._input(z_in)
        return B, Z

    def _unflat_tangent(self, B, t_in, be):
        return be.xp.reshape(be.asarray(t_in, "t_in", why=Z_IN), (B, self.n_in))

    def forward(self, x, z_in):
        """:math:`z_{out} = φ(Z W^T + c, Z)`, flat (a_out,)."""
        B, Z, be = self._input(z_in)
        return be.xp.reshape(self._output(self._affine(x, Z), Z), (-1,))

    def vjp(self, x, z_in, b_out):
        """Backprop: :math:`b_{in} = b_{out} J_z`, :math:`g_x = b_{out} J_x`."""
        B, Z, be = self._input(z_in)
        xp = be.xp
        U = self._affine(x, Z)
        D = self._delta(U, b_out)
        b_in, g_x = self._affine_vjp(x, Z, D)
        return xp.reshape(b_in, (-1,)) + self._skip(b_out), g_x

    def jvp(self, x, z_in, t_in, v):
        """Forward tangent: :math:`t_{out} = J_z t_{in} + J_x v`."""
        B, Z, be = self._input(z_in)
        T = self._unflat_tangent(B, t_in, be)
        U = self._affine(x, Z)
        dU = self._affine_jvp(x, Z, T, v)
        return be.xp.reshape(self._out_jvp(U, dU), (-1,)) + self._skip(t_in)

    def second_order(self, x, z_in, b_out, t_in, v):
        r"""The R-backward terms :math:`(H_{zz} t + H_{xz}^T v,\ H_{xz} t + H_{xx} v)`.

        They are the derivative of :meth:`vjp` along ``(t_in, v)`` at fixed
        ``b_out``: the delta moves by :math:`R\{D\} = Λ\, dU`, and the
        bilinear affine map adds the cross term :math:`C`.
        """
        B, Z, be = self._input(z_in)
        xp = be.xp
        T = self._unflat_tangent(B, t_in, be)
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
