r"""``assert_*``: check another implementation's numbers against hessinv_ref's.

Each helper runs a *candidate* (the function under test, written in any
framework and wrapped to take and return NumPy arrays) on a list of problems,
compares its output with this package's exact answer and raises
``AssertionError`` naming the problem, the quantity and the error against the
tolerance.  Each failure is several short lines: the architecture and seed,
how to rebuild the problem, the error against the tolerance, the worst entry
(layer, ``W[row, col]`` or ``b[k]``, offset), the layers over tolerance, and
the likely cause: the common mistake (summed loss, damping forgotten or
doubled, GGN or block-diagonal curvature, a permuted layout, a sign flip,
float32) whose answer, recomputed by the oracle, the candidate's matches
(:mod:`hessinv_ref.testing.diagnose`).

=================================  ===================================================
helper                             candidate signature (flat arrays, our layout)
=================================  ===================================================
:func:`assert_gradient_close`      ``candidate(net, params, X, y) -> g``
:func:`assert_hvp_close`           ``candidate(net, params, X, y, v) -> Hv``
:func:`assert_inverse_hvp_close`   ``candidate(net, params, X, y, g, damping) -> x``
=================================  ===================================================

``params`` is the flat vector ``theta`` of length ``P`` (per layer ``W.ravel()``
row-major, then the bias: ``torch.nn.Linear``'s order), ``X`` has shape
(B, n_in), ``y`` is integer labels (B,) for a softmax head or float targets
(B, n_out) for a squared-error head, and the loss is the batch mean (PyTorch's
default reduction).  Each call gets fresh copies of the arrays.

The default problems (:func:`default_problems`) include the paper's setting
(tanh, no bias, softmax head), residual networks, a squared-error head, an
indefinite :math:`H + εI`, a convex model and a near-singular one.

Tolerances of the assertions
----------------------------
Errors are measured against the size of the *terms* an implementation must
add up, not the result (which may be a cancellation), and the allowance grows
with the length of those sums, ``n = P``:

* gradient: :math:`\max|g_c - g| / S_g \le C\, n\, ε`, with
  :math:`S_g = \max_l \max (|b_l|^T |J_{x,l}|)` (the backprop products);
* Hessian-vector product: :math:`\max|(Hv)_c - Hv| / S_{Hv} \le C\, n\, ε`,
  with :math:`S_{Hv} = \max (|H|\,|v|)`;
* inverse: :math:`\|x_c - x\|_2 / \|x\|_2 \le C\, n\, ε\, κ_2(H + εI)`, with
  :math:`κ_2` from the eigenvalues of the dense matrix: a backward-stable
  solve of a matrix whose entries are each right to :math:`n ε` is off by at
  most that much.

:math:`C = 100` (:data:`C_TOL`).  Measured on 200 random problems, PyTorch's
float64 autograd gradient, double-backward HVP and ``torch.linalg.solve`` on
its dense Hessian stayed below ``0.5 n ε`` (gradient, inverse) and ``5 n ε``
(HVP).  A wrong term is off by order one.  Pass ``rtol=`` to use a fixed
tolerance on the same error measure instead (for a float32 implementation,
say ``rtol=1e-4``).

Array backends and the assert helpers
-------------------------------------
The candidate always gets and returns NumPy arrays (the contract above).
The reference is computed by this package on the active backend
(:func:`hessinv_ref.get_backend`), from explicit copies
(:func:`~hessinv_ref.backend.from_numpy`), and copied back
(:func:`~hessinv_ref.backend.to_numpy`) for the comparison, which is NumPy
float64 arithmetic.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..backend import from_numpy, to_numpy
from ..backend.constants import EPS
from ..curvature import Curvature
from ..network import Network
from . import diagnose
from .diagnose import describe_architecture
from .problems import random_problem
from .report import Check, Column, Report
from .tolerances import C_TOL, gradient_scale, zero_band

__all__ = [
    "C_TOL",
    "OracleProblem",
    "default_problems",
    "assert_gradient_close",
    "assert_hvp_close",
    "assert_inverse_hvp_close",
]



@dataclass(frozen=True)
class OracleProblem:
    """A named problem ``(net, params, X, y)`` plus the dampings to solve with.

    Attributes
    ----------
    name : str
        Printed in failure messages; says how to rebuild the problem.
    net : Network
    params : numpy.ndarray, shape (P,)
        Flat parameters ``theta`` (NumPy, whatever the active backend).
    X : numpy.ndarray, shape (B, n_in)
    y : numpy.ndarray
        Labels (B,) or targets (B, n_out).
    damping : tuple of float
        The :math:`ε` values :func:`assert_inverse_hvp_close` uses.
    seed : int
        Seed of the random vectors ``v`` and ``g``.
    recipe : str
        How to rebuild the problem (printed with failures).
    """

    name: str
    net: Network
    params: np.ndarray
    X: np.ndarray
    y: np.ndarray
    damping: tuple = (1e-1,)
    seed: int = 0
    recipe: str = ""

    @property
    def label(self):
        """``name`` and, if known, the recipe."""
        return f"{self.name!r} [{self.recipe}]" if self.recipe else repr(self.name)

    @classmethod
    def random(cls, name=None, *, damping=(1e-1,), **kwargs):
        """Build one with :func:`~hessinv_ref.testing.random_problem`.

        ``kwargs`` are those of ``random_problem``; the default ``name`` lists
        them, so a failure message says how to rebuild the problem.
        """
        net, params, X, y = random_problem(**kwargs)
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        recipe = f"random_problem({args})"
        return cls(recipe if name is None else name, net, to_numpy(net.flatten(params)),
                   to_numpy(X), to_numpy(y), tuple(damping), int(kwargs.get("seed", 0)), recipe)

    def curvature(self):
        """The reference :class:`~hessinv_ref.Curvature`, on the active
        backend (explicit copies of ``params``, ``X``, ``y``)."""
        return Curvature(self.net, from_numpy(self.params), from_numpy(self.X), from_numpy(self.y))

    @classmethod
    def coerce(cls, problem, index):
        """Accept an :class:`OracleProblem` or a tuple ``(net, params, X, y)``
        (optionally followed by a name); arrays of NumPy or of the active
        backend (copied to NumPy)."""
        if isinstance(problem, cls):
            return problem
        if isinstance(problem, (tuple, list)) and len(problem) in (4, 5):
            net, params, X, y = problem[:4]
            if not isinstance(net, Network):
                raise TypeError(f"problems[{index}][0]: expected a Network, got {type(net).__name__}")
            name = str(problem[4]) if len(problem) == 5 else f"problems[{index}]"
            theta = net.flatten(params) if isinstance(params, (list, tuple)) else params
            theta = np.array(to_numpy(theta), dtype=np.float64)
            net.layer_vectors(from_numpy(theta))  # validates shape and values
            return cls(name, net, theta, to_numpy(X), to_numpy(y), (1e-1,), index)
        raise TypeError(
            f"problems[{index}]: expected an OracleProblem or a tuple (net, params, X, y[, name]), "
            f"got {type(problem).__name__}"
        )


def default_problems():
    """The problems every ``assert_*`` helper runs by default.

    Returns
    -------
    list of OracleProblem
        * ``paper``: tanh, no bias, softmax head (depth 6, width 3, gain 2);
        * ``residual``: residual tanh blocks with biases, softmax head;
        * ``mse``: mixed dense/residual gelu layers, squared-error head;
        * ``indefinite``: sigmoid layers, squared-error head; ``H + 0.01 I``
          has negative eigenvalues;
        * ``logistic``: one softmax layer without bias (convex);
        * ``near-singular``: a softmax head *with* bias has a null space
          (shifting every class's bias, or every row of its weight by one
          vector, changes nothing), so with ``ε = 1e-6`` the condition
          number is about ``1e6`` and the inverse tolerance grows with it.
    """
    R = OracleProblem.random
    return [
        R("paper", damping=(1e-1, 1e-3), depth=6, width=3, batch=2, activation="tanh",
          head="softmax", bias=False, scale=2.0, seed=0),
        R("residual", damping=(1e-1,), depth=5, width=3, batch=2, layers="residual",
          activation="tanh", head="softmax", bias=True, scale=1.5, seed=1),
        R("mse", damping=(1e-1,), depth=4, width=3, batch=3, layers="mixed", activation="gelu",
          head="mse", n_classes=2, bias=True, scale=1.0, seed=2),
        R("indefinite", damping=(1e-2,), depth=3, width=2, batch=4, activation="sigmoid",
          head="mse", n_classes=2, bias=True, scale=2.0, seed=3),
        R("logistic", damping=(1e-1,), depth=1, width=4, batch=5, head="softmax",
          bias=False, seed=4),
        R("near-singular", damping=(1e-6,), depth=3, width=3, batch=2, activation="tanh",
          head="softmax", bias=True, scale=1.0, seed=3),
    ]


@dataclass
class Comparison(Check):
    """One candidate output against the reference on one problem: a
    :class:`~hessinv_ref.testing.report.Check` (``quantity``, ``error``,
    ``tolerance``, ``measure``, ``detail``; the status is judged from the
    error and the tolerance) with the problem it was made on.

    ``diagnosis`` (a :class:`~hessinv_ref.testing.diagnose.Diagnosis`, for a
    failure) says where the error lives and which known mistake reproduces it.
    """

    problem: str = ""
    recipe: str = ""
    architecture: str = ""
    seed: int | None = None
    diagnosis: object = None

    def describe(self, recipe=True):
        """One line; with ``recipe``, also how to rebuild the problem."""
        where = f"{self.problem!r}" + (f" [{self.recipe}]" if recipe and self.recipe else "")
        msg = (
            f"problem {where}: {self.quantity} {self.measure} {self.error:.3e} "
            f"{'<=' if self.passed else '>'} tolerance {self.tolerance:.3e}"
        )
        return msg + (f" ({self.detail})" if self.detail else "")

    def explain(self):
        """Several short lines: the problem and quantity, the architecture
        and seed, how to rebuild it, the error against the tolerance, and the
        diagnosis (worst entry and its layer, the layers over tolerance, the
        likely cause)."""
        rows = [("architecture", self.architecture + ("" if self.seed is None else f"; seed {self.seed}"))]
        if self.recipe:
            rows.append(("rebuild", self.recipe))
        rows.append(("error", f"{self.measure} = {self.error:.2e} {'<=' if self.passed else '>'} "
                              f"tolerance {self.tolerance:.2e}" + (f" ({self.detail})" if self.detail else "")))
        if self.diagnosis is not None:
            rows += self.diagnosis.lines()
        width = max(len(label) for label, _ in rows)
        return "\n".join([f"problem {self.problem!r}, {self.quantity}:"]
                         + [f"  {label:<{width}}  {text}" for label, text in rows])


@dataclass
class OracleReport(Report):
    """What an ``assert_*`` helper compared; returned when everything passed.

    A :class:`~hessinv_ref.testing.report.Report` of :class:`Comparison`
    rows (``comparisons``, the same list as ``checks``); ``str(report)``
    lists them, :meth:`table` tabulates them with the problem first.
    """

    helper: str

    COLUMNS = (Column("problem", lambda c: c.problem, 16), *Report.COLUMNS)

    @property
    def comparisons(self):
        """The :class:`Comparison` rows (the list ``checks``)."""
        return self.checks

    @comparisons.setter
    def comparisons(self, rows):
        self.checks = rows

    def summary(self):
        """One line: how many comparisons passed."""
        return (f"{self.helper}: {len(self.comparisons) - len(self.failures)} of "
                f"{len(self.comparisons)} comparisons passed")

    def __str__(self):
        lines = [self.summary()]
        lines += ["  " + ("ok    " if c.passed else "FAIL  ") + c.describe(recipe=not c.passed)
                  for c in self.comparisons]
        return "\n".join(lines)

    def message(self):
        """The failure message: how many failed, then each failure explained."""
        head = (f"{self.helper}: {len(self.failures)} of {len(self.comparisons)} "
                f"comparisons failed")
        return "\n".join([head] + [c.explain() for c in self.failures])


# -- shared machinery ---------------------------------------------------------------


def _check_rtol(rtol):
    if rtol is None:
        return None
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (rtol > 0 and math.isfinite(rtol)):
        raise ValueError(f"rtol: expected a positive finite float, got {rtol!r}")
    return float(rtol)


def _problems(problems):
    if problems is None:
        return default_problems()
    if isinstance(problems, (OracleProblem, tuple)) and not (
        isinstance(problems, tuple) and problems and isinstance(problems[0], (OracleProblem, tuple, list))
    ):
        problems = [problems]
    out = [OracleProblem.coerce(p, i) for i, p in enumerate(problems)]
    if not out:
        raise ValueError("problems: expected at least one problem, got an empty sequence")
    return out


def _copies(prob):
    return prob.net, prob.params.copy(), prob.X.copy(), prob.y.copy()


def _vector(prob, stream):
    """A reproducible standard normal vector of length P for ``prob``."""
    return np.random.default_rng([prob.seed, stream]).standard_normal(prob.net.n_params)


def _output(helper, prob, quantity, value, P):
    try:
        out = np.asarray(to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AssertionError(
            f"{helper}: problem {prob.label}: the candidate's {quantity} is not convertible "
            f"to a float64 array ({err})"
        ) from None
    if out.shape != (P,):
        raise AssertionError(
            f"{helper}: problem {prob.label}: the candidate's {quantity} has shape "
            f"{out.shape}, expected ({P},) in the flat parameter layout"
        )
    return out


def _run(helper, candidate, prob, *args):
    if not callable(candidate):
        raise TypeError(f"candidate: expected a callable, got {type(candidate).__name__}")
    try:
        return candidate(*_copies(prob), *args)
    except Exception as err:
        if hasattr(err, "add_note"):
            err.add_note(f"{helper}: raised by the candidate on problem {prob.label}")
        raise


def _comparison(prob, quantity, error, tolerance, measure, detail=""):
    return Comparison(quantity, error=error, tolerance=tolerance, measure=measure, detail=detail,
                      problem=prob.name, recipe=prob.recipe,
                      architecture=describe_architecture(prob.net), seed=prob.seed)


def _diagnose(comparison, how, *args, **kwargs):
    """Attach the diagnosis of a failed comparison (``how`` a ``diagnose_*``)."""
    if not comparison.passed:
        comparison.diagnosis = how(*args, **kwargs)
    return comparison


def _finish(report, raise_on_failure):
    if raise_on_failure:
        report.raise_if_failed()
    return report


# -- the helpers --------------------------------------------------------------------


def assert_gradient_close(candidate, *, problems=None, rtol=None, raise_on_failure=True):
    r"""Check a gradient implementation against :meth:`Network.gradient`.

    Parameters
    ----------
    candidate : callable
        ``candidate(net, params, X, y) -> g``: ``params`` flat (P,), ``g`` of
        shape (P,) in the same layout, the gradient of the batch-mean loss.
    problems : sequence, optional
        :class:`OracleProblem` objects or tuples ``(net, params, X, y[, name])``;
        default :func:`default_problems`.
    rtol : float, optional
        Fixed tolerance on :math:`\max|g_c - g| / S_g` (module notes); default
        :math:`C n ε`.
    raise_on_failure : bool
        Raise (default) or just return the report.

    Returns
    -------
    OracleReport

    Raises
    ------
    AssertionError
        Naming each failing problem, the quantity and the error against the
        tolerance, the worst entry and its layer.
    """
    rtol = _check_rtol(rtol)
    report = OracleReport("assert_gradient_close")
    for prob in _problems(problems):
        curv = prob.curvature()
        g = to_numpy(curv.gradient())
        P = prob.net.n_params
        S = gradient_scale(curv)
        out = _output(report.helper, prob, "gradient", _run(report.helper, candidate, prob), P)
        comparison = _comparison(prob, "gradient", float(np.max(np.abs(out - g))) / S,
                                 rtol if rtol is not None else C_TOL * P * EPS,
                                 "max|g_c - g| / max(|b|^T|Jx|)")
        report.comparisons.append(_diagnose(
            comparison, diagnose.diagnose_gradient, diagnose.Problem(prob.net, prob.params, prob.X, prob.y),
            out, reference=g, scale=S, rtol=rtol))
    return _finish(report, raise_on_failure)


def assert_hvp_close(candidate, *, problems=None, rtol=None, raise_on_failure=True):
    r"""Check a Hessian-vector product against the dense Hessian times ``v``.

    Parameters
    ----------
    candidate : callable
        ``candidate(net, params, X, y, v) -> Hv``: flat arrays of shape (P,).
    problems : sequence, optional
        :class:`OracleProblem` objects or tuples ``(net, params, X, y[, name])``;
        default :func:`default_problems`.  ``v`` is standard normal, drawn
        from ``numpy.random.default_rng([problem.seed, 1])``.
    rtol : float, optional
        Fixed tolerance on :math:`\max|(Hv)_c - Hv| / \max(|H||v|)`; default
        :math:`C n ε` (module notes).
    raise_on_failure : bool
        Raise (default) or just return the report.

    Returns
    -------
    OracleReport

    Raises
    ------
    AssertionError
        Naming each failing problem, the error against the tolerance, the
        worst entry and its layer.
    """
    rtol = _check_rtol(rtol)
    report = OracleReport("assert_hvp_close")
    for prob in _problems(problems):
        H = to_numpy(prob.curvature().hessian())
        P = prob.net.n_params
        v = _vector(prob, 1)
        ref = H @ v
        S = float(np.max(np.abs(H) @ np.abs(v)))
        S = S if S > 0 else 1.0
        out = _output(report.helper, prob, "Hv", _run(report.helper, candidate, prob, v.copy()), P)
        comparison = _comparison(prob, "Hv", float(np.max(np.abs(out - ref))) / S,
                                 rtol if rtol is not None else C_TOL * P * EPS,
                                 "max|Hv_c - Hv| / max(|H||v|)")
        report.comparisons.append(_diagnose(
            comparison, diagnose.diagnose_hvp,
            diagnose.Problem(prob.net, prob.params, prob.X, prob.y, hessian=H),
            out, v, reference=ref, scale=S, rtol=rtol))
    return _finish(report, raise_on_failure)


def assert_inverse_hvp_close(candidate, *, problems=None, damping=None, rtol=None,
                             raise_on_failure=True):
    r"""Check an inverse-Hessian-vector product :math:`(H + εI)^{-1} g`.

    Parameters
    ----------
    candidate : callable
        ``candidate(net, params, X, y, g, damping) -> x``: flat arrays of
        shape (P,), ``damping`` a float.
    problems : sequence, optional
        :class:`OracleProblem` objects (each with its own ``damping`` tuple) or
        tuples ``(net, params, X, y[, name])`` (damping ``0.1``); default
        :func:`default_problems`.  ``g`` is standard normal, drawn from
        ``numpy.random.default_rng([problem.seed, 2])``.
    damping : float or sequence of float, optional
        Use these :math:`ε` on every problem instead of each problem's own.
    rtol : float, optional
        Fixed tolerance on :math:`\|x_c - x\|_2 / \|x\|_2`; default
        :math:`C n ε κ_2(H + εI)`.
    raise_on_failure : bool
        Raise (default) or just return the report.

    Returns
    -------
    OracleReport

    Raises
    ------
    AssertionError
        Naming each failing problem and damping, the error against the
        tolerance and the condition number.
    ValueError
        If :math:`H + εI` is numerically singular for a problem (no answer to
        compare with): choose a larger damping.
    """
    rtol = _check_rtol(rtol)
    if damping is not None:
        damping = tuple(np.atleast_1d(np.asarray(damping, dtype=np.float64)).tolist())
        if not damping or not all(math.isfinite(d) and d >= 0 for d in damping):
            raise ValueError(f"damping: expected finite numbers >= 0, got {damping!r}")
    report = OracleReport("assert_inverse_hvp_close")
    for prob in _problems(problems):
        H = to_numpy(prob.curvature().hessian())
        P = prob.net.n_params
        g = _vector(prob, 2)
        problem = diagnose.Problem(prob.net, prob.params, prob.X, prob.y, hessian=H)  # shared by the dampings
        for eps_d in damping if damping is not None else prob.damping:
            A = H + eps_d * np.eye(P)
            w = np.linalg.eigvalsh(A)
            kappa = float(np.max(np.abs(w)) / np.min(np.abs(w))) if np.min(np.abs(w)) > 0 else math.inf
            if not float(np.min(np.abs(w))) > zero_band(w):
                raise ValueError(
                    f"problem {prob.label}: H + {eps_d:g} I is numerically singular "
                    f"(condition number {kappa:.3g}); choose a larger damping"
                )
            ref = np.linalg.solve(A, g)
            out = _output(report.helper, prob, "inverse-Hessian-vector product",
                          _run(report.helper, candidate, prob, g.copy(), float(eps_d)), P)
            err = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
            n_neg = int(np.count_nonzero(w < 0))
            comparison = _comparison(prob, f"(H + {eps_d:g} I)^-1 g", err,
                                     rtol if rtol is not None else C_TOL * P * EPS * kappa,
                                     "||x_c - x|| / ||x||",
                                     f"kappa(H + eps I) = {kappa:.3g}, {n_neg} negative eigenvalues")
            report.comparisons.append(_diagnose(
                comparison, diagnose.diagnose_inverse, problem, out, g, eps_d,
                reference=ref, kappa=kappa, rtol=rtol))
    return _finish(report, raise_on_failure)
