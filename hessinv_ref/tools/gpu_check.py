r"""``hessinv-ref gpu-check``: every route on a non-NumPy backend, checked.

Run as ``python -m hessinv_ref.gpu_check`` or ``hessinv-ref gpu-check``.  On
the chosen backend (``--backend``, default ``cupy``) it

1. computes the Hessian-vector product by both routes (:func:`~hessinv_ref.hvp`
   and :func:`~hessinv_ref.polynomial_hvp`) and the dense ``H @ v``;
2. solves :math:`(H + εI)\, x = v` by every structured route the backend
   offers (``riccati``, ``ldu``, and ``banded`` on NumPy only; an unavailable
   route is listed with a note, not failed), by ``dense``
   (:class:`~hessinv_ref.dense.DenseFactorization`) and by the Krylov
   baselines ``cg`` and ``minres`` (NumPy and CuPy), and reports each
   solution's backward error;
3. times ``Curvature`` setup + ``riccati`` factor + solve against the dense
   route (Hessian assembly + ``xp.linalg.solve``) over a depth sweep, with
   the device synchronised before every clock reading.

Every result of 1 and 2 is compared twice: with the *backend's own* dense
oracle (``hessian(...) @ v``, and ``xp.linalg.solve(hessian(...) + εI, v)``),
and with the *NumPy* results of the same problem (same seed: the problem is
drawn with NumPy and moved with :func:`~hessinv_ref.backend.from_numpy`;
the NumPy side runs in float64 with ``scipy.linalg.solve``, on the inputs
exactly as the backend received them, i.e. after rounding to ``--dtype``).
Everything is printed as one table, a :class:`~hessinv_ref.testing.report.Report`
whose rows are :class:`~hessinv_ref.testing.report.Check` objects.

Tolerances
----------
The problem's conditioning is computed on the NumPy side, in float64, and
``eps`` is the machine epsilon of the working precision (``--dtype``).  With
``C = 1e3`` (:data:`SAFETY`):

* an inverse route passes when both its relative errors are at most
  ``C · eps · κ``, with ``κ = numpy.linalg.cond(H + εI)`` (2-norm), and its
  normwise backward error is at most ``C · eps``;
* ``cg`` and ``minres`` stop at a relative residual ``rtol`` (their
  default: ``1e-10``, or ``100 eps`` in float32), so their bounds are
  ``max(C · eps · κ, 10 · rtol · κ)`` and ``max(C · eps, 10 · rtol)``; they
  are baselines that need not converge (``cg`` on an indefinite matrix, or
  either in float32), so a row out of these bounds reads ``info`` and does
  not fail the run; an exception (the route broken on this backend) does,
  except :class:`~hessinv_ref.SingularPivotError`: a route that refuses a
  pivot by its documented rule (``rcond < eps``, see
  :mod:`hessinv_ref.factorization`) reports it, which is what it must do,
  and its row reads ``refused``, with the message's verdict (the matrix
  singular at this precision, or the route broken down and which route to
  use);
* a Hessian-vector product passes when both its relative errors are at most
  ``C · eps · κ_Hv``, with ``κ_Hv = ‖ |H| |v| ‖₂ / ‖H v‖₂`` (the condition
  number of the product: rounding every entry of ``H`` and ``v`` changes
  ``H v`` by at most ``eps · |H| |v|``).

Both are first-order error bounds with a factor ``C`` for the growth that
the bounds' dimension-dependent constants allow.  The default accuracy
problem (depth 12, width 6, batch 4, ``P = 483``, ``ε = 0.1``) has an
indefinite :math:`H + εI` with :math:`κ ≈ 170`, so the ``riccati`` row
exercises both of its pivot kinds, Cholesky and LU (the note says how
many of each).  Over seeds 0 to 19,
on NumPy and on ``array_api_strict``, the largest error of an exact route
or a product was below ``2e-3`` of its tolerance in float64 and below
``1e-3`` in float32.

Exit status: 0 when every check passes, 1 when one fails, 2 when the backend
cannot be used (CuPy or ``array-api-strict`` not installed, no CUDA device)
or an argument is bad; those cases print one line, no traceback.

The timing rows are not checked: they report seconds, the ratio
dense ÷ riccati and the relative difference of the two solutions.  The
dense route is skipped where its predicted memory (``5 P²`` numbers: the
Hessian, its assembly temporaries, ``H + εI`` and the LU copy) passes
``--dense-max-gib`` (default: 80 % of the free device memory on CuPy,
2 GiB elsewhere) or its predicted time (cubic in ``P`` from the previous
depth) passes ``--dense-max-s``.  The default timing sweep (width 32,
batch 16, no bias, depths 4 to 64: ``P`` up to 65 536, stage matrices of
order 1 536) is sized to finish within three minutes on a data-centre
GPU (an estimate: it has not yet run on one); on a CPU pass smaller ``--timing-*`` values or ``--no-timing``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._argtypes import depth_list, nonnegative_float, nonnegative_int, positive_float, positive_int
from ..testing.report import Check, Column, Report, number

__all__ = ["SAFETY", "main", "run_check", "add_arguments", "add_parser"]

SAFETY = 1e3
"""The factor ``C`` of the tolerances ``C · eps · κ`` (see the module notes)."""

INVERSE_ROUTES = ("riccati", "ldu", "banded", "dense")
"""The exact inverse routes checked, in the order of the table."""

KRYLOV_ROUTES = ("cg", "minres")
"""The inexact Krylov baselines, checked after the exact routes (on NumPy
and CuPy; skipped elsewhere) with their default ``rtol``."""

DEFAULTS = {
    "backend": "cupy",
    "dtype": "float64",
    "depth": 12,
    "width": 6,
    "batch": 4,
    "damping": 0.1,
    "scale": 1.0,
    "seed": 0,
    "timing_depths": (4, 8, 16, 32, 64),
    "timing_width": 32,
    "timing_batch": 16,
    "timing_damping": 1e-2,
    "dense_max_s": 60.0,
}


_RAISE = False  # set by run_check(traceback=True): errors propagate instead of becoming rows


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (package or device missing)."""


# -- the backend and its device ------------------------------------------------------


def _open_backend(name):
    """Check that backend ``name`` can run here; return a one-line description
    of its device.  Raises :class:`BackendUnavailable` with the reason."""
    from ..backend import BACKENDS, get_backend, use_backend

    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; expected one of {list(BACKENDS)}")
    if name == "cupy":
        try:
            import cupy
        except ImportError:
            raise BackendUnavailable(
                "CuPy is not installed: pip install 'hessinv_ref[gpu]' (CUDA 12), "
                "or see the README for other CUDA and ROCm versions"
            ) from None
        try:
            n_devices = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDARuntimeError (no driver, no device), or a broken install
            raise BackendUnavailable(f"CuPy is installed but no CUDA device is usable ({err})") from None
        if n_devices < 1:
            raise BackendUnavailable("CuPy is installed but no CUDA device was found")
    try:
        with use_backend(name):
            be = get_backend()
    except ImportError as err:
        raise BackendUnavailable(str(err)) from None
    if name == "cupy":  # pragma: no cover - needs a CUDA device
        import cupy

        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"CUDA device {dev.id}: {gpu}, CuPy {cupy.__version__}"
    if name == "array_api_strict":
        import array_api_strict

        return f"array-api-strict {array_api_strict.__version__}, virtual device {be.device!r}"
    return f"CPU, NumPy {np.__version__}"


def _sync():
    """Wait for the device to finish queued work (CuPy launches kernels
    asynchronously, so a clock read without this times the launch only).
    A no-op on the other backends, which compute synchronously."""
    from ..backend import get_backend

    if get_backend().name == "cupy":  # pragma: no cover - needs a CUDA device
        import cupy

        cupy.cuda.Device().synchronize()


def _release():
    """Return cached device memory to the driver between timing runs, so a
    large dense run is not refused because of the previous depth's blocks."""
    from ..backend import get_backend

    if get_backend().name == "cupy":  # pragma: no cover - needs a CUDA device
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()


def _default_dense_max_gib():
    from ..backend import get_backend

    if get_backend().name == "cupy":  # pragma: no cover - needs a CUDA device
        import cupy

        free, _total = cupy.cuda.Device().mem_info
        return 0.8 * free / 2**30
    return 2.0


# -- the problem, on NumPy and on the backend ---------------------------------------------


def _numpy_problem(depth, width, batch, seed, scale, bias, dtype):
    """``(net, params, X, y, v)`` drawn with NumPy (float64, seeded), then
    rounded to ``dtype`` (and held as float64 again), so that the NumPy
    oracle sees exactly the numbers the backend will get."""
    from ..backend import use_backend
    from ..testing import random_problem

    with use_backend("numpy"):
        net, params, X, y = random_problem(depth, width, batch, bias=bias, scale=scale, seed=seed)
    rng = np.random.default_rng(seed + 1)
    v = rng.standard_normal(net.n_params)

    def rounded(a):
        return np.asarray(a, dtype=np.float64).astype(dtype).astype(np.float64)

    params = [{k: rounded(a) for k, a in p.items()} for p in params]
    return net, params, rounded(X), np.asarray(y), rounded(v)


def _to_backend(params, X, y, v, dtype):
    """Explicit moves onto the active backend's device, in ``dtype``."""
    from ..backend import from_numpy

    params_b = [{k: from_numpy(a.astype(dtype)) for k, a in p.items()} for p in params]
    return params_b, from_numpy(X.astype(dtype)), from_numpy(y), from_numpy(v.astype(dtype))


def _shift(H, damping):
    """``H + εI`` on ``H``'s backend and device."""
    from ..backend import xp

    return H + damping * xp.eye(H.shape[0], dtype=H.dtype, device=H.device)


def _dense_solve(A, b):
    """``xp.linalg.solve(A, b)`` for a vector ``b``, through a one-column
    matrix (the standard's 1-D ``x2`` rule is easy to misread)."""
    from ..backend import xp

    return xp.reshape(xp.linalg.solve(A, xp.reshape(b, (-1, 1))), (-1,))


def _rel_backend(a, b):
    """``‖a - b‖₂ / ‖b‖₂``, computed on the backend."""
    from ..backend import xp

    den = float(xp.linalg.vector_norm(b))
    return float(xp.linalg.vector_norm(a - b)) / (den if den > 0 else 1.0)


def _rel_numpy(a, ref):
    """``‖a - ref‖₂ / ‖ref‖₂`` in float64 on the host (``a`` moved explicitly)."""
    from ..backend import to_numpy

    a = to_numpy(a).astype(np.float64)
    den = float(np.linalg.norm(ref))
    return float(np.linalg.norm(a - ref)) / (den if den > 0 else 1.0)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class _Row(Check):
    """One row of the table: a :class:`~hessinv_ref.testing.report.Check`
    whose ``error`` is the larger of its two relative errors (against the
    backend's dense oracle and against NumPy) and whose ``detail`` is the
    note; an inverse route also has a backward error and its bound."""

    vs_backend: float | None = None
    vs_numpy: float | None = None
    backward: float | None = None
    tolerance_backward: float | None = None


def _status_word(row):
    return "ok" if row.passed else row.status


class _Table(Report):
    """The rows of the one table, printed at the end: a
    :class:`~hessinv_ref.testing.report.Report` whose failures fail the run."""

    COLUMNS = (
        Column("check", lambda r: r.quantity, 24),
        Column("vs backend", number("vs_backend", ".1e", "-"), 12, ">"),
        Column("vs NumPy", number("vs_numpy", ".1e", "-"), 12, ">"),
        Column("backward", number("backward", ".1e", "-"), 11, ">"),
        Column("tolerance", number("tolerance", ".1e", "-"), 11, ">"),
        Column("status", _status_word, 8, gap=2),
        Column("note", lambda r: r.detail),
    )

    def check(self, name, rel_b, rel_np, bwd, tol, tol_bwd=None, note="", enforce=True):
        """One compared row; ``enforce=False``: out of tolerance reads
        ``info`` and does not fail the run."""
        ok = rel_b <= tol and rel_np <= tol and (bwd is None or bwd <= tol_bwd)
        finite = math.isfinite(rel_b) and math.isfinite(rel_np)
        status = "pass" if ok and finite else "FAIL" if enforce else "info"
        error = max(rel_b, rel_np) if not (math.isnan(rel_b) or math.isnan(rel_np)) else math.nan
        self.checks.append(_Row(name, status, error, tol, "relative 2-norm error", note,
                                vs_backend=rel_b, vs_numpy=rel_np, backward=bwd, tolerance_backward=tol_bwd))

    def note(self, name, status, note):
        """A row without numbers: ``status`` is ``skip``, ``refused`` or ``FAIL``."""
        self.checks.append(_Row(name, status, detail=note))


def _one_line(err):
    """The error as one short line for the table (or raised, under ``traceback=True``)."""
    if _RAISE:
        raise err
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:160]}"


def run_check(backend="cupy", *, depth=12, width=6, batch=4, damping=0.1, scale=1.0, seed=0,
              dtype="float64", timing_depths=(4, 8, 16, 32, 64), timing_width=32, timing_batch=16,
              timing_damping=1e-2, dense_max_gib=None, dense_max_s=60.0, traceback=False, out=print):
    """Run the check on ``backend``, print the table through ``out``, return
    the exit status (0 all passed, 1 a check failed, 2 backend unavailable).

    Parameters
    ----------
    backend : {"cupy", "array_api_strict", "numpy"}
    depth, width, batch : int
        The accuracy problem: :func:`hessinv_ref.testing.random_problem`
        (tanh ``Dense`` layers with bias and a softmax head).
    damping : float
        :math:`ε` of the accuracy problem.
    scale : float
        Weight gain of the accuracy problem.
    seed : int
    dtype : {"float64", "float32"}
        Working precision on the backend.  The NumPy reference is always
        float64.
    timing_depths : sequence of int
        Depths of the timing sweep; empty to skip it.
    timing_width, timing_batch : int
        Width and batch of the timing networks (no bias, ``scale=2``).
    timing_damping : float
    dense_max_gib : float, optional
        Skip the dense timing above this predicted memory; default 80 % of
        the free device memory on CuPy, 2 GiB elsewhere.
    dense_max_s : float
        Skip the dense timing once its predicted time passes this.
    traceback : bool
        Let the first error of a route propagate with its traceback
        (for debugging) instead of reporting it as a failed row.
    out : callable
        Where lines go.

    Returns
    -------
    int
    """
    from ..backend import check_dtype, use_backend

    global _RAISE
    dtype = check_dtype(dtype)
    _RAISE = bool(traceback)
    try:
        device = _open_backend(backend)
    except BackendUnavailable as err:
        print(f"hessinv-ref gpu-check: {backend} backend unavailable: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    table = _Table()
    with use_backend(backend):
        header = _accuracy(table, depth, width, batch, damping, scale, seed, dtype)
        timing = []
        if timing_depths:
            if dense_max_gib is None:
                dense_max_gib = _default_dense_max_gib()
            timing = _timing(timing_depths, timing_width, timing_batch, timing_damping, seed, dtype,
                             dense_max_gib, dense_max_s)
    width_line = len(table.header()) + 24
    out(f"hessinv-ref gpu-check: backend {backend} ({device}), {dtype}")
    out(header)
    out("tolerance: 1e3 * eps * kappa (inverse; kappa = cond_2(H + eps I)), "
        "1e3 * eps * kappa_Hv (Hv; kappa_Hv = || |H||v| || / ||Hv||), backward error <= 1e3 * eps")
    out("=" * width_line)
    out(table.header())
    out("-" * width_line)
    for row in table.checks:
        out(table.line(row))
    if timing:
        out("-" * width_line)
        out(f"timing: setup + riccati factor+solve vs dense (Hessian assembly + xp.linalg.solve), "
            f"width {timing_width}, batch {timing_batch}, no bias, eps {timing_damping:g}, synchronised")
        out(f"{'depth':>8}{'P':>9}{'riccati [s]':>13}{'dense [s]':>12}{'dense/riccati':>15}{'rel. diff':>11}  note")
        for row in timing:
            out(row)
    out("=" * width_line)
    elapsed = time.perf_counter() - start
    if table.failures:
        out(f"FAIL: {', '.join(r.quantity for r in table.failures)} ({elapsed:.1f} s)")
        return 1
    out(f"PASS: every check within its tolerance ({elapsed:.1f} s)")
    return 0


def _warning_notes(caught):
    """One short note per warning class: a route warns once per pivot, and
    the table needs the count and the first message, not all of them."""
    by_class = {}
    for w in caught:
        by_class.setdefault(type(w.message).__name__, []).append(_one_line(w.message))
    notes = []
    for name, messages in sorted(by_class.items()):
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        notes.append(f"{messages[0]}{more}")
    return notes


def _accuracy(table, depth, width, batch, damping, scale, seed, dtype):
    """Fill ``table`` with the HVP and inverse rows; return the header line."""
    import scipy.linalg

    from ..backend import BackendNotSupportedError, use_backend
    from ..backend.constants import machine_eps
    from ..factorization import SingularPivotError
    from ..curvature import Curvature
    from ..dense import hessian
    from ..rop import hvp, polynomial_hvp

    net, params, X, y, v = _numpy_problem(depth, width, batch, seed, scale, True, dtype)
    P = net.n_params
    with use_backend("numpy"):
        H_np = hessian(net, params, X, y)
        A_np = H_np + damping * np.eye(P)
        Hv_np = H_np @ v
        hvp_np = {"hvp (R-operator)": hvp(net, params, X, y, v),
                  "polynomial_hvp": polynomial_hvp(net, params, X, y, v),
                  "H @ v (dense)": Hv_np}
        x_np = scipy.linalg.solve(A_np, v)
    kappa = float(np.linalg.cond(A_np))
    lam_min = float(np.linalg.eigvalsh(A_np)[0])
    kappa_hv = float(np.linalg.norm(np.abs(H_np) @ np.abs(v)) / max(np.linalg.norm(Hv_np), np.finfo(float).tiny))
    params_b, X_b, y_b, v_b = _to_backend(params, X, y, v, dtype)
    eps = machine_eps(X_b.dtype)  # of the working precision, as the backend holds it
    tol_hv, tol_inv, tol_bwd = SAFETY * eps * kappa_hv, SAFETY * eps * kappa, SAFETY * eps

    # The backend's own dense oracle.  Should it fail, every row is still
    # computed and compared with NumPy, and fails for want of this reference.
    Hv_b = x_b = None
    try:
        H_b = hessian(net, params_b, X_b, y_b)
        Hv_b = H_b @ v_b
        x_b = _dense_solve(_shift(H_b, damping), v_b)
        del H_b
    except Exception as err:  # report it in the table, not as a traceback
        oracle_error = _one_line(err)
    else:
        oracle_error = ""

    def versus_backend(a, ref):
        return math.nan if ref is None else _rel_backend(a, ref)

    def attempt(name, fn, note_prefix=""):
        """``fn()``, or ``None`` after recording a skip or a failure."""
        try:
            return fn()
        except BackendNotSupportedError as err:
            table.note(name, "skip", " ".join(str(err).split(";")[0].split()))  # what, not the advice
        except SingularPivotError as err:
            # the route's rule (rcond < eps) refused a pivot: reported, not
            # wrong; the message says whether the matrix or the route is at fault
            table.note(name, "refused", note_prefix + _one_line(err))
        except Exception as err:  # report and go on: one broken route must not hide the others
            table.note(name, "FAIL", note_prefix + _one_line(err))
        return None

    routes = {
        "hvp (R-operator)": lambda: hvp(net, params_b, X_b, y_b, v_b),
        "polynomial_hvp": lambda: polynomial_hvp(net, params_b, X_b, y_b, v_b),
    }
    for name, fn in routes.items():
        Hv = attempt(name, fn)
        if Hv is not None:
            table.check(name, versus_backend(Hv, Hv_b), _rel_numpy(Hv, hvp_np[name]), None, tol_hv)
    if Hv_b is None:
        table.note("H @ v (dense)", "FAIL", f"the backend's dense oracle failed: {oracle_error}")
    else:
        table.check("H @ v (dense)", 0.0, _rel_numpy(Hv_b, hvp_np["H @ v (dense)"]), None, tol_hv,
                    note="the backend's own oracle, against NumPy")

    curv = attempt("Curvature", lambda: Curvature(net, params_b, X_b, y_b))
    for method in (INVERSE_ROUTES + KRYLOV_ROUTES) if curv is not None else ():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            def run(method=method):
                fact = curv.factorize(damping, method)
                x = fact.solve(v_b)
                return fact, x, fact.backward_error(x, v_b)

            result = attempt(method, run)
        if result is None:
            continue
        fact, x, bwd = result
        notes = _warning_notes(caught)
        pivots = getattr(fact, "pivots", None) if method == "riccati" else None
        if pivots:  # both pivot kinds (Cholesky, LU) should be exercised on the device
            n_lu = sum(getattr(p, "kind", "") == "lu" for p in pivots)
            notes.insert(0, f"{n_lu} of {len(pivots)} pivots by LU, the rest Cholesky")
        tol_x, tol_b, krylov = tol_inv, tol_bwd, method in KRYLOV_ROUTES
        if krylov:  # inexact: stopped at a relative residual rtol, and may not converge
            tol_x, tol_b = max(tol_inv, 10 * fact.rtol * kappa), max(tol_bwd, 10 * fact.rtol)
            notes.insert(0, f"rtol {fact.rtol:.1e}, {fact.iterations[0]} iterations")
        table.check(method, versus_backend(x, x_b), _rel_numpy(x, x_np), bwd, tol_x, tol_b,
                    "; ".join(notes), enforce=not krylov)
    if x_b is not None:
        table.check("xp.linalg.solve (oracle)", 0.0, _rel_numpy(x_b, x_np), None, tol_inv,
                    note="the backend's own oracle, against scipy.linalg.solve")

    definite = "positive definite" if lam_min > 0 else "indefinite"
    return (f"accuracy problem: depth {depth}, width {width}, batch {batch}, tanh, softmax head, bias, "
            f"scale {scale:g}, P={P}, seed {seed}, damping {damping:g}; H + eps I {definite}, "
            f"cond_2 {kappa:.3g}, kappa_Hv {kappa_hv:.3g} (NumPy, float64); eps {eps:.3g} ({dtype})")


def _timing(depths, width, batch, damping, seed, dtype, dense_max_gib, dense_max_s):
    """Rows of the timing section."""
    from ..curvature import Curvature
    from ..dense import hessian

    itemsize = np.dtype(dtype).itemsize

    def structured(problem):
        net, params_b, X_b, y_b, g_b = problem
        _sync()
        t0 = time.perf_counter()
        x = Curvature(net, params_b, X_b, y_b).factorize(damping, "riccati").solve(g_b)
        _sync()
        return x, time.perf_counter() - t0

    def dense(problem):
        net, params_b, X_b, y_b, g_b = problem
        _sync()
        t0 = time.perf_counter()
        x = _dense_solve(_shift(hessian(net, params_b, X_b, y_b), damping), g_b)
        _sync()
        return x, time.perf_counter() - t0

    def problem(depth):
        net, params, X, y, _ = _numpy_problem(depth, width, batch, seed, 2.0, False, dtype)
        g = np.ones(net.n_params)
        params_b, X_b, y_b, g_b = _to_backend(params, X, y, g, dtype)
        return net, params_b, X_b, y_b, g_b

    # Warm-up (untimed): the first calls compile kernels and create the
    # BLAS/solver handles, which would otherwise be charged to the first row.
    warm = problem(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structured(warm)
            dense(warm)
        except Exception:  # the timed rows report the error
            pass
    del warm

    rows, last_dense = [], None  # last_dense: (P, seconds) of the previous dense run
    for depth in depths:
        prob = problem(depth)
        P = prob[0].n_params
        note = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                x_r, t_r = structured(prob)
            note += sorted({type(w.message).__name__ for w in caught})
        except Exception as err:
            rows.append(f"{depth:>8}{P:>9}{'-':>13}{'-':>12}{'-':>15}{'-':>11}  riccati {_one_line(err)}")
            continue
        gib = 5 * P * P * itemsize / 2**30
        predicted_s = last_dense[1] * (P / last_dense[0]) ** 3 if last_dense else 0.0
        t_d = rel = None
        if gib > dense_max_gib:
            note.append(f"dense skipped: needs ~{gib:.1f} GiB > {dense_max_gib:.1f}")
        elif predicted_s > dense_max_s:
            note.append(f"dense skipped: predicted {predicted_s:.0f} s > {dense_max_s:g}")
        else:
            try:
                x_d, t_d = dense(prob)
                rel = _rel_backend(x_r, x_d)
                last_dense = (P, t_d)
                del x_d
            except Exception as err:
                note.append(f"dense {_one_line(err)}")
        del prob, x_r
        _release()
        dense_s = "-" if t_d is None else f"{t_d:.4f}"
        ratio = "-" if t_d is None else f"{t_d / t_r:.1f}"
        rel_s = "-" if rel is None else f"{rel:.1e}"
        rows.append(f"{depth:>8}{P:>9}{t_r:>13.4f}{dense_s:>12}{ratio:>15}{rel_s:>11}  {'; '.join(note)}")
    return rows


# -- command line -------------------------------------------------------------------------------


def add_arguments(p):
    """Add the options of the check to an ``argparse`` parser."""
    from ..backend import BACKENDS

    d = DEFAULTS
    p.add_argument("--backend", choices=BACKENDS, default=d["backend"],
                   help="array backend to check (default cupy)")
    p.add_argument("--dtype", choices=("float64", "float32"), default=d["dtype"],
                   help="working precision on the backend (default float64; the NumPy reference is float64)")
    p.add_argument("--depth", type=positive_int, default=d["depth"], help="depth of the accuracy problem (default 12)")
    p.add_argument("--width", type=positive_int, default=d["width"], help="width of the accuracy problem (default 6)")
    p.add_argument("--batch", type=positive_int, default=d["batch"], help="batch of the accuracy problem (default 4)")
    p.add_argument("--damping", type=nonnegative_float, default=d["damping"],
                   help="ε of the accuracy problem (default 0.1)")
    p.add_argument("--scale", type=positive_float, default=d["scale"],
                   help="weight gain of the accuracy problem (default 1)")
    p.add_argument("--seed", type=nonnegative_int, default=d["seed"], help="random seed (default 0)")
    p.add_argument("--timing-depths", type=depth_list, default=d["timing_depths"], metavar="L1,L2,...",
                   help="depths of the timing sweep, or 'none' (default 4,8,16,32,64)")
    p.add_argument("--timing-width", type=positive_int, default=d["timing_width"],
                   help="width of the timing networks (default 32)")
    p.add_argument("--timing-batch", type=positive_int, default=d["timing_batch"],
                   help="batch of the timing networks (default 16)")
    p.add_argument("--no-timing", action="store_true", help="skip the timing sweep")
    p.add_argument("--dense-max-gib", type=positive_float, default=None,
                   help="skip the dense timing above this predicted memory "
                        "(default 80%% of free device memory on CuPy, 2 GiB elsewhere)")
    p.add_argument("--dense-max-s", type=positive_float, default=d["dense_max_s"],
                   help="skip the dense timing once its predicted time passes this (default 60 s)")
    p.add_argument("--traceback", action="store_true",
                   help="let the first error propagate with its traceback instead of a FAIL row")
    return p


def add_parser(sub):
    """Add the ``gpu-check`` subcommand to an ``argparse`` sub-parsers object."""
    p = sub.add_parser(
        "gpu-check",
        help="check the HVP and every inverse route on a GPU (CuPy) or another backend, and time them",
        description="Check the Hessian-vector product and every inverse route on an array backend "
        "(default CuPy) against that backend's dense oracle and against NumPy, time riccati "
        "against dense, and print one table. Exit status 1 when a check fails, 2 when the "
        "backend cannot be used.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args):
    return run_check(
        args.backend,
        depth=args.depth,
        width=args.width,
        batch=args.batch,
        damping=args.damping,
        scale=args.scale,
        seed=args.seed,
        dtype=args.dtype,
        timing_depths=() if args.no_timing else args.timing_depths,
        timing_width=args.timing_width,
        timing_batch=args.timing_batch,
        dense_max_gib=args.dense_max_gib,
        dense_max_s=args.dense_max_s,
        traceback=args.traceback,
    )


def main(argv=None):
    """Entry point of ``python -m hessinv_ref.gpu_check``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m hessinv_ref.gpu_check",
        description=(__doc__ or "").split("\n\n")[0].replace("``", "").strip(),
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _run_cli(args)
    except (ValueError, TypeError) as err:
        print(f"hessinv-ref gpu-check: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
