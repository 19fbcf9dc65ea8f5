r"""Layers with hand-written first- and second-order derivatives.

Every layer is one link :math:`z_l = f_l(z_{l-1}; x_l)` of the chain in
:ref:`notation §1 <notation-1>`.  Activations are flat, sample-major vectors: a batch of ``B``
samples of width ``n`` is a vector of length ``a = B n`` (sample ``i``, unit
``k`` sits at index ``i n + k``).  A layer's parameters are one flat vector
``x`` of length ``p``: the weight ``W`` of shape ``(n_out, n_in)`` row-major,
then the bias (``torch.nn.Linear``'s order).

The layer protocol
------------------
A layer maps ``z_in`` to ``z_out`` with its parameters ``x`` and gives the
first and second derivatives of that link: :class:`LayerProtocol` (in
:mod:`hessinv_ref.layers.protocol`) lists the six methods, ``forward``,
``vjp``, ``jvp``, ``second_order``, ``jacobians`` and ``curvature``, with the
shape of every array; ``Hxx, Hxz, Hzz`` are the second derivatives of the
scalar :math:`b_{out} \cdot z_{out}` (:ref:`notation §3 <notation-3>`).
Anything that implements it works in :class:`~hessinv_ref.network.Network`,
in every solver and in :func:`hessinv_ref.testing.check_layer`;
:class:`LayerProtocol` is the extension point to implement, :class:`Layer`
the concrete base class the built-in layers share.

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
Every method computes in the namespace of the data it is given
(``namespace_of(z_in).xp``, :func:`~hessinv_ref.backend.namespace_of`),
whichever backend is active: the array arguments of one call belong to one
backend (the one of ``z_in``; a Python list or number is converted to it,
or to the active backend when it is the only argument), and results are
arrays of that backend in the dtype of the arguments.  ``pack`` and a
head's ``check_targets`` take new parameters and targets, and check them
against the active backend, as the network's validation does.  Only the
Array API standard is used: Kronecker
products, block diagonals and diagonal patterns are products with identity
matrices placed by broadcasting, and blocks are assembled with ``concat``,
never by integer-array indexing or by writing through a reshaped view.
:meth:`AffineLayer.init` is the one exception: it draws on the host with
NumPy's generator, and :meth:`~hessinv_ref.network.Network.init` moves the
result.

The modules of the layers package
---------------------------------
Imports run one way, down this list:

* :mod:`hessinv_ref.layers.heads`: the loss heads (:class:`LossHead`,
  :class:`SoftmaxCrossEntropy`, :class:`SquaredError`);
* :mod:`hessinv_ref.layers.dense`: :class:`Dense` and :class:`Residual`;
* :mod:`hessinv_ref.layers.affine`: :class:`AffineLayer`, the reference every
  built-in layer derives from, its blocks built as the derivation above reads;
* :mod:`hessinv_ref.layers.stacked`: the vectorised builders of the fast
  paths, the same entries for a run of identical layers at once;
* :mod:`hessinv_ref.layers.protocol`: :class:`LayerProtocol` and
  :class:`Layer`;
* ``_checks`` and ``_arrays``: private argument checks and Array API helpers.

Every class is importable from ``hessinv_ref.layers`` itself.
"""

from __future__ import annotations

# Importable from here when this package was one module; kept so.  The
# layers compute with neither get_backend nor the active-namespace proxy xp
# (see "Arrays" above): these two are re-exported names only.
from ..activations import get_activation
from ..backend import get_backend, xp

# The private helpers too (hessinv_ref.testing imports _check_positive_int).
from ._arrays import _block_diag, _eye, _stack
from ._checks import _as_array, _check_positive_int, _is_bool
from .affine import AffineLayer
from .dense import Dense, Residual
from .heads import LossHead, SoftmaxCrossEntropy, SquaredError, _others
from .protocol import Layer, LayerProtocol
from .stacked import stacked_curvature as _stacked_curvature

__all__ = [
    "LayerProtocol",
    "Layer",
    "AffineLayer",
    "Dense",
    "Residual",
    "LossHead",
    "SoftmaxCrossEntropy",
    "SquaredError",
]
