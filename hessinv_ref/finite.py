r"""No silent NaN: one check for the quantities the library computes.

Every input is checked to be finite where it comes in (``params``, ``X``,
``y``, every vector), but finite inputs can still give ``inf`` or ``NaN``
inside: an input of magnitude ``1e155`` is finite, its square ``1e310`` is
not (the largest ``float64`` is ``1.8e308``, so products of two numbers
overflow once both pass :math:`\sqrt{1.8 \cdot 10^{308}} \approx 1.3 \cdot
10^{154}`), and ``0 * inf`` is ``NaN``.  A route handed such a value goes
on and reports something else (a "singular pivot", a NaN in the answer).

So the computed quantities are checked where they are made: the forward
activations :math:`z_l` and backprop vectors :math:`b_l`
(:class:`~hessinv_ref.curvature.Curvature` and
:meth:`~hessinv_ref.network.Network.forward`), the per-layer blocks
(:attr:`~hessinv_ref.curvature.Curvature.blocks`), and the results of
:func:`~hessinv_ref.rop.hvp`, :func:`~hessinv_ref.rop.polynomial_hvp`, the
dense Hessian and the Krylov solutions.  A non-finite one raises
:class:`NonFiniteError`, whose message names the quantity, the layer and the
likely cause.  Each check is one ``all(isfinite(...))`` reduction per array
(or per list of arrays), in the arrays' own namespace; the cause, which needs a few
more reductions, is only worked out once a check has failed.
"""

from __future__ import annotations

import math
import numbers

from .backend import namespace_of
from .backend.constants import float_info

__all__ = ["NonFiniteError", "check_damping", "check_finite", "first_non_finite", "largest", "layer_magnitudes", "overflow_cause"]


class NonFiniteError(FloatingPointError):
    """A quantity computed from finite inputs is ``inf`` or ``NaN``.

    Attributes
    ----------
    name : str
        The quantity, e.g. ``"forward activation z_3"``, ``"block Hzz"``,
        ``"hvp result"``.
    layer : int or None
        The layer ``l`` (1-based) it belongs to, ``None`` if none.
    cause : str
        The likely cause, as far as the magnitudes involved tell it.
    """

    def __init__(self, name, layer=None, cause=""):
        self.name, self.layer, self.cause = name, layer, cause
        where = f" of layer {layer}" if layer is not None else ""
        msg = f"{name}{where} is not finite (inf or NaN) although every input is finite"
        if cause:
            msg += f"; likely cause: {cause}"
        super().__init__(msg)


def _is_finite(a):
    xp = namespace_of(a).xp
    return bool(xp.all(xp.isfinite(a)))


def check_finite(name, array, *, layer=None, cause=None):
    """Raise :class:`NonFiniteError` unless every entry of ``array`` is finite.

    Parameters
    ----------
    name : str
        The quantity, for the message.
    array : array
        Of any backend.
    layer : int, optional
        The layer ``l`` (1-based) the quantity belongs to.
    cause : str or callable, optional
        The likely cause; a callable (no arguments, returning a str) is only
        called once the check has failed, so working it out costs nothing
        on the good path.

    Returns
    -------
    array
        ``array`` itself, so a check can wrap an expression.
    """
    if not _is_finite(array):
        raise NonFiniteError(name, layer, cause() if callable(cause) else (cause or ""))
    return array


def first_non_finite(arrays):
    """The index of the first array of ``arrays`` with an ``inf`` or ``NaN``,
    or ``None``: one reduction for the whole list (one device
    synchronisation), then a search only if it failed."""
    arrays = list(arrays)
    if not arrays:
        return None
    xp = namespace_of(arrays[0]).xp
    flat = [a if a.ndim == 1 else xp.reshape(a, (-1,)) for a in arrays]
    if _is_finite(xp.concat(flat)):
        return None
    return next(i for i, a in enumerate(arrays) if not _is_finite(a))


def largest(a):
    """``max |a|`` over the finite entries, a Python float (0 if none)."""
    xp = namespace_of(a).xp
    finite = xp.isfinite(a)
    if not bool(xp.any(finite)):
        return 0.0
    return float(xp.max(xp.where(finite, xp.abs(a), xp.zeros_like(a))))


def overflow_cause(dtype, magnitudes, what):
    """The likely cause of a non-finite value computed in ``what`` from
    finite quantities.

    Parameters
    ----------
    dtype : dtype
        The working precision.
    magnitudes : list of (str, float, str)
        ``(name, largest |entry|, what to rescale)`` for each quantity the
        value was computed from.
    what : str
        Where the value was computed, e.g. ``"the Hessian blocks"``.

    Overflow is called likely when the largest magnitude passes the square
    root of the dtype's largest number divided by ``1e3`` (``1.3e151`` in
    ``float64``, ``1.8e16`` in ``float32``): the blocks hold products of two
    such numbers (``z zᵀ`` in ``Hxx``, a squared error), and the ``1e3``
    leaves room for the sums and weights those products also carry.  Below
    it the inputs are moderate and the value came from a formula itself
    (``0 * inf``, a derivative that overflows, a bug in a user-written
    layer)."""
    info = float_info(dtype)
    bits, big = info.bits, math.sqrt(float(info.max))
    name, m, hint = max(magnitudes, key=lambda item: item[1])
    if m >= big / 1e3:
        return (
            f"overflow: {name} of magnitude ~{m:.0e} squares or multiplies to inf in {what} "
            f"(in float{bits}, any product of two numbers beyond {big:.1e} is inf); {hint}"
        )
    facts = ", ".join(f"{n} up to {v:.1e}" for n, v, _ in magnitudes)
    return (
        f"not an overflow of large inputs ({facts}): a formula gives inf or NaN in {what} "
        f"at these values (0 * inf, an overflowing derivative, or a bug in a user-written layer)"
    )


def layer_magnitudes(l, z_in, x, b=None):
    """The ``magnitudes`` argument of :func:`overflow_cause` for what layer
    ``l`` computes from: its input ``z_in`` (:math:`z_{l-1}`), its
    parameters ``x`` (:math:`x_l`) and, if given, its backprop vector ``b``
    (:math:`b_l`)."""
    z_hint = "rescale X" if l == 1 else "rescale X or the parameters (the activations grow through the layers)"
    out = [
        (f"the layer input z_{l - 1}", largest(z_in), z_hint),
        (f"the parameters x_{l}", largest(x), "rescale the parameters"),
    ]
    if b is not None:
        out.append((f"the backprop vector b_{l}", largest(b), "rescale the loss or the parameters"))
    return out


def check_damping(damping):
    """Validate ``ε``: a finite real number ``>= 0``; returns it as a float."""
    # numbers.Real covers int, float and NumPy's scalar types; not bool, not arrays
    if isinstance(damping, bool) or not isinstance(damping, numbers.Real):
        raise TypeError(f"damping: expected a real number >= 0, got {type(damping).__name__}")
    damping = float(damping)
    if not math.isfinite(damping) or damping < 0:
        raise ValueError(f"damping: expected a finite number >= 0, got {damping}")
    return damping
