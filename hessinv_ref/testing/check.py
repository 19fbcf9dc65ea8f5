r"""``check_layer``: every derivative of a user-written layer against finite differences.

A layer that follows the protocol of :mod:`hessinv_ref.layers` (``forward``,
``vjp``, ``jvp``, ``second_order``, ``jacobians``, ``curvature``; a loss head
also ``bind``) works in every part of this package.  :func:`check_layer`
tells its author whether each of those methods is right, and if not, which
one and where.

What is compared with what
--------------------------
At a random point ``x`` (parameters), ``z_in`` (input batch), ``b_out``
(cotangent; a scalar :math:`β` for a loss head) and direction
``d = (t_in, v)``, with ``w = (z_in, x)``:

=====================  ==========================================================
quantity               reference
=====================  ==========================================================
``Jz``, ``Jx``         :math:`J_{fd}`: central-difference Jacobian of ``forward``
                       in ``w`` (columns ``z_in`` then ``x``)
``vjp: b_in, g_x``     :math:`b_{out} J_{fd}`
``jvp``                :math:`J_{fd}\, d`
``Hzz``, ``Hxz``,      :math:`H_{fd}`: central-difference Jacobian of ``vjp`` in
``Hxx``                ``w`` at fixed ``b_out``, i.e.
                       ``[[Hzz, Hxz^T], [Hxz, Hxx]]``
``second_order``       :math:`H_{fd}\, d` (its z part and its x part)
``Hzz``, ``Hxx``       symmetric: :math:`|H - H^T|` within the block's tolerance
symmetric
consistency            ``jvp``, ``vjp`` and ``second_order`` against the products
                       of the explicit ``jacobians`` and ``curvature`` blocks,
                       to rounding; only run when both sides passed their own
                       finite-difference check
=====================  ==========================================================

Every reference is independent of the method it checks, so exactly the
wrong method fails.  The second-order references differentiate the layer's
own ``vjp``; if ``vjp`` fails its check, the second-order rows are skipped
(they would have no trustworthy reference) and the report says so.

Tolerances of the layer check
-----------------------------
A central difference with step ``h`` has error at most
:math:`h^2 M_3 / 6 + ε M_0 / h` (truncation plus rounding; see
:mod:`hessinv_ref.testing.finite_differences`).  ``check_layer`` steps
:math:`h_j = ε^{1/3} \max(1, |w_j|)` and takes both :math:`M_0` and
:math:`M_3` equal to the *scale* of the check,

.. math::

    S = \max\bigl(\max|f(w)|,\ \max|\text{analytic}|,\ \max|\text{reference}|\bigr),

(``f`` is ``forward`` for first-order rows, ``vjp`` for second-order rows),
so the tolerance on the largest entrywise error is

.. math::

    \text{tol} = C_{fd}\,(h^2/6 + ε/h)\, S \approx 4 \cdot 10^{-8}\, S,
    \qquad C_{fd} = 10^3,

the safety factor covering third derivatives larger than the scale and the
rounding of a chain of operations (on 1500 random built-in layers the largest
error was 5% of this tolerance).  Rows that are products ``b_out J`` or ``J d`` multiply the
scale by ``|b_out|_1`` or ``|d|_1``, the amplification of the reference's
error.  Consistency rows compare two exact routes and use the rounding bound
:math:`C_{r}\, n\, ε\, \max_i (|A|\,|d|)_i` with ``n`` the inner dimension,
``A`` the explicit block matrix and :math:`C_r = 10^2` (:data:`ROUND_SAFETY`,
the oracle kit's :data:`~hessinv_ref.testing.tolerances.C_TOL`).  A wrong term (a
dropped cross term, a transposed block, a sign) is off by the scale itself,
six orders of magnitude above these tolerances.

Passing ``rtol`` replaces every rule by ``rtol * S``.

Finite differences are meaningless across a kink (``relu`` at ``u = 0``):
pass ``x`` and ``z_in`` that keep pre-activations away from it.

Array backends and check_layer
------------------------------
The layer is called with arrays of the active backend
(:func:`hessinv_ref.get_backend`; on NumPy, read-only ones, so a layer that
writes into its inputs fails loudly), and everything it returns is copied
to NumPy with :func:`~hessinv_ref.backend.to_numpy`: the finite
differences and the comparisons are NumPy float64 arithmetic on those
copies.  The moves are explicit, so ``check_layer`` works unchanged under
``HESSINV_REF_BACKEND=array_api_strict`` or on CuPy; a layer that returns
NumPy arrays while another backend is active fails the row (the library
would have to copy them from the host).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..backend import from_numpy, get_backend, to_numpy
from ..layers import _check_positive_int as _positive_int
from .finite_differences import EPS, central_error_bound, central_jacobian, central_step
from .report import Check, Column, Report, judge, number
from .tolerances import C_TOL

__all__ = ["check_layer", "CheckResult", "LayerCheckReport", "ROWS", "FD_SAFETY", "ROUND_SAFETY"]

FD_SAFETY = 1e3
"""Allowance over the central-difference error bound (see the module notes)."""

ROUND_SAFETY = C_TOL
"""Allowance over ``n * eps`` for the consistency of two exact routes: the
oracle kit's rounding factor :data:`~hessinv_ref.testing.tolerances.C_TOL`
(100), the same ``C n ε`` rule as the assert helpers'."""

@dataclass
class CheckResult(Check):
    """One row of a :class:`LayerCheckReport`: a
    :class:`~hessinv_ref.testing.report.Check` with the worst entry.

    Attributes
    ----------
    quantity : str
        What was checked, e.g. ``"Hxz"`` or ``"vjp: b_in"``.
    status : {"pass", "FAIL", "skip"}
    error : float or None
        Largest entrywise absolute error.
    tolerance : float or None
        The allowed absolute error.
    measure : str
        Unused here (every row's measure is the largest entrywise error).
    detail : str
        Why a row failed or was skipped, when it is not a tolerance miss
        (a wrong shape, an exception, a failed dependency).
    method : str
        The protocol method whose output was checked (``"curvature"``, ``"vjp"``, ...).
    scale : float or None
        The scale ``S`` that the tolerance is relative to.
    index : tuple or None
        Index of the worst entry in the checked array.
    actual, expected : float or None
        The worst entry and its reference value.
    reference : str
        What the quantity was compared with.
    """

    method: str = ""
    scale: float | None = None
    index: tuple | None = None
    actual: float | None = None
    expected: float | None = None
    reference: str = ""

    @property
    def rel_error(self):
        """``error / scale`` (None when not computed)."""
        if self.error is None or not self.scale:
            return self.error
        return self.error / self.scale

    @property
    def rel_tolerance(self):
        """``tolerance / scale`` (None when not computed)."""
        if self.tolerance is None or not self.scale:
            return self.tolerance
        return self.tolerance / self.scale

    def describe(self):
        """A one-line account of this row, for failure messages."""
        if self.detail and self.error is None:
            return f"{self.quantity} ({self.method}): {self.detail}"
        msg = (
            f"{self.quantity} ({self.method}): max error {self.error:.3e} "
            f"{'<=' if self.passed else '>'} tolerance {self.tolerance:.3e} "
            f"(relative to scale {self.scale:.3e}: {self.rel_error:.2e} vs {self.rel_tolerance:.2e})"
        )
        if self.index is not None:
            msg += (
                f"; worst entry {self.index}: got {self.actual:.10g}, "
                f"expected {self.expected:.10g} from {self.reference}"
            )
        if self.detail:
            msg += f"; {self.detail}"
        return msg


def _layer_note(r):
    note = "" if r.index is None or r.passed else str(r.index)
    if r.detail:
        note = (note + "  " if note else "") + r.detail
    return note


@dataclass
class LayerCheckReport(Report):
    """The outcome of :func:`check_layer`: one :class:`CheckResult` per quantity.

    A :class:`~hessinv_ref.testing.report.Report` (``rows`` is its list
    ``checks``); ``str(report)`` is a table; :attr:`passed` is True when no
    row failed.
    """

    layer: object
    batch: int
    seed: int

    COLUMNS = (
        Column("quantity", lambda r: r.quantity, 22),
        Column("method", lambda r: r.method, 14),
        Column("status", lambda r: r.status, 7),
        Column("rel. error", number("rel_error"), 11, ">"),
        Column("rtol", number("rel_tolerance"), 11, ">"),
        Column("worst index / note", _layer_note, gap=2),
    )

    @property
    def rows(self):
        """The :class:`CheckResult` rows (the list ``checks``)."""
        return self.checks

    @rows.setter
    def rows(self, rows):
        self.checks = rows

    def summary(self):
        """One line: the layer and the failing quantities."""
        if self.passed:
            return f"check_layer({self.layer!r}): all {len(self.rows)} checks passed"
        names = ", ".join(r.quantity for r in self.failures)
        return (
            f"check_layer({self.layer!r}): {len(self.failures)} of {len(self.rows)} "
            f"checks failed: {names}"
        )

    def message(self):
        """The failure message: the summary, one line per failure, the table."""
        lines = [self.summary()]
        lines += ["  " + r.describe() for r in self.failures]
        lines += ["", self.table()]
        return "\n".join(lines)

    def table(self):
        """The per-quantity table as text."""
        return (super().table() + f"\n(batch {self.batch}, seed {self.seed}; "
                "errors and tolerances relative to each row's scale)")

    def __str__(self):
        return self.summary() + "\n" + self.table()


class _MethodError(Exception):
    """A protocol method raised or returned something unusable."""


def _call(layer, name, *args):
    fn = getattr(layer, name, None)
    if fn is None or not callable(fn):
        raise _MethodError(f"the layer has no method {name!r}")
    try:
        return fn(*args)
    except Exception as err:  # a user's bug, reported on the row
        raise _MethodError(f"{name} raised {type(err).__name__}: {err}") from err


def _device(a):
    """A copy of the NumPy array ``a`` on the active backend, read-only where
    the backend can (NumPy): what the layer under test receives."""
    be = get_backend()
    return be.read_only(from_numpy(a))


def _host(name, value):
    """A layer's output as a NumPy float64 array (an explicit copy from the
    active backend), or a :class:`_MethodError` saying why it is unusable."""
    be = get_backend()
    if be.name != "numpy" and isinstance(value, np.ndarray):
        raise _MethodError(
            f"{name}: expected an array of the active backend {be.name!r}, got a NumPy array"
        )
    try:
        return np.asarray(to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise _MethodError(
            f"{name}: expected a float array, got {type(value).__name__} ({err})"
        ) from None


def _array(name, value, shape):
    try:
        a = _host(name, value)
    except _MethodError as err:
        raise _MethodError(f"{err} (expected shape {tuple(shape)})") from None
    if a.shape != tuple(shape):
        raise _MethodError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise _MethodError(f"{name}: expected finite values, got NaN or inf")
    return a


def _parts(layer, method, args, names, shapes):
    """Call ``method`` and validate each returned part on its own.

    Returns a list with, per part, either the float64 array or the
    :class:`_MethodError` describing why it is unusable.
    """
    try:
        value = _call(layer, method, *args)
    except _MethodError as err:
        return [err] * len(names)
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        err = _MethodError(
            f"{method}: expected a tuple of {len(names)} arrays ({', '.join(names)}), "
            f"got {type(value).__name__}"
            + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        )
        return [err] * len(names)
    out = []
    for part, nm, shape in zip(value, names, shapes):
        try:
            out.append(_array(f"{method} -> {nm}", part, shape))
        except _MethodError as err:
            out.append(err)
    return out


class _Checker:
    """Runs the checks and collects the rows (one instance per call)."""

    def __init__(self, rtol):
        self.rtol = rtol
        self.rows = []

    def _row(self, **kw):
        r = CheckResult(**kw)
        self.rows.append(r)
        return r

    def fail(self, quantity, method, detail):
        return self._row(quantity=quantity, method=method, status="FAIL", detail=detail)

    def skip(self, quantity, method, detail):
        return self._row(quantity=quantity, method=method, status="skip", detail=detail)

    def compare(self, quantity, method, actual, expected, *, tol_rule, scale, reference):
        """Compare arrays; ``tol_rule(S)`` gives the tolerance at scale ``S``."""
        if actual.shape != expected.shape:
            return self.fail(quantity, method, f"shape {actual.shape}, expected {expected.shape}")
        diff = np.abs(actual - expected)
        S = max(float(scale), float(np.max(np.abs(actual), initial=0.0)),
                float(np.max(np.abs(expected), initial=0.0)))
        tol = self.rtol * S if self.rtol is not None else tol_rule(S)
        if diff.size == 0:
            return self._row(quantity=quantity, method=method, status="pass", error=0.0,
                             tolerance=tol, scale=S, reference=reference)
        k = np.unravel_index(int(np.argmax(diff)), diff.shape)
        err = float(diff[k])
        return self._row(
            quantity=quantity, method=method, status=judge(err, tol),
            error=err, tolerance=tol, scale=S, index=tuple(int(i) for i in k),
            actual=float(actual[k]), expected=float(expected[k]), reference=reference,
        )


def _default_targets(layer, batch, rng):
    """Targets a loss head accepts: integer labels, else float targets (B, n_out)."""
    n_out = int(layer.n_out)
    labels = rng.integers(0, max(n_out, 1), size=batch)
    floats = rng.standard_normal((batch, n_out))
    from ..layers import SquaredError

    order = [floats, labels] if isinstance(layer, SquaredError) else [labels, floats]
    errors = []
    for y in order:
        try:
            return layer.bind(from_numpy(y))
        except (TypeError, ValueError) as err:
            errors.append(f"{type(err).__name__}: {err}")
    raise ValueError(
        f"y: {layer!r} accepted neither integer labels of shape ({batch},) nor float "
        f"targets of shape ({batch}, {n_out}); pass y= ({'; '.join(errors)})"
    )


def check_layer(layer, *, batch=2, seed=0, rtol=None, y=None, x=None, z_in=None,
                raise_on_failure=True):
    r"""Check every method of a layer against central differences.

    Parameters
    ----------
    layer : object
        A layer following the protocol of :mod:`hessinv_ref.layers`: attributes
        ``n_in``, ``n_out``, ``n_params`` and methods ``forward``, ``vjp``,
        ``jvp``, ``second_order``, ``jacobians``, ``curvature``.  A loss head
        (``layer.is_loss``) is bound to targets first (see ``y``).
    batch : int
        Number of samples in the random input ``z_in`` of length ``batch * n_in``
        (ignored when ``z_in`` or ``y`` fixes it).
    seed : int
        Seed of ``numpy.random.default_rng`` for the point, the cotangent and
        the direction.
    rtol : float, optional
        Replace every tolerance by ``rtol * S`` (``S`` the row's scale, see the
        module notes).  Default: the finite-difference error model.
    y : array_like, optional
        Targets for a loss head: labels (B,) or targets (B, n_out).  Default:
        the head's own targets if it is bound, else random ones.
    x : array of shape (n_params,), optional
        Parameters (NumPy or the active backend's array; copied).  Default:
        ``layer.init(rng)`` if the layer has ``init``, else standard normal
        over ``sqrt(n_in)``.
    z_in : array of shape (B * n_in,), optional
        Input (NumPy or the active backend's array; copied).  Default:
        standard normal.
    raise_on_failure : bool
        Raise ``AssertionError`` naming every failing quantity (default), or
        return the report regardless.

    Returns
    -------
    LayerCheckReport
        One row per quantity with status, worst entry and its error against
        the tolerance; ``print(report)`` shows the table.

    Raises
    ------
    AssertionError
        If ``raise_on_failure`` and any row failed; the first line names the
        failing quantities (e.g. ``"... 1 of 16 checks failed: Hxz"``).
    TypeError, ValueError
        For bad arguments (the message names the argument).

    Examples
    --------
    >>> from hessinv_ref import Dense
    >>> from hessinv_ref.testing.check import check_layer
    >>> report = check_layer(Dense(3, 2, "tanh"))
    >>> report.passed
    True
    """
    batch = _positive_int("batch", batch)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    if rtol is not None:
        if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (rtol > 0 and math.isfinite(rtol)):
            raise ValueError(f"rtol: expected a positive finite float, got {rtol!r}")
        rtol = float(rtol)
    for attr in ("n_in", "n_out", "n_params"):
        if not hasattr(layer, attr):
            raise TypeError(f"layer: expected an object with {attr!r} (the layer protocol), got {type(layer).__name__}")
    n_in, n_params = int(layer.n_in), int(layer.n_params)
    rng = np.random.default_rng(int(seed))

    if getattr(layer, "is_loss", False):
        if y is not None:
            y = to_numpy(y)
            layer = layer.bind(from_numpy(y))
            batch = int(np.shape(y)[0])
        elif getattr(layer, "y", None) is None:
            if z_in is not None:
                batch = int(to_numpy(z_in).size) // n_in
            layer = _default_targets(layer, batch, rng)
        else:
            batch = int(layer.y.shape[0])
    elif y is not None:
        raise ValueError(f"y: only a loss head takes targets, got y for {layer!r}")

    if x is None:
        init = getattr(layer, "init", None)
        x = init(rng) if callable(init) else rng.standard_normal(n_params) / math.sqrt(n_in)
    x = np.array(to_numpy(x), dtype=np.float64, copy=True)
    if x.shape != (n_params,):
        raise ValueError(f"x: expected shape ({n_params},), got {x.shape}")
    if z_in is None:
        z_in = rng.standard_normal(batch * n_in)
    z_in = np.array(to_numpy(z_in), dtype=np.float64, copy=True)
    if z_in.ndim != 1 or z_in.size != batch * n_in:
        if z_in.ndim == 1 and z_in.size % n_in == 0 and z_in.size and not getattr(layer, "is_loss", False):
            batch = z_in.size // n_in
        else:
            raise ValueError(f"z_in: expected shape ({batch * n_in},) (batch {batch} x n_in {n_in}), got {z_in.shape}")
    a_in = z_in.size
    for a in (x, z_in):
        a.flags.writeable = False  # the checker's own copies stay as drawn

    report = LayerCheckReport(layer=layer, batch=batch, seed=int(seed))
    ck = _Checker(rtol)
    report.rows = ck.rows
    _run_checks(ck, layer, x, z_in, a_in, n_params, rng)
    if raise_on_failure:
        report.raise_if_failed()
    return report


def _fd_rule(h):
    return lambda S: FD_SAFETY * central_error_bound(h, S)


def _round_rule(n):
    return lambda S: ROUND_SAFETY * max(n, 1) * EPS * S


ROWS = (
    ("forward", "forward"), ("Jz", "jacobians"), ("Jx", "jacobians"), ("vjp: b_in", "vjp"),
    ("vjp: g_x", "vjp"), ("jvp", "jvp"), ("Hzz", "curvature"), ("Hxz", "curvature"),
    ("Hxx", "curvature"), ("Hzz symmetric", "curvature"), ("Hxx symmetric", "curvature"),
    ("second_order: z", "second_order"), ("second_order: x", "second_order"),
    ("vjp = b_out J", "vjp"), ("jvp = J d", "jvp"), ("second_order = H d", "second_order"),
)
"""Every row of a report, in order: ``(quantity, method)``."""


def _skip_rest(ck, reason):
    done = {r.quantity for r in ck.rows}
    for q, m in ROWS:
        if q not in done:
            ck.skip(q, m, reason)


def _run_checks(ck, layer, x, z_in, a_in, p, rng):
    _checks(ck, layer, x, z_in, a_in, p, rng)
    order = [q for q, _ in ROWS]
    ck.rows.sort(key=lambda r: order.index(r.quantity))


def _checks(ck, layer, x, z_in, a_in, p, rng):
    # x, z_in and every reference below are NumPy (host) arrays; the layer
    # gets copies on the active backend (_device) and its outputs come back
    # with _host / _array.
    w = np.concatenate([z_in, x])
    h = central_step(w)
    fd_rule = _fd_rule(h)
    xd, zd = _device(x), _device(z_in)

    def split(wv):
        """``w = (z_in, x)`` -> ``(x, z_in)`` on the backend, the protocol's order."""
        return _device(wv[a_in:]), _device(wv[:a_in])

    def compare_or_fail(quantity, method, part, expected, scale, reference):
        if isinstance(part, _MethodError):
            return ck.fail(quantity, method, str(part))
        return ck.compare(quantity, method, part, expected, tol_rule=fd_rule, scale=scale,
                          reference=reference)

    # -- forward --------------------------------------------------------------------
    try:
        z_out = _host("forward", _call(layer, "forward", xd, zd))
        if z_out.ndim != 1 or z_out.size == 0 or not np.all(np.isfinite(z_out)):
            raise _MethodError(f"forward: expected a finite flat vector, got shape {z_out.shape}")
        out_dim = getattr(layer, "out_dim", None)
        if callable(out_dim):
            a_out = int(out_dim(a_in // int(layer.n_in)))
            if z_out.shape != (a_out,):
                raise _MethodError(f"forward: expected shape ({a_out},) from out_dim, got {z_out.shape}")
        a_out = z_out.size
    except (_MethodError, TypeError, ValueError) as err:
        ck.fail("forward", "forward", str(err))
        _skip_rest(ck, "needs forward")
        return
    ck._row(quantity="forward", method="forward", status="pass", detail=f"shape ({a_out},), finite")

    # the random cotangent and direction; a loss head's b_out is a scalar β
    if getattr(layer, "is_loss", False):
        b_out = np.array([rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0])])
    else:
        b_out = rng.standard_normal(a_out)
    t_in, v = rng.standard_normal(a_in), rng.standard_normal(p)
    d = np.concatenate([t_in, v])
    for a in (b_out, t_in, v):
        a.flags.writeable = False
    bd, td, vd = _device(b_out), _device(t_in), _device(v)

    M0 = float(np.max(np.abs(z_out)))
    J_fd = central_jacobian(lambda wv: layer.forward(*split(wv)), w, h)
    b1, d1 = float(np.sum(np.abs(b_out))), float(np.sum(np.abs(d)))
    fd_fwd = "central differences of forward"

    # -- first order ----------------------------------------------------------------
    Jz, Jx = _parts(layer, "jacobians", (xd, zd), ("Jz", "Jx"), ((a_out, a_in), (a_out, p)))
    compare_or_fail("Jz", "jacobians", Jz, J_fd[:, :a_in], M0, fd_fwd)
    compare_or_fail("Jx", "jacobians", Jx, J_fd[:, a_in:], M0, fd_fwd)

    b_in, g_x = _parts(layer, "vjp", (xd, zd, bd), ("b_in", "g_x"), ((a_in,), (p,)))
    ref = b_out @ J_fd
    r1 = compare_or_fail("vjp: b_in", "vjp", b_in, ref[:a_in], b1 * M0, f"b_out @ ({fd_fwd})")
    r2 = compare_or_fail("vjp: g_x", "vjp", g_x, ref[a_in:], b1 * M0, f"b_out @ ({fd_fwd})")

    try:
        t_out = _array("jvp", _call(layer, "jvp", xd, zd, td, vd), (a_out,))
    except _MethodError as err:
        t_out = err
    compare_or_fail("jvp", "jvp", t_out, J_fd @ d, d1 * M0, f"({fd_fwd}) @ [t_in; v]")

    # -- second order: references differentiate the (checked) vjp ------------------------
    if not (r1.passed and r2.passed):
        _consistency(ck, Jz, Jx, b_out, d, b_in, g_x, t_out, None, None)
        _skip_rest(ck, "needs a correct vjp: its central differences are the reference")
        return

    def vjp_flat(wv):
        bi, gx = layer.vjp(*split(wv), bd)
        return np.concatenate([_host("vjp", bi), _host("vjp", gx)])

    H_fd = central_jacobian(vjp_flat, w, h)  # rows (b_in, g_x), columns (z_in, x)
    M0v = float(np.max(np.abs(np.concatenate([b_in, g_x]))))
    fd_vjp = "central differences of vjp at fixed b_out"
    Hxx, Hxz, Hzz = _parts(layer, "curvature", (xd, zd, bd), ("Hxx", "Hxz", "Hzz"),
                           ((p, p), (p, a_in), (a_in, a_in)))
    curv_ok = True
    for q, A, ref_block in (("Hzz", Hzz, H_fd[:a_in, :a_in]), ("Hxz", Hxz, H_fd[a_in:, :a_in]),
                            ("Hxx", Hxx, H_fd[a_in:, a_in:])):
        curv_ok &= compare_or_fail(q, "curvature", A, ref_block, M0v, fd_vjp).passed
    for q, A in (("Hzz", Hzz), ("Hxx", Hxx)):
        if isinstance(A, _MethodError):
            ck.skip(f"{q} symmetric", "curvature", f"needs a usable {q}")
        else:
            ck.compare(f"{q} symmetric", "curvature", A, A.T, tol_rule=fd_rule, scale=M0v, reference=f"{q}^T")

    r_z, r_x = _parts(layer, "second_order", (xd, zd, bd, td, vd), ("z part", "x part"), ((a_in,), (p,)))
    r_fd = H_fd @ d
    fd_so = "(central differences of vjp) @ [t_in; v]"
    so_ok = compare_or_fail("second_order: z", "second_order", r_z, r_fd[:a_in], d1 * M0v, fd_so).passed
    so_ok &= compare_or_fail("second_order: x", "second_order", r_x, r_fd[a_in:], d1 * M0v, fd_so).passed
    _consistency(ck, Jz, Jx, b_out, d, b_in, g_x, t_out,
                 (r_z, r_x) if so_ok else None, (Hxx, Hxz, Hzz) if curv_ok else None)


def _consistency(ck, Jz, Jx, b_out, d, b_in, g_x, t_out, so, curv):
    """Rounding-level agreement of the vector products with the explicit blocks,
    run only where both sides passed their finite-difference checks."""
    passed = {r.quantity: r.passed for r in ck.rows}
    have_J = bool(passed.get("Jz") and passed.get("Jx"))

    def check(quantity, method, actual, A, vec, reference):
        scale = float(np.max(np.abs(A) @ np.abs(vec), initial=0.0)) if A.size else 0.0
        return ck.compare(quantity, method, actual, A @ vec, tol_rule=_round_rule(A.shape[-1]),
                          scale=scale, reference=reference)

    if have_J and passed.get("vjp: b_in") and passed.get("vjp: g_x"):
        check("vjp = b_out J", "vjp", np.concatenate([b_in, g_x]), np.hstack([Jz, Jx]).T, b_out,
              "b_out @ [Jz, Jx]")
    else:
        ck.skip("vjp = b_out J", "vjp", "needs vjp, Jz and Jx to pass")
    if have_J and passed.get("jvp"):
        check("jvp = J d", "jvp", t_out, np.hstack([Jz, Jx]), d, "[Jz, Jx] @ [t_in; v]")
    else:
        ck.skip("jvp = J d", "jvp", "needs jvp, Jz and Jx to pass")
    if so is not None and curv is not None:
        Hxx, Hxz, Hzz = curv
        H = np.block([[Hzz, Hxz.T], [Hxz, Hxx]])
        check("second_order = H d", "second_order", np.concatenate(so), H, d,
              "[[Hzz, Hxz^T], [Hxz, Hxx]] @ [t_in; v]")
    else:
        ck.skip("second_order = H d", "second_order", "needs second_order and curvature to pass")
