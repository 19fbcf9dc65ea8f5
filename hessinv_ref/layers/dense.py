r"""The hidden layers: :class:`Dense`, an elementwise activation after the
affine map, and :class:`Residual`, the same with a skip connection.

Only the output map is written here (:math:`σ`, :math:`D = b_{out} ⊙ σ'(u)`,
:math:`Λ = \mathrm{diag}(b_{out} ⊙ σ''(u))`); everything else is
:class:`~hessinv_ref.layers.AffineLayer`'s.  The fast paths over runs of
identical layers are in :mod:`hessinv_ref.layers.stacked`.
"""

from __future__ import annotations

from ..activations import get_activation
from ..backend import namespace_of
from ._arrays import _eye
from ._checks import Z_IN, _array_of
from .affine import AffineLayer
from .stacked import dense_blocks, dense_forward_run, dense_vjp_run

__all__ = ["Dense", "Residual"]


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
        be = namespace_of(U)
        return be.xp.reshape(be.asarray(b_out, "b_out", why=Z_IN), U.shape)

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
        d = namespace_of(U).xp.reshape(self.activation.df(U), (-1,))
        return d[:, None] * _eye(d.shape[0], d)  # diag(σ'(u))

    # -- the fast paths (the optional protocol), in hessinv_ref.layers.stacked --

    def forward_run(self, xs, z_in):
        """:meth:`forward` through a run of layers at once: see
        :func:`~hessinv_ref.layers.stacked.dense_forward_run`."""
        return dense_forward_run(self, xs, z_in)

    def vjp_run(self, xs, zs_in, b_out, cache):
        """:meth:`vjp` through the run: see
        :func:`~hessinv_ref.layers.stacked.dense_vjp_run`."""
        return dense_vjp_run(self, xs, zs_in, b_out, cache, skip=isinstance(self, Residual))

    def stack_key(self):
        # Only the classes whose output map the stacked builders know; a
        # subclass may change the map and must fall back to the explicit path.
        if type(self) not in (Dense, Residual):
            return None
        return (type(self), self.n_in, self.n_out, self.bias, id(self.activation))

    def stacked_blocks(self, xs, zs_in, bs_out):
        """The blocks of ``R`` identical-shape layers, written entrywise: see
        :func:`~hessinv_ref.layers.stacked.dense_blocks`."""
        return dense_blocks(self, xs, zs_in, bs_out)


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
        return _array_of(vec, "vec")

    def _skip_matrix(self, B, like):
        return _eye(B * self.n_in, like)
