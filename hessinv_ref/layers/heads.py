r"""The loss heads: the last affine map fused with a batch-mean loss.

:class:`LossHead` turns a loss :math:`ℓ(u)` of the logits into the output
map of an :class:`~hessinv_ref.layers.AffineLayer`
(:math:`D = β ∇ℓ`, :math:`Λ = β ∇^2 ℓ`); :class:`SoftmaxCrossEntropy` and
:class:`SquaredError` supply :math:`ℓ`, its gradient and its Hessian blocks,
exactly as ``torch.nn.functional.cross_entropy`` and ``mse_loss`` with mean
reduction.
"""

from __future__ import annotations

import math

from ..backend import namespace_of
from ._arrays import _eye
from ._checks import _array_of, _as_array
from .affine import AffineLayer
from .stacked import head_blocks

__all__ = ["LossHead", "SoftmaxCrossEntropy", "SquaredError"]


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
        the active backend (a door: new targets, which
        :meth:`~hessinv_ref.network.Network.check_inputs` validates).

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
        b_out = _array_of(b_out, "b_out")
        if math.prod(b_out.shape) != 1:
            raise ValueError(f"b_out: expected shape (1,) for a loss head, got {b_out.shape}")
        return namespace_of(b_out).xp.reshape(b_out, ())

    def _output(self, U, Z):
        return namespace_of(U).xp.reshape(self.loss_terms(U)[0], (1,))

    def _delta(self, U, b_out):
        return self._beta(b_out) * self.loss_terms(U)[1]

    def _lambda(self, U, b_out, dU):
        return self._beta(b_out) * self._loss_hvp(U, dU)

    def _lambda_blocks(self, U, b_out):
        return self._beta(b_out) * self.loss_terms(U)[2]

    def _out_jvp(self, U, dU):
        xp = namespace_of(U).xp
        return xp.reshape(xp.sum(self.loss_terms(U)[1] * dU), (1,))

    def _out_jacobian(self, U):
        return namespace_of(U).xp.reshape(self.loss_terms(U)[1], (1, -1))

    def stack_key(self):
        if type(self) not in (SoftmaxCrossEntropy, SquaredError):
            return None
        return ("head", id(self))  # a head is the last layer: never stacked

    def stacked_blocks(self, xs, zs_in, bs_out):
        """The head's blocks, entrywise, with a leading axis of length 1: see
        :func:`~hessinv_ref.layers.stacked.head_blocks`."""
        return head_blocks(self, xs, zs_in, bs_out)


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
        y = _as_array(y, "y")  # the door: the active backend
        be = namespace_of(y)
        xp = be.xp
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
        xp = namespace_of(U).xp
        shifted = U - xp.max(U, axis=1, keepdims=True)
        e = xp.exp(shifted)
        return e / xp.sum(e, axis=1, keepdims=True), shifted

    def _one_hot(self, U):
        """The labels as a boolean mask of shape (B, C): ``Y[i, k] = (y_i == k)``."""
        y = self._targets(U)
        xp = namespace_of(U).xp
        classes = xp.arange(U.shape[1], dtype=y.dtype, device=y.device)
        return y[:, None] == classes[None, :]

    def loss_terms(self, U):
        xp = namespace_of(U).xp
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
        xp = namespace_of(p).xp
        C = p.shape[1]
        k = xp.arange(C, device=p.device)
        diagonal = k[:, None] == k[None, :]  # (C, C) mask
        return xp.where(diagonal, (p * _others(p))[:, :, None], -p[:, :, None] * p[:, None, :])

    def _loss_hvp(self, U, dU):
        r""":math:`(∇^2 ℓ\, dU)_{ik} = \frac1B p_{ik} \sum_j p_{ij} (dU_{ik} - dU_{ij})`,
        the same product without the cancellation of ``p dU - p (p·dU)``."""
        p, _ = self._probs(U)
        diff = dU[:, :, None] - dU[:, None, :]  # [i, k, j]
        return p * namespace_of(U).xp.sum(p[:, None, :] * diff, axis=2) / U.shape[0]


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
        y = _as_array(y, "y")  # the door: the active backend
        be = namespace_of(y)
        xp = be.xp
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
        xp = namespace_of(U).xp
        r = U - self._targets(U)
        loss = xp.mean(r * r)
        m = self.n_out
        hess = xp.broadcast_to(self._scale(U) * _eye(m, U), (U.shape[0], m, m))
        return loss, self._scale(U) * r, hess

    def _loss_hvp(self, U, dU):
        return self._scale(U) * dU
