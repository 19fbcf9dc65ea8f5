r"""The vectorised block builders: ``R`` layers of one shape at once.

:meth:`~hessinv_ref.layers.AffineLayer.curvature` and
:meth:`~hessinv_ref.layers.AffineLayer.jacobians` build the blocks the way
the docstrings derive them: explicit ``A_x``, ``A_z = I_B ⊗ W``, ``Λ`` as a
block-diagonal matrix, and products of them.  That is O(B^2) memory for the
Kronecker factors and a dozen array calls per layer.  The functions here
compute the *same* entries from each block's nonzero pattern, and for ``R``
layers of identical shape at once (leading axis ``R``), so a deep chain
pays the Python overhead once per run of layers, not once per layer.  Each
pattern is a product with an identity matrix (a Kronecker delta) placed on
the right axes by broadcasting, and the blocks are assembled with
``concat``: no integer-array indexing and no writing through a reshaped
view, which CuPy and the Array API do not guarantee.
``tests/test_fast_paths.py`` checks they agree with the explicit route to
rounding.

They are the bodies of the optional fast-path methods
(``stack_key``, ``stacked_blocks``, ``forward_run``, ``vjp_run``) of
:class:`~hessinv_ref.layers.Dense`, :class:`~hessinv_ref.layers.Residual`
and the loss heads, which call them with ``self``; a user's layer needs
none of this.
"""

from __future__ import annotations

from ..backend import namespace_of
from ._arrays import _eye, _stack

__all__ = [
    "stacked_curvature",
    "stacked_params",
    "dense_forward_run",
    "dense_vjp_run",
    "dense_blocks",
    "head_blocks",
]


def stacked_curvature(W, Z, D, Lam, bias):
    r"""The curvature blocks of ``R`` affine layers at once.

    With :math:`A_x, A_z, C` as in :meth:`~hessinv_ref.layers.AffineLayer.curvature`, written out
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
    xp = namespace_of(W).xp
    Lam_flat = xp.reshape(Lam, (R, B, m * m))      # [r, i, (k,l)]
    # Hxx, weight-weight part: one GEMM over the samples, then the
    # (k,l),(j,h) -> (k,j),(l,h) reordering of the Kronecker product.
    # Λ_i multiplies Z_ij before Z_ih does, as A_x^T Λ A_x does: forming
    # Z_ij Z_ih first overflows for |Z| > 1.3e154 even where Λ_i = 0 (a
    # saturated unit), and inf * 0 is NaN where the block is 0.
    LZ = xp.reshape(xp.permute_dims(Lam_flat[:, :, :, None] * Z[:, :, None, :], (0, 2, 3, 1)),
                    (R, m * m * n, B))             # [r, (k,l,j), i]
    KL_JH = xp.reshape(xp.matmul(LZ, Z), (R, m, m, n, n))
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


# -- Dense and Residual ----------------------------------------------------------


def stacked_params(layer, xs):
    """The weights (R, n_out, n_in) and biases (R, n_out) or ``None`` of a
    run of affine layers like ``layer``, split once for the whole run."""
    mn = layer.n_out * layer.n_in
    Xs = _stack(xs)
    W = namespace_of(Xs).xp.reshape(Xs[:, :mn], (len(xs), layer.n_out, layer.n_in))
    return W, (Xs[:, mn:] if layer.bias else None)


def dense_forward_run(layer, xs, z_in):
    r""":meth:`~hessinv_ref.layers.AffineLayer.forward` through a run of
    layers like ``layer`` (a :class:`~hessinv_ref.layers.Dense` or
    :class:`~hessinv_ref.layers.Residual`) without re-validating and
    re-unpacking at every layer: :math:`U_r = Z_{r-1} W_r^T + c_r`,
    :math:`Z_r = φ(U_r, Z_{r-1})`.  The cache is the stack of the
    pre-activations :math:`U_r`, shape (R, B, n_out), which the backward
    pass needs (``vjp`` would recompute them), and of the weights
    :math:`W_r`, shape (R, n_out, n_in)."""
    R = len(xs)
    W, c = stacked_params(layer, xs)
    xp = namespace_of(W).xp
    Z = xp.reshape(z_in, (-1, layer.n_in))
    # The loop is the only sequential work: two products and the
    # activation per layer, everything else once per run.
    Us, Zs = [None] * R, [None] * R
    for r in range(R):
        U = Z @ W[r, ...].T
        if c is not None:
            U = U + c[r, ...]
        Us[r] = U
        Zs[r] = Z = layer._output(U, Z)
    flat = xp.reshape(_stack(Zs), (R, -1))  # z_r = vec(Z_r), row r
    return [flat[r, ...] for r in range(R)], (_stack(Us), W)


def dense_vjp_run(layer, xs, zs_in, b_out, cache, skip):
    r""":meth:`~hessinv_ref.layers.AffineLayer.vjp` through the run of
    :func:`dense_forward_run` (``cache`` is its second result):
    :math:`D_r = b_r ⊙ σ'(U_r)`, :math:`b_{r-1} = D_r W_r` (+ :math:`b_r`
    for a skip, ``skip=True``).  The only sequential work is those two
    products; :math:`σ'` of every layer and the gradients
    :math:`g_r = (\mathrm{vec}(D_r^T Z_{r-1}), \sum_i D_{r,i})` are computed
    for the whole run at once."""
    m, n = layer.n_out, layer.n_in
    U, W = cache
    R, B = U.shape[:2]
    xp = namespace_of(U).xp
    S1 = layer.activation.df(U)  # σ'(U_r) of the whole run
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
    if layer.bias:
        G = xp.concat([G, xp.sum(D, axis=1)], axis=1)
    return [bs_in[r, ...] for r in range(R)], [G[r, ...] for r in range(R)]


def dense_blocks(layer, xs, zs_in, bs_out):
    r"""The blocks of ``R`` layers like ``layer`` (identical shape), written
    entrywise.

    With :math:`σ'_{ik} = σ'(u_{ik})`:
    :math:`J_z = \mathrm{blockdiag}_i(\mathrm{diag}(σ'_i) W)` (+ I for a skip),
    :math:`J_x[(i,k),(k,j)] = σ'_{ik} Z_{ij}`, :math:`J_x[(i,k), c_k] = σ'_{ik}`,
    :math:`Λ_i = \mathrm{diag}(b_i ⊙ σ''_i)`, :math:`D = b ⊙ σ'`; the
    curvature blocks come from :func:`stacked_curvature`.  Shapes as in
    :meth:`~hessinv_ref.layers.AffineLayer.stacked_blocks`.  Every Kronecker
    delta of these patterns (same sample, same unit) is an identity matrix
    broadcast against the values.
    """
    R, m, n = len(xs), layer.n_out, layer.n_in
    mn = m * n
    W, c = stacked_params(layer, xs)
    xp = namespace_of(W).xp
    Z = xp.reshape(_stack(zs_in), (R, -1, n))
    B = Z.shape[1]
    U = xp.matmul(Z, W.mT)
    if layer.bias:
        U = U + c[:, None, :]
    b = xp.reshape(_stack(bs_out), (R, B, m))
    s1 = layer.activation.df(U)
    eye_m, eye_B = _eye(m, W), _eye(B, W)
    Lam = (b * layer.activation.d2f(U))[..., None] * eye_m  # diag(b_i ⊙ σ''_i)
    # Jz: diag(σ'_i) W on the diagonal blocks (sample i to sample i'),
    # [r, i, k, i', h] = δ_ii' σ'_ik W_kh
    Jz = eye_B[:, None, :, None] * (s1[..., None] * W[:, None, :, :])[:, :, :, None, :]
    Jz = xp.reshape(Jz, (R, B * m, B * n)) + layer._skip_matrix(B, W)  # I of a residual skip
    # Jx: unit k of sample i sees only row k of W (and bias c_k),
    # [r, i, k, l, j] = δ_kl σ'_ik Z_ij
    Jx = eye_m[:, :, None] * (s1[..., None] * Z[:, :, None, :])[:, :, :, None, :]
    Jx = xp.reshape(Jx, (R, B * m, mn))
    if layer.bias:
        Jc = xp.reshape(s1[..., None] * eye_m, (R, B * m, m))
        Jx = xp.concat([Jx, Jc], axis=2)
    return (Jz, Jx) + stacked_curvature(W, Z, b * s1, Lam, layer.bias)


# -- the loss heads ---------------------------------------------------------------


def head_blocks(head, xs, zs_in, bs_out):
    r"""The blocks of the loss head ``head``, entrywise, with a leading axis
    of length 1.

    The output is the scalar loss, so :math:`J_z` and :math:`J_x` are
    rows: :math:`J_z[(i,h)] = (∇ℓ\, W)_{ih}`,
    :math:`J_x = (\mathrm{vec}(∇ℓ^T Z), \sum_i ∇ℓ_i)`; :math:`D = β∇ℓ`,
    :math:`Λ_i = β∇^2_{u_i}ℓ`.
    """
    (x,), (z_in,), (b_out,) = xs, zs_in, bs_out
    B, Z = head._unflat(z_in)
    W, _ = head.unpack(x)
    _, grad, hess = head.loss_terms(head._affine(x, Z))
    beta = head._beta(b_out)
    xp = namespace_of(Z).xp
    Jz = xp.reshape(grad @ W, (1, 1, -1))
    Jx = xp.reshape(grad.T @ Z, (-1,))
    if head.bias:
        Jx = xp.concat([Jx, xp.sum(grad, axis=0)])
    curv = stacked_curvature(W[None, ...], Z[None, ...], (beta * grad)[None, ...], (beta * hess)[None, ...], head.bias)
    return (Jz, xp.reshape(Jx, (1, 1, -1))) + curv
