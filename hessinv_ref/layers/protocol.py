r"""The layer protocol: what a layer must provide to work everywhere.

Two names, two roles:

:class:`LayerProtocol`
    The *extension point*: the structural type (a :class:`typing.Protocol`)
    that a student's or a user's own layer implements.  Nothing has to
    subclass it: any object with these attributes and methods works in
    :class:`~hessinv_ref.network.Network`, in every HVP route and solver,
    and in :func:`hessinv_ref.testing.check_layer`, which checks that the
    methods agree with each other and with central differences.
    ``isinstance(layer, LayerProtocol)`` checks only that the names exist.
:class:`Layer`
    The concrete base class of the built-in layers, with what they share
    (``out_dim``, ``batch_of``, ``is_loss = False``).  Subclassing it is the
    easy way to get ``out_dim``; it implements none of the six methods.

The shapes, with ``a_in = B n_in``, ``a_out = B n_out`` (``1`` for a loss
head) and ``p = n_params``::

    forward(x, z_in)                    -> z_out                     (a_out,)
    vjp(x, z_in, b_out)                 -> (b_in, g_x)               (a_in,), (p,)
    jvp(x, z_in, t_in, v)               -> t_out                     (a_out,)
    second_order(x, z_in, b_out, t_in, v)
                      -> (Hzz t_in + Hxz^T v,  Hxz t_in + Hxx v)     (a_in,), (p,)
    jacobians(x, z_in)                  -> (Jz, Jx)      (a_out, a_in), (a_out, p)
    curvature(x, z_in, b_out)           -> (Hxx, Hxz, Hzz)
                                          (p, p), (p, a_in), (a_in, a_in)

with ``Hxx, Hxz, Hzz`` the second derivatives of the scalar
:math:`b_{out} \cdot z_{out}`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._checks import _array_of

__all__ = ["LayerProtocol", "Layer"]


@runtime_checkable
class LayerProtocol(Protocol):
    r"""The protocol a layer :math:`z_{out} = f(z_{in}; x)` implements: the
    extension point for your own layers.

    Activations are flat, sample-major vectors (``a_in = B n_in``), the
    parameters one flat vector ``x`` of length ``p = n_params``.  The array
    arguments of a call belong to one backend, the one the point was built
    on, and the results must belong to it too: compute with
    ``xp = namespace_of(z_in).xp`` (:func:`~hessinv_ref.backend.namespace_of`),
    as the built-in layers do.  (A layer that computes with the active
    namespace :data:`hessinv_ref.backend.xp` works while the active backend
    is the point's, which is the usual case.)  A loss head (the last layer of a
    :class:`~hessinv_ref.network.Network`) also sets ``is_loss = True`` and
    has ``bind(y)``, and :meth:`~hessinv_ref.network.Network.init` calls
    ``init(rng, scale)``; neither is part of this protocol.  The optional
    fast paths (``stack_key``, ``stacked_blocks``, ``forward_run``,
    ``vjp_run``) are described in :class:`~hessinv_ref.layers.AffineLayer`.

    Subclassing is not needed (the check is structural), and
    ``isinstance(layer, LayerProtocol)`` checks that the names exist, not
    that the mathematics is right: :func:`hessinv_ref.testing.check_layer`
    does that.

    Attributes
    ----------
    n_in, n_out : int
        Per-sample input and output widths.
    n_params : int
        Length ``p`` of the flat parameter vector.

    Examples
    --------
    >>> from hessinv_ref.layers import Dense, LayerProtocol, SoftmaxCrossEntropy
    >>> isinstance(Dense(3, 4), LayerProtocol), isinstance(SoftmaxCrossEntropy(4, 2), LayerProtocol)
    (True, True)
    >>> isinstance(object(), LayerProtocol)
    False
    """

    n_in: int
    n_out: int
    n_params: int

    def out_dim(self, batch):
        """Length ``a_out`` of the flat output for a batch of ``batch``
        samples (``batch * n_out``; ``1`` for a loss head)."""

    def forward(self, x, z_in):
        """The layer's output :math:`z_{out}`, shape (a_out,), from
        ``x`` (p,) and ``z_in`` (a_in,)."""

    def vjp(self, x, z_in, b_out):
        r"""Backprop through the layer: :math:`b_{in} = J_z^T b_{out}`, shape
        (a_in,), and :math:`g_x = J_x^T b_{out}`, shape (p,), from
        ``b_out`` (a_out,)."""

    def jvp(self, x, z_in, t_in, v):
        r"""The forward tangent :math:`t_{out} = J_z t_{in} + J_x v`, shape
        (a_out,), from ``t_in`` (a_in,) and ``v`` (p,)."""

    def second_order(self, x, z_in, b_out, t_in, v):
        r"""The second-order terms of the R-backward pass:
        :math:`(H_{zz} t_{in} + H_{xz}^T v,\ H_{xz} t_{in} + H_{xx} v)`, shapes
        (a_in,) and (p,), with :math:`H` the second derivatives of
        :math:`b_{out} \cdot z_{out}`."""

    def jacobians(self, x, z_in):
        r"""The explicit :math:`J_z = ∂z_{out}/∂z_{in}`, shape (a_out, a_in),
        and :math:`J_x = ∂z_{out}/∂x`, shape (a_out, p)."""

    def curvature(self, x, z_in, b_out):
        r"""The explicit second derivatives of :math:`b_{out} \cdot z_{out}`:
        :math:`H_{xx}` (p, p), :math:`H_{xz}` (p, a_in), :math:`H_{zz}`
        (a_in, a_in)."""


class Layer:
    """The concrete base class of the built-in layers (the protocol itself is
    :class:`LayerProtocol`).

    It provides ``out_dim``, ``batch_of`` and ``is_loss = False``.
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
        return self._batch(_array_of(z_in, "z_in"))

    def _batch(self, z_in):
        if z_in.ndim != 1 or z_in.shape[0] % self.n_in != 0 or z_in.shape[0] == 0:
            raise ValueError(
                f"z_in: expected a flat vector whose length is a positive "
                f"multiple of n_in={self.n_in}, got shape {z_in.shape}"
            )
        return z_in.shape[0] // self.n_in
