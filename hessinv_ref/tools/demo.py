r"""``hessinv-ref demo``: a deep tall-skinny network, every route against dense.

The demo builds the paper's setting (``L - 1`` tanh :class:`Dense` layers of
one width, no bias, a softmax head) and prints, on stdout:

1. the Hessian-vector product by the R-operator and by the matrix
   polynomial, against the dense :math:`H v`;
2. every inverse route (:data:`~hessinv_ref.inverse.METHODS`) against
   ``scipy.linalg.solve`` on the dense :math:`H + εI`, with each route's
   backward error and a note: the number of its pivots that warned
   :class:`~hessinv_ref.factorization.IllConditionedPivotWarning` and the
   worst pivot condition, or, for ``cg`` and ``minres``, the iterations and
   the true relative residual, marked ``*`` when the method stopped at its
   iteration cap before reaching ``rtol``;
3. a depth sweep: the time of the structured routes and of the dense one,
   the log-log slope of each against depth fitted to the medians, and a
   conclusion phrased from those slopes (thresholds :data:`LINEAR_TOL` and
   :data:`CUBIC_MIN`).

The dense oracle costs :math:`O(P^3)` time and :math:`O(P^2)` memory.  As in
``hessinv-ref bench``, it is skipped when its predicted time or memory passes
a cap (``dense_max_s``, ``dense_max_gib``; ``force_dense`` runs it anyway):
the time is predicted by timing the same dense steps on a small network of
the same width and scaling by :math:`(P / P_0)^3`, and in the sweep from the
previous depth's measurement.  Without the oracle, section 1 compares the
two Hessian-vector routes with each other and section 2 compares every route
with ``banded`` (the most robust exact route); the backward errors need no
oracle.

Every time is the median of up to ``repeats`` runs (fewer once they have
taken :data:`REPEAT_BUDGET_S`), with the BLAS pinned to one thread by
default, as in ``hessinv-ref bench``; the header says which.

Progress on steps predicted to take longer than :data:`SLOW_S` seconds, and
on the sweep, goes to stderr (one line per step; the sweep's line is
rewritten in place when stderr is a terminal), so stdout holds only the
tables.
"""

from __future__ import annotations

import math
import re
import sys
import time
import warnings

import numpy as np

from ..curvature import Curvature
from ..testing.problems import tall_skinny_network

__all__ = ["run_demo", "pivot_note", "sweep_slopes", "conclusion",
           "dense_guard"]

# -- the thresholds the demo's sentences rest on -------------------------------------

SLOW_S = 2.0
"""A step predicted to take longer than this (seconds) announces itself on stderr."""

REPEAT_BUDGET_S = 1.0
"""Timed runs of one cell stop once they have taken this long together (at
least one run): a long run's noise is small next to its length, and one
slow outlier among short runs still gets outvoted by the median."""

LINEAR_TOL = 0.2
"""A structured route's slope within ``1 ± LINEAR_TOL`` reads "linear in depth"."""

CUBIC_MIN = 2.5
"""A dense slope of at least this reads "close to cubic" (``bench``'s target too)."""

FIT_MIN_DEPTH = 16
"""The slopes are fitted to depths ``>= FIT_MIN_DEPTH`` (all depths if fewer
than two are): below it fixed per-call costs hide the growth, as in ``bench``."""

CALIBRATION_P = 256
"""Parameter count of the small network timed to predict the dense oracle."""

KRYLOV_RTOL = 1e-10

DEFAULTS = dict(repeats=3, dense_max_s=30.0, dense_max_gib=4.0, krylov_maxiter=200, blas_threads=1)


# -- timing and warnings ------------------------------------------------------------------


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _median_recording(fn, repeats):
    """``(median seconds, last result, warnings of the last call)`` of up to
    ``repeats`` calls, fewer once they have taken :data:`REPEAT_BUDGET_S`.

    Every call's warnings are recorded, not shown; those of the last call
    are returned (each call warns the same, so counting all would multiply
    the count by the repeats)."""
    times, spent = [], 0.0
    while len(times) < repeats and (not times or spent < REPEAT_BUDGET_S):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, t = _timed(fn)
        times.append(t)
        spent += t
    return float(np.median(times)), out, list(caught)


def _reissue_others(caught):
    """Show the recorded warnings that no note aggregates, once each."""
    from ..factorization import IllConditionedPivotWarning
    from ..solvers import KrylovConvergenceWarning

    for w in caught:
        if not issubclass(w.category, (IllConditionedPivotWarning, KrylovConvergenceWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


_CONDITION = re.compile(r"condition estimate ([0-9.eE+\-]+|inf)")


def _condition_of(message):
    """The condition a pivot warning reports: its ``condition`` attribute if
    it has one, else the number after "condition estimate" in its text."""
    value = getattr(message, "condition", None)
    if value is not None:
        return float(value)
    found = _CONDITION.search(str(message))
    return float(found.group(1)) if found else None


def pivot_note(caught, pivot_condition=None, n_pivots=None):
    """One note for a route's :class:`IllConditionedPivotWarning` records.

    Parameters
    ----------
    caught : list of warnings.WarningMessage
        What one factorization warned (other categories are ignored).
    pivot_condition : float, optional
        The factorization's :attr:`~hessinv_ref.factorization.Factorization.pivot_condition`,
        which bounds the worst condition from above.
    n_pivots : int, optional
        How many pivots the route factored.

    Returns
    -------
    str
        ``""`` when nothing warned, else e.g. ``"38/256 pivots ill-conditioned,
        worst cond 5.6e+08"``.
    """
    from ..factorization import IllConditionedPivotWarning

    conds = [_condition_of(w.message) for w in caught if issubclass(w.category, IllConditionedPivotWarning)]
    if not conds:
        return ""
    known = [c for c in conds if c is not None]
    if pivot_condition is not None:
        known.append(float(pivot_condition))
    count = f"{len(conds)}/{n_pivots}" if n_pivots else f"{len(conds)}"
    noun = "pivot" if (n_pivots or len(conds)) == 1 else "pivots"
    worst = f", worst cond {max(known):.2g}" if known else ""
    return f"{count} {noun} ill-conditioned{worst}"


# -- progress on stderr -----------------------------------------------------------------


class _Progress:
    """Progress lines on ``stream`` (stderr), never on stdout.

    :meth:`slow` prints one line for a step predicted to take longer than
    :data:`SLOW_S`; :meth:`tick` shows where a loop is, rewriting one line
    in place on a terminal and printing whole lines elsewhere (a log file
    should not fill with carriage returns)."""

    def __init__(self, stream, enabled=True):
        self.stream = stream if enabled else None
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(self.stream is not None and isatty is not None and isatty())
        self._open = False

    def say(self, msg):
        if self.stream is None:
            return
        self.clear()
        print(f"[demo] {msg}", file=self.stream, flush=True)

    def slow(self, what, predicted_s):
        if predicted_s is not None and predicted_s > SLOW_S:
            self.say(f"{what}: predicted {predicted_s:.0f} s ...")

    def tick(self, msg):
        if self.stream is None:
            return
        if self.tty:
            self.stream.write(f"\r[demo] {msg}\x1b[K")
            self.stream.flush()
            self._open = True
        else:
            self.say(msg)

    def clear(self):
        if self._open:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._open = False


# -- the dense guard ----------------------------------------------------------------------


def _dense_bytes(P):
    """Predicted peak memory of the dense oracle, ``bench``'s rule: three
    ``P × P`` float64 arrays (the matrix, a shifted copy, its LU)."""
    return 3 * 8 * P * P


def dense_guard(P, caps, max_gib, force=False):
    """Why the dense oracle at ``P`` parameters is skipped, or ``None`` to run it.

    Parameters
    ----------
    P : int
    caps : hessinv_ref.bench._Caps
        The time cap and its last measurement (``(P_0, t_0)``): the time is
        predicted as :math:`t_0 (P / P_0)^3`.
    max_gib : float
        Memory cap for :func:`_dense_bytes`.
    force : bool
        Run whatever the prediction (``--force-dense``).
    """
    if force:
        return None
    reason = caps.skip(P)
    if reason is None and _dense_bytes(P) > max_gib * 2 ** 30:
        reason = f"predicted memory {_dense_bytes(P) / 2 ** 30:.1f} GiB > cap {max_gib:g} GiB"
    return reason


def _predicted(caps, P):
    """:math:`t_0 (P / P_0)^{exponent}` from the cap's last measurement."""
    if caps.last is None:
        return None
    P0, t0 = caps.last
    return t0 * (P / P0) ** caps.exponent


def _skip_note(reason):
    return f"skipped: {reason}; --force-dense runs it (or raise --dense-max-s/--dense-max-gib)"


# -- slopes and the conclusion ------------------------------------------------------------


def sweep_slopes(rows):
    """Log-log slopes of time against depth for ``riccati``, ``banded`` and
    ``dense``, fitted to the sweep's medians.

    Parameters
    ----------
    rows : list of dict
        Each with ``depth`` and the seconds ``riccati``, ``banded``,
        ``dense`` (``None`` where not measured).

    Returns
    -------
    slopes : dict
        Route -> least-squares slope of ``log t`` on ``log L`` (``nan``
        with fewer than two timed depths).
    fitted : list of int
        The depths fitted: those ``>= FIT_MIN_DEPTH`` if there are two,
        else all.
    """
    from .bench import loglog_slope

    fit = [r for r in rows if r["depth"] >= FIT_MIN_DEPTH]
    if len(fit) < 2:
        fit = list(rows)
    depths = [r["depth"] for r in fit]
    slopes = {m: loglog_slope(depths, [r[m] for r in fit]) for m in ("riccati", "banded", "dense")}
    return slopes, depths


def _structured_verdict(s):
    if math.isnan(s):
        return "no slope (fewer than two timed depths)", False
    if abs(s - 1) <= LINEAR_TOL:
        return f"slope {s:.2f}, linear in depth (within 1 ± {LINEAR_TOL:g})", True
    if s < 1:
        return f"slope {s:.2f}, slower than linear growth (below {1 - LINEAR_TOL:g})", False
    return f"slope {s:.2f}, faster than linear growth (above {1 + LINEAR_TOL:g})", False


def _dense_verdict(s):
    if math.isnan(s):
        return "no slope (fewer than two timed depths)", False
    if s >= CUBIC_MIN:
        return f"slope {s:.2f}, close to the cubic growth of dense LU (>= {CUBIC_MIN:g})", True
    if s > 1 + LINEAR_TOL:
        return f"slope {s:.2f}, between linear and cubic (below {CUBIC_MIN:g})", False
    return f"slope {s:.2f}, no faster than linear (<= {1 + LINEAR_TOL:g})", False


def conclusion(slopes, fitted, repeats):
    """The sweep's closing lines, phrased from the fitted slopes.

    Parameters
    ----------
    slopes : dict
        ``riccati``, ``banded``, ``dense`` -> slope (from :func:`sweep_slopes`).
    fitted : list of int
        The depths the slopes were fitted to.
    repeats : int
        Runs per timing (the medians' count), for the wording.

    Returns
    -------
    list of str
    """
    span = f"L = {', '.join(map(str, fitted))}"
    lines = [f"log-log slope of time against depth over {span} (medians of up to {repeats} runs):"]
    expected = True
    for m in ("riccati", "banded"):
        text, ok = _structured_verdict(slopes[m])
        lines.append(f"  {m}: {text}")
        expected &= ok
    text, ok = _dense_verdict(slopes["dense"])
    lines.append(f"  dense: {text}")
    expected &= ok
    if expected:
        lines.append("  as the theory says: structured time linear in depth, dense cubic.")
    else:
        lines.append("  this run does not show linear against cubic growth; on a busy machine, or at")
        lines.append("  small depths, more --repeats or a deeper --sweep help.")
    return lines


# -- the problem ----------------------------------------------------------------------------


def _problem(depth, width, batch, classes, scale, seed):
    net = tall_skinny_network(depth, width, classes)
    rng = np.random.default_rng(seed)
    params = net.init(seed=rng, scale=scale)
    X = rng.standard_normal((batch, width))
    y = rng.integers(0, classes, size=batch)
    return net, params, X, y


def _rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(float).tiny))


def _dense_reference(H, damping, v):
    import scipy.linalg

    return scipy.linalg.solve(H + damping * np.eye(H.shape[0]), v)


def _dense_oracle(curv, damping, v):
    """``(H, eigenvalues of H + εI, scipy.linalg.solve(H + εI, v))``."""
    H = curv.hessian()
    A = H + damping * np.eye(H.shape[0])
    return H, np.linalg.eigvalsh(A), _dense_reference(H, damping, v)


def _dense_cell(net, params, X, y, damping, g):
    """The sweep's dense cell: blocks, assembly, ``scipy.linalg.solve``."""
    H = Curvature(net, params, X, y).hessian()
    return _dense_reference(H, damping, g)


def _calibration_depth(depth, width, classes, target_P=CALIBRATION_P):
    """The largest depth ``<= depth`` whose network has at most ``target_P``
    parameters (1 if none has): every hidden layer has the same size, so
    ``P`` is affine in depth."""
    P1 = tall_skinny_network(1, width, classes).n_params
    if depth == 1 or P1 >= target_P:
        return 1
    per_layer = tall_skinny_network(2, width, classes).n_params - P1
    return int(max(1, min(depth, 1 + (target_P - P1) // per_layer)))


def _calibrate_dense(depth, width, batch, classes, scale, seed, damping):
    """Time the dense steps once on a small network of the same width.

    Returns a dict: ``P`` (its parameter count :math:`P_0`) and the seconds
    (the faster of two runs) of ``oracle`` (:func:`_dense_oracle`), ``route`` (the ``dense`` route,
    factor and solve) and ``cell`` (the sweep's :func:`_dense_cell`)."""
    d0 = _calibration_depth(depth, width, classes)
    net, params, X, y = _problem(d0, width, batch, classes, scale, seed)
    g = np.ones(net.n_params)
    curv = Curvature(net, params, X, y)
    curv.blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a timing run; the real run reports

        def route():
            try:
                curv.factorize(damping, "dense").solve(g)
            except np.linalg.LinAlgError:
                pass

        steps = {"oracle": lambda: _dense_oracle(curv, damping, g), "route": route,
                 "cell": lambda: _dense_cell(net, params, X, y, damping, g)}
        # the faster of two runs: the first pays for imports and LAPACK's
        # workspace queries, which would inflate the prediction P^3-fold
        t = {name: min(_timed(step)[1] for _ in range(2)) for name, step in steps.items()}
    t["P"] = net.n_params
    return t


# -- the routes -----------------------------------------------------------------------------


def _route(curv, damping, method, v, repeats, krylov_maxiter):
    """Factor and solve by one route; a dict with the times, the solution,
    the factorization and the last run's warnings (or the error)."""
    krylov = method in ("cg", "minres")
    options = {"rtol": KRYLOV_RTOL, "maxiter": krylov_maxiter} if krylov else {}
    row = {"method": method, "krylov": krylov, "error": None, "x": None, "fact": None}
    try:
        row["t_fact"], fact, caught = _median_recording(
            lambda: curv.factorize(damping, method, **options), repeats)
        row["fact"] = fact
        row["t_solve"], row["x"], caught_solve = _median_recording(lambda: fact.solve(v), repeats)
    except np.linalg.LinAlgError as err:
        # an unpivoted route may meet a numerically singular pivot on an
        # indefinite problem: a result to report, not a crash
        row["error"], caught, caught_solve = str(err), [], []
    row["warnings"] = caught + caught_solve
    _reissue_others(row["warnings"])
    return row


def _krylov_converged(fact, caught):
    """Whether every column converged: the solver's own ``converged`` flags
    when it has them, else the absence of a KrylovConvergenceWarning."""
    from ..solvers import KrylovConvergenceWarning

    flags = getattr(fact, "converged", None)
    if flags is not None:
        return bool(np.all(flags))
    return not any(issubclass(w.category, KrylovConvergenceWarning) for w in caught)


def _route_note(row, v):
    """The note column of one inverse route."""
    if row["error"] is not None:
        return "failed: " + row["error"]
    fact = row["fact"]
    if row["krylov"]:
        relres = _rel(fact.matvec(row["x"]), v)
        if _krylov_converged(fact, row["warnings"]):
            return f"{fact.iterations[0]} iterations, rel. residual {relres:.1e} (rtol {fact.rtol:g})"
        return (f"{fact.iterations[0]}* iterations, not converged: rel. residual {relres:.1e} "
                f"> rtol {fact.rtol:g}")
    pivots = getattr(fact, "pivot_rconds", None) or []
    return pivot_note(row["warnings"], fact.pivot_condition if pivots else None, len(pivots) or None)


# -- the demo ---------------------------------------------------------------------------------


def _check_options(repeats, dense_max_s, dense_max_gib, krylov_maxiter, blas_threads):
    """TypeError for a value of the wrong type, ValueError for one out of range."""
    for name, value, least in (("repeats", repeats, 1), ("krylov_maxiter", krylov_maxiter, 1),
                               ("blas_threads", blas_threads, 0)):
        what = "a positive integer" if least else "a non-negative integer"
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")
        if value < least:
            raise ValueError(f"{name}: expected {what}, got {value}")
    for name, value in (("dense_max_s", dense_max_s), ("dense_max_gib", dense_max_gib)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a positive number, got {type(value).__name__}")
        if not value > 0:  # nan fails too; inf means no cap
            raise ValueError(f"{name}: expected a positive number, got {value}")


def run_demo(depth=64, width=4, batch=2, classes=3, damping=1e-2, scale=2.0, seed=0,
             sweep=(16, 32, 64, 128), krylov_maxiter=DEFAULTS["krylov_maxiter"],
             repeats=DEFAULTS["repeats"], dense_max_s=DEFAULTS["dense_max_s"],
             dense_max_gib=DEFAULTS["dense_max_gib"], force_dense=False,
             blas_threads=DEFAULTS["blas_threads"], progress=True, out=print, err=None):
    """Print every route against the dense oracle, then a depth sweep; return 0.

    Parameters
    ----------
    depth, width, batch, classes : int
        The tall-skinny network: ``depth - 1`` tanh layers of ``width`` and a
        softmax head, no biases (the paper's setting).
    damping : float
        :math:`ε`.
    scale : float
        Weight gain over ``torch.nn.Linear``'s init; 2 keeps the curvature
        of a deep tanh chain well away from :math:`εI`.
    seed : int
    sweep : sequence of int
        Depths for the timing sweep (empty to skip); run in increasing order.
    krylov_maxiter : int
        Iteration cap for the ``cg`` and ``minres`` baselines, which need
        far more than this on the ill-conditioned, indefinite default
        problem; a row that stopped at the cap is marked ``*``.
    repeats : int
        Each timing is the median of this many runs, or of fewer once they
        have taken :data:`REPEAT_BUDGET_S` together.
    blas_threads : int
        Pin the BLAS to this many threads with ``threadpoolctl`` if it is
        installed, as ``hessinv-ref bench`` does (0: the library default).
        The structured routes work on blocks of a few rows, where threads
        only add synchronisation, and on a shared machine a threaded BLAS
        on tiny matrices makes the timings noisy.
    dense_max_s, dense_max_gib : float
        Skip the dense oracle, and the sweep's dense cells, once the
        predicted time or memory passes these caps.
    force_dense : bool
        Run the dense steps whatever their prediction.
    progress : bool
        Progress lines on ``err``.
    out : callable
        Where the tables' lines go (``print``).
    err : file, optional
        Where progress goes (default ``sys.stderr``).
    """
    from .bench import _blas_limit

    _check_options(repeats, dense_max_s, dense_max_gib, krylov_maxiter, blas_threads)
    prog = _Progress(sys.stderr if err is None else err, progress)
    limits = {}
    with _blas_limit(blas_threads, limits):
        _demo(depth, width, batch, classes, damping, scale, seed, sweep, krylov_maxiter, repeats,
              dense_max_s, dense_max_gib, force_dense, limits.get("blas_threads_applied"), prog, out)
    prog.clear()
    return 0


def _demo(depth, width, batch, classes, damping, scale, seed, sweep, krylov_maxiter, repeats,
          dense_max_s, dense_max_gib, force_dense, blas_threads, prog, out):
    from .bench import _Caps
    from ..inverse import METHODS

    def emit(line=""):
        prog.clear()
        out(line)

    net, params, X, y = _problem(depth, width, batch, classes, scale, seed)
    P = net.n_params
    v = np.random.default_rng(seed + 1).standard_normal(P)
    emit(f"hessinv-ref demo: depth L={depth}, width {width}, batch {batch}, "
         f"{classes} classes, no bias, tanh, P={P}, seed {seed}")
    emit(f"times: medians of up to {repeats} runs; BLAS threads "
         f"{'library default' if blas_threads is None else f'pinned to {blas_threads}'}")

    cal = _calibrate_dense(depth, width, batch, classes, scale, seed, damping)
    # one decision for the oracle and the dense route: their time together
    caps = _Caps(dense_max_s, 3.0)
    caps.record(cal["P"], cal["oracle"] + cal["route"])
    skipped = dense_guard(P, caps, dense_max_gib, force_dense)
    scale_up = (P / cal["P"]) ** 3
    curv, t_setup = _timed(lambda: Curvature(net, params, X, y))
    _, t_blocks = _timed(lambda: curv.blocks)
    if skipped is None:
        prog.slow(f"dense oracle at P={P} ({cal['oracle']:.2g} s at P={cal['P']}, times "
                  f"(P/{cal['P']})^3{'; forced' if force_dense else ''})", cal["oracle"] * scale_up)
        (H, eigs, x_ref), t_oracle = _timed(lambda: _dense_oracle(curv, damping, v))
    else:
        prog.say(f"dense oracle at P={P} {_skip_note(skipped)}")
        H = eigs = x_ref = None
    _header(emit, curv, damping, eigs, t_setup, t_blocks, t_oracle if H is not None else None, seed)
    emit()
    _hvp_section(emit, curv, H, v, repeats)
    emit()
    rows = _inverse_section(emit, curv, damping, v, x_ref, skipped, cal["route"] * scale_up,
                            METHODS, repeats, krylov_maxiter, prog)
    if any(r["krylov"] and "not converged" in r["note"] for r in rows):
        emit(f"   * = stopped at the iteration cap ({krylov_maxiter}, --krylov-maxiter) "
             f"before reaching rtol (KrylovConvergenceWarning)")
    if sweep:
        emit()
        caps = _Caps(dense_max_s, 3.0)
        caps.record(cal["P"], cal["cell"])
        _sweep_section(emit, sorted(set(sweep)), width, batch, classes, scale, seed, damping,
                       repeats, caps, dense_max_gib, force_dense, prog)


def _header(emit, curv, damping, eigs, t_setup, t_blocks, t_oracle, seed):
    from .bench import _hess_norm

    stats = f"loss {curv.loss():.6g}  |grad| {np.linalg.norm(curv.gradient()):.3g}  "
    if eigs is not None:
        stats += (f"|H|_2 {np.max(np.abs(eigs - damping)):.3g}  damping {damping:g}  "
                  f"kappa(H+eps I) {np.max(np.abs(eigs)) / np.min(np.abs(eigs)):.3g}  "
                  f"negative eigenvalues {int(np.sum(eigs < 0))}")
    else:
        stats += (f"|H|_2 ~ {_hess_norm(curv, 20, seed + 2):.3g} (power iteration)  damping {damping:g}  "
                  f"negative eigenvalues {_negative_from_riccati(curv, damping)} (riccati inertia)")
    emit(stats)
    line = f"forward+backward {1e3 * t_setup:.1f} ms, per-layer blocks {1e3 * t_blocks:.1f} ms (one run)"
    if t_oracle is not None:
        line += f", dense oracle (H assembly, eigenvalues, solve) {t_oracle:.2f} s"
    emit(line)


def _negative_from_riccati(curv, damping):
    """The number of negative eigenvalues of :math:`H + εI` from the Riccati
    pivots (Sylvester's law of inertia), or ``"-"`` if a pivot is singular."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # section 2 reports the pivots
        try:
            return curv.factorize(damping, "riccati").inertia()[1]
        except np.linalg.LinAlgError:
            return "-"


def _hvp_section(emit, curv, H, v, repeats):
    """Section 1; returns the reference H v (dense, or the R-operator's)."""
    times = {}
    results = {}
    for name, fn in (("R-operator (Pearlmutter)", lambda: curv.hvp(v)),
                     ("matrix polynomial", lambda: curv.polynomial().matvec(v))):
        times[name], results[name], _ = _median_recording(fn, repeats)
    if H is not None:
        emit("1. Hessian-vector product H v against the dense H @ v")
        ref = H @ v
    else:
        emit("1. Hessian-vector product H v: the matrix polynomial against the R-operator "
             "(dense oracle skipped)")
        ref = results["R-operator (Pearlmutter)"]
    emit(f"   {'route':<26}{'time [ms]':>11}{'rel. error':>12}")
    for name in times:
        err = "-" if H is None and name.startswith("R-op") else f"{_rel(results[name], ref):.1e}"
        emit(f"   {name:<26}{1e3 * times[name]:>11.2f}{err:>12}")
    return ref


def _inverse_section(emit, curv, damping, v, x_ref, skipped, predicted_route, methods, repeats,
                     krylov_maxiter, prog):
    """Section 2: one row per route; returns the rows."""
    if x_ref is not None:
        emit("2. Inverse (H + eps I)^-1 v against scipy.linalg.solve on the dense matrix")
    else:
        emit("2. Inverse (H + eps I)^-1 v against the banded route (dense oracle skipped); "
             "the backward error needs no oracle")
    emit(f"   {'method':<10}{'factor [ms]':>12}{'solve [ms]':>12}{'rel. error':>12}"
         f"{'backward err':>14}  note")
    # without the oracle, banded (LU with partial pivoting across layers, the
    # most robust exact route) is the reference: run it first
    order = list(methods) if x_ref is not None else ["banded"] + [m for m in methods if m != "banded"]
    rows, ref = [], x_ref
    t_hvp = None
    for method in order:
        if method == "dense" and skipped is not None:
            row = {"method": "dense", "krylov": False, "error": None, "x": None,
                   "note": _skip_note(skipped)}
            rows.append(row)
            continue
        if method == "dense":
            prog.slow(f"dense route at P={curv.P}", predicted_route)
        if method in ("cg", "minres"):
            if t_hvp is None:
                t_hvp = _median_recording(lambda: curv.hvp(v), 1)[0]
            prog.slow(f"{method}: up to {krylov_maxiter} R-operator products", krylov_maxiter * t_hvp)
        row = _route(curv, damping, method, v, repeats, krylov_maxiter)
        row["note"] = _route_note(row, v)
        if ref is None and method == "banded":
            ref = row["x"]
        rows.append(row)
    for row in sorted(rows, key=lambda r: list(methods).index(r["method"])):
        _emit_route(emit, row, v, ref, x_ref is None)
    return rows


def _emit_route(emit, row, v, ref, banded_is_ref):
    m = row["method"]
    if row["x"] is None:
        emit(f"   {m:<10}{'-':>12}{'-':>12}{'-':>12}{'-':>14}  {row['note']}")
        return
    if banded_is_ref and m == "banded":
        rel = "(ref)"
    else:
        rel = "-" if ref is None else f"{_rel(row['x'], ref):.1e}"
    bwd = row["fact"].backward_error(row["x"], v)
    emit(f"   {m:<10}{1e3 * row['t_fact']:>12.2f}{1e3 * row['t_solve']:>12.2f}"
         f"{rel:>12}{bwd:>14.1e}  {row['note']}")


def _sweep_section(emit, depths, width, batch, classes, scale, seed, damping, repeats, caps,
                   max_gib, force, prog):
    emit("3. Depth sweep: seconds for blocks + factor + solve (structured) vs blocks + assembly + "
         "solve (dense)")
    emit(f"   {'depth':>6}{'P':>7}{'riccati':>10}{'banded':>10}{'dense':>10}{'dense/riccati':>15}  note")
    rows, first_skip = [], None
    for i, L in enumerate(depths, 1):
        net, params, X, y = _problem(L, width, batch, classes, scale, seed)
        prog.tick(f"depth sweep {i}/{len(depths)}: L={L}, P={net.n_params}")
        row, notes = _sweep_row(net, params, X, y, damping, repeats, caps, max_gib, force, prog)
        row["depth"] = L
        rows.append(row)
        if row["dense"] is None and first_skip is None:
            first_skip = (L, row["dense_skipped"])
        emit(f"   {L:>6}{row['P']:>7}{_secs(row['riccati'])}{_secs(row['banded'])}"
             f"{_secs(row['dense'])}{_ratio(row['dense'], row['riccati']):>15}  {notes}")
    if first_skip is not None:
        emit(f"   dense from L={first_skip[0]}: {_skip_note(first_skip[1])}")
    slopes, fitted = sweep_slopes(rows)
    for line in conclusion(slopes, fitted, repeats):
        emit("   " + line)
    return rows, slopes


def _secs(t):
    return f"{'-':>10}" if t is None else f"{t:>10.4f}"


def _ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.1f}"


def _sweep_row(net, params, X, y, damping, repeats, caps, max_gib, force, prog):
    """One sweep depth: the median seconds of riccati, banded and (guarded)
    dense, each from the blocks on; and the aggregated pivot notes."""
    g = np.ones(net.n_params)
    P = net.n_params
    row, notes = {"P": P}, []
    for method in ("riccati", "banded"):
        try:
            row[method], _, caught = _median_recording(
                lambda: Curvature(net, params, X, y).factorize(damping, method).solve(g), repeats)
        except np.linalg.LinAlgError as err:
            row[method], caught = None, []
            notes.append(f"{method} failed: {err}")
        _reissue_others(caught)
        note = pivot_note(caught)
        if note:
            notes.append(f"{method} {note}")
    row["dense_skipped"] = dense_guard(P, caps, max_gib, force)
    if row["dense_skipped"] is None:
        prog.slow(f"dense at P={P}", _predicted(caps, P))
        row["dense"], _, caught = _median_recording(lambda: _dense_cell(net, params, X, y, damping, g),
                                                    repeats)
        _reissue_others(caught)
        caps.record(P, row["dense"])
    else:
        row["dense"] = None
    return row, "; ".join(notes)
