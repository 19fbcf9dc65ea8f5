r"""``hessinv-ref bench``: measure the headline, time linear in depth.

The benchmark builds the paper's tall-skinny networks (``L - 1`` tanh
:class:`~hessinv_ref.layers.Dense` layers of one width, no bias, a softmax
head) and times, for each size, as separate columns:

``setup``
    the per-point work every route shares: the forward and backward passes
    and the per-layer blocks (``Curvature(...)`` then ``.blocks``);
``riccati``, ``ldu``, ``banded``
    one structured route on those blocks, factorization plus one solve;
``hvp``
    one Hessian-vector product by the R-operator (Pearlmutter);
``dense``
    the oracle route: assemble the dense ``P × P`` Hessian from the blocks,
    then ``scipy.linalg.solve(H + εI, g)`` (LU with partial pivoting);
    skipped once its predicted time or memory passes a cap;
``cg``
    conjugate gradients on the R-operator to a stated relative residual,
    with an iteration cap (it need not converge: :math:`H` is indefinite).

Each time is the median over ``--repeats`` runs (a single run for a route
whose first run already takes longer than a second).  Peak memory of
``setup + riccati`` and ``setup + banded`` is measured by :mod:`tracemalloc`
in separate, untimed runs.  Three timed sweeps:

* **depth** at fixed width and batch (default width 4, batch 2,
  ``L = 4, 8, ..., 1024``), with the least-squares log-log slope of time
  against depth for ``L >= 16``, and the speed-up of the structured route
  over the dense one;
* **width** at fixed depth (default ``L = 16``, batch 8, widths 4 to 32),
  with the Riccati route's achieved GFLOP/s (flops counted analytically
  from the block sizes, :func:`riccati_flops`) as a fraction of the dgemm
  GFLOP/s measured in the same run;
* **crossover**: short networks of a wide layer (default width 4, batch 64,
  so ``a = 256 > p = 16``) where the structured routes' per-layer
  :math:`(p + a)^3` or :math:`(p + 2a)^3` exceeds the dense cost until the
  network is deep enough; the first depth at which each route beats dense.

A fourth, **robustness** (``--sweeps robustness``, not run by default; no
timing), is the evidence behind the default route: ``--robustness-draws``
random small problems (depth 1-8, widths 1-4, batch 1-3, every layer kind,
activation and head, biases on or off, gain 0.5-2), each at a small damping
(``ε = 10^u ‖H‖_2``, ``u`` uniform in ``[-4, 0]``: mostly indefinite) and a
large one (``u`` in ``[1, 30]``: Levenberg-Marquardt), in float64 and
float32, through ``banded``, ``riccati`` and ``ldu``; per route, precision
and regime it counts the refusals by verdict (``SingularPivotError`` with
``cause`` ``"route"`` or ``"matrix"``) and the warnings, and gives the
forward error against the float64 dense solve over ``eps κ_2(H + εI)`` and
the backward error over ``eps``.

The problem at every size is seeded and deterministic.  Weights are drawn
with a gain (``--scale``, default 2) at which the Hessian is far from
:math:`εI`: each row reports the gradient norm and :math:`\|H\|_2`
estimated by power iteration with the R-operator.

BLAS threads
------------
By default the whole run (every column, dgemm included) pins the BLAS to
one thread with ``threadpoolctl`` when it is installed (``--blas-threads``;
``0`` leaves the library default).  The structured routes work on blocks of
a few dozen rows, where a threaded BLAS only adds synchronisation, and on a
shared machine a threaded OpenBLAS on tiny matrices can be slower by orders
of magnitude.  The dense route's large LU would gain at most the number of
cores; the report states the setting used.

JSON output (``--json FILE``)
-----------------------------
One object:

``schema``
    ``"hessinv_ref.bench/1"``.
``config``
    every option of the run (depths, widths, batch, scale, damping, seed,
    repeats, caps, timer, blas_threads, ...).
``environment``
    ``machine``, ``processor``, ``cpu_count``, ``python``, ``numpy``,
    ``scipy``, ``hessinv_ref``, ``blas`` (list of dicts from
    ``threadpoolctl.threadpool_info()``, or one ``{"summary": ...}`` from
    ``numpy.show_config``), ``blas_threads`` (the limit applied, or
    ``null``), ``timer`` (``"wall"`` or ``"cpu"``) and the ``OPENBLAS_*``
    environment variables that were set.
``dgemm_gflops``
    dgemm rate, GFLOP/s, of an ``n × n`` product (``dgemm_n``) measured at
    the start of the run.
``depth_sweep``
    ``{"width", "batch", "rows", "slopes"}``.  Each row: ``depth``, ``P``
    (parameters), ``A`` (activations, :math:`\sum_l a_l`), ``grad_norm``,
    ``hess_norm`` (power-iteration estimate of :math:`\|H\|_2`),
    ``setup_s``, ``riccati_s``, ``riccati_factor_s``, ``riccati_solve_s``,
    ``riccati_flops``, ``riccati_lu_pivots``, ``ldu_s``, ``banded_s``,
    ``hvp_s``, ``dense_s`` (assembly + solve,
    ``null`` if skipped), ``dense_skipped`` (reason or ``null``), ``cg_s``,
    ``cg_iterations``, ``cg_converged``, ``cg_relres`` (``null`` when cg
    was skipped), ``riccati_relres``, ``ldu_relres``, ``banded_relres``
    (relative residuals :math:`\|(H+εI)x - g\|/\|g\|` by the R-operator),
    ``mem_riccati_bytes``, ``mem_banded_bytes`` (tracemalloc peaks of
    setup + route), ``dense_mem_bytes`` (predicted, :math:`8P^2` for the
    matrix alone), ``per_layer_us`` (``(setup_s + riccati_s) / depth`` in
    µs), ``speedup_dense`` (``(setup_s + dense_s) / (setup_s +
    riccati_s)``).  ``slopes`` maps each column (``setup``,
    ``setup+riccati``, ``setup+ldu``, ``setup+banded``, ``hvp``, ``dense``,
    ``mem_riccati``, ``mem_banded``) to its log-log slope over ``L >= 16``.
``width_sweep``
    ``{"depth", "batch", "dgemm_gflops", "rows"}``; each row: ``width``,
    ``P``, ``setup_s``, ``riccati_s``, ``riccati_flops``,
    ``riccati_gflops``, ``fraction_of_dgemm``, ``riccati_lu_pivots``
    (pivots factored by LU because they are indefinite: about twice the
    Cholesky flops counted), the same at a
    damping that makes :math:`H + εI \succ 0` (``pd_damping``,
    ``riccati_pd_s``, ``riccati_pd_gflops``, ``fraction_of_dgemm_pd``,
    ``riccati_pd_lu_pivots``), ``dense_s`` (or ``null``),
    ``dense_skipped``.
``crossover``
    ``{"width", "batch", "rows", "first_win"}``; rows as in the depth
    sweep (``setup_s``, ``riccati_s``, ``ldu_s``, ``banded_s``,
    ``dense_s``); ``first_win`` maps each structured route to the
    smallest depth from which setup + route beats setup + dense at every
    larger measured depth (``null`` if it does not at the largest).
``robustness``
    ``{"draws", "seed", "rows"}``; each row: ``route``, ``dtype``,
    ``regime`` (``"indefinite"``, ``"positive definite"`` at the small
    damping, ``"large damping"``), ``cells``, ``refused_route``,
    ``refused_matrix``, ``refused_open`` (no verdict), ``warned``,
    ``near_singular`` (cells with :math:`κ_2 \ge 1/(16 P\, \mathrm{eps})`),
    ``forward_median``, ``forward_max`` (error over ``eps κ_2``, solved
    cells), ``forward_max_unwarned`` (the same over the cells solved
    without a warning), ``backward_max`` (backward error over ``eps``).
``targets``
    list of ``{"name", "value", "target", "met"}`` for the headline
    ratios (``met`` is ``null`` where the run lacks the data).

Run ``hessinv-ref bench --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import sys
import time
import tracemalloc
import warnings

import numpy as np
import scipy
import scipy.linalg

from ..activations import ACTIVATIONS
from ..curvature import Curvature
from ..factorization import IllConditionedPivotWarning, SingularPivotError
from ..testing.problems import tall_skinny_network

__all__ = [
    "add_parser",
    "run_bench",
    "riccati_flops",
    "loglog_slope",
    "dgemm_gflops",
    "environment",
    "format_report",
    "write_json",
    "write_csv",
    "plot_depth",
]

SCHEMA = "hessinv_ref.bench/1"
STRUCTURED = ("riccati", "ldu", "banded")
DEFAULTS = dict(
    depths=tuple(2 ** k for k in range(2, 11)),  # 4 .. 1024
    width=4,
    batch=2,
    classes=3,
    widths=(4, 8, 16, 32),
    width_depth=16,
    width_batch=8,
    crossover_depths=(1, 2, 4, 8, 16, 32, 64, 128),
    crossover_width=4,
    crossover_batch=64,
    scale=2.0,
    damping=1e-2,
    seed=0,
    repeats=5,
    dense_max_s=600.0,
    dense_max_gib=4.0,
    cg_rtol=1e-6,
    cg_maxiter=500,
    cg_max_s=30.0,
    power_iters=20,
    dgemm_n=1024,
    blas_threads=1,
    timer="wall",
    memory=True,
    robustness_draws=200,
)
SWEEPS = ("depth", "width", "crossover", "robustness")


# -- timing ----------------------------------------------------------------------


def _clock(timer):
    """``time.perf_counter`` (wall) or ``time.process_time`` (CPU time of the
    process, all threads: equal to wall time for a single-threaded run on an
    idle machine, and robust to other processes on a shared one)."""
    if timer == "wall":
        return time.perf_counter
    if timer == "cpu":
        return time.process_time
    raise ValueError(f"timer: expected 'wall' or 'cpu', got {timer!r}")


def _median_time(fn, repeats, clock, slow=1.0):
    """Median time of ``fn()`` over ``repeats`` calls, and the last result.

    A call that takes longer than ``slow`` seconds is not repeated: the
    noise of one long run is small next to its length."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        start = clock()
        out = fn()
        times.append(clock() - start)
        if times[-1] > slow:
            break
    return float(np.median(times)), out


def dgemm_gflops(n=1024, repeats=5, timer="wall"):
    r"""Measured dgemm rate in GFLOP/s: :math:`2n^3` flops over the median
    time of ``A @ B`` for ``n × n`` float64 matrices."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    A @ B  # warm up (thread pool, page faults)
    t, _ = _median_time(lambda: A @ B, repeats, _clock(timer), slow=math.inf)
    return 2.0 * n ** 3 / t / 1e9


# -- the problem -------------------------------------------------------------------


def _problem(depth, width, batch, classes, scale, seed):
    """The seeded tall-skinny problem: ``(net, theta, X, y, g)``."""
    net = tall_skinny_network(depth, width, classes)
    rng = np.random.default_rng(seed)
    theta = net.flatten(net.init(seed=rng, scale=scale))
    X = rng.standard_normal((batch, width))
    y = rng.integers(0, classes, size=batch)
    g = np.random.default_rng(seed + 1).standard_normal(net.n_params)
    return net, theta, X, y, g


def riccati_flops(blocks, n_rhs=1):
    r"""Flops of one Riccati factorization and ``n_rhs`` solves, counted from
    the block sizes (:ref:`notation §6 <notation-6>`), per layer with
    :math:`p = p_l, a = a_l, c = a_{l-1}`:

    .. math::

        \underbrace{2pa^2}_{J_x^T S} + \underbrace{2p^2a}_{(J_x^T S) J_x}
        + \underbrace{2pac}_{(J_x^T S) J_z}
        + \underbrace{2a^2c + 2ac^2}_{J_z^T S J_z}
        + \underbrace{p^3/3}_{\text{Cholesky}}
        + \underbrace{2p^2c}_{Q_{xx}^{-1} Q_{xz}}
        + \underbrace{2pc^2}_{Q_{xz}^T K}

    and per right-hand side :math:`2(pa + ac) + 2p^2 + 2pc` (backward
    sweep) plus :math:`2(pc + ac + ap)` (forward sweep).  These are the
    useful flops of the recursion as written, not of any implementation
    (an implementation that computes a symmetric product in full does more).
    """
    total = 0.0
    for blk in blocks:
        a, p = blk.Jx.shape
        c = blk.Jz.shape[1]
        total += 2 * p * a * a + 2 * p * p * a + 2 * p * a * c + 2 * a * a * c + 2 * a * c * c
        total += p ** 3 / 3 + 2 * p * p * c + 2 * p * c * c
        total += n_rhs * (2 * (p * a + a * c) + 2 * p * p + 2 * p * c + 2 * (p * c + a * c + a * p))
    return total


def _relres(curv, damping, x, g):
    """:math:`\\|(H + εI)x - g\\| / \\|g\\|` by the R-operator."""
    r = curv.hvp(x) + damping * x - g
    return float(np.linalg.norm(r) / np.linalg.norm(g))


def _hess_norm(curv, iters, seed):
    r"""Power-iteration estimate of :math:`\|H\|_2` with the R-operator
    (a lower bound that converges to it)."""
    v = np.random.default_rng(seed).standard_normal(curv.P)
    v /= np.linalg.norm(v)
    est = 0.0
    for _ in range(iters):
        w = curv.hvp(v)
        est = float(np.linalg.norm(w))
        if est == 0.0:
            break
        v = w / est
    return est


def _peak_memory(fn):
    """Peak bytes allocated (by Python and NumPy) while ``fn()`` runs."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    if not was_tracing:
        tracemalloc.stop()
    return int(peak - base)


@contextlib.contextmanager
def _quiet_pivots():
    """The default problem is indefinite; unpivoted LDU warns about its ill
    conditioned pivots.  The bench reports each route's residual instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedPivotWarning)
        yield


def _dense_solve(curv, damping, g):
    """The dense route after the blocks: assemble ``H``, then
    ``scipy.linalg.solve`` (LU with partial pivoting)."""
    H = curv.hessian()
    H[np.diag_indices_from(H)] += damping
    return scipy.linalg.solve(H, g, overwrite_a=True, check_finite=False, assume_a="gen")


# -- one size ----------------------------------------------------------------------


class _Caps:
    """Skip a route at later sizes once its predicted time or memory passes
    a cap: time scales like ``P^exponent`` (``P`` the number of parameters)
    from the last measurement, so one cap serves depth and width sweeps."""

    def __init__(self, max_s, exponent):
        self.max_s, self.exponent = max_s, exponent
        self.last = None  # (size, seconds)
        self.reason = None

    def skip(self, size):
        if self.reason is not None:
            return self.reason
        if self.last is not None:
            n0, t0 = self.last
            predicted = t0 * (size / n0) ** self.exponent
            if predicted > self.max_s:
                self.reason = f"predicted {predicted:.0f} s > cap {self.max_s:g} s"
                return self.reason
        return None

    def record(self, size, seconds):
        self.last = (size, seconds)


def _measure(depth, width, batch, cfg, clock, caps, routes=STRUCTURED, extras=True):
    """Every column for one network size; returns a row dict."""
    net, theta, X, y, g = _problem(depth, width, batch, cfg["classes"], cfg["scale"], cfg["seed"])
    eps, reps = cfg["damping"], cfg["repeats"]
    row = {"depth": depth, "width": width, "batch": batch, "P": net.n_params,
           "A": int(sum(net.activation_sizes(batch)[1:]))}

    def setup():
        c = Curvature(net, theta, X, y)
        c.blocks
        return c

    row["setup_s"], curv = _median_time(setup, reps, clock)
    with _quiet_pivots():
        for m in routes:
            # an unpivoted route may meet a numerically singular pivot on an
            # indefinite problem (SingularPivotError): a result, not a crash
            try:
                row[f"{m}_s"], x = _median_time(lambda: curv.factorize(eps, m).solve(g), reps, clock)
                row[f"{m}_error"] = None
            except np.linalg.LinAlgError as err:
                row[f"{m}_s"], x, row[f"{m}_error"] = None, None, str(err)
            if extras:
                row[f"{m}_relres"] = None if x is None else _relres(curv, eps, x, g)
        if "riccati" in routes and row["riccati_s"] is not None:
            row["riccati_factor_s"], fact = _median_time(lambda: curv.factorize(eps, "riccati"), reps, clock)
            row["riccati_solve_s"], _ = _median_time(lambda: fact.solve(g), reps, clock)
            row["riccati_flops"] = riccati_flops(curv.blocks)
            # indefinite pivots are factored by LU, about twice the
            # Cholesky flops counted above
            row["riccati_lu_pivots"] = sum(p.kind == "lu" for p in fact.pivots)
        elif "riccati" in routes:
            row.update(riccati_factor_s=None, riccati_solve_s=None, riccati_flops=None,
                       riccati_lu_pivots=None)
    ric = row.get("riccati_s")
    row["per_layer_us"] = None if ric is None else 1e6 * (row["setup_s"] + ric) / depth

    # the dense route, while its predicted time and memory stay under the caps
    P = net.n_params
    row["dense_mem_bytes"] = 8 * P * P
    reason = caps["dense"].skip(net.n_params)
    if reason is None and 3 * 8 * P * P > cfg["dense_max_gib"] * 2 ** 30:
        reason = f"predicted memory {3 * 8 * P * P / 2 ** 30:.1f} GiB > cap {cfg['dense_max_gib']:g} GiB"
    if reason is None:
        row["dense_s"], _ = _median_time(lambda: _dense_solve(curv, eps, g), reps, clock)
        caps["dense"].record(net.n_params, row["dense_s"])
        ric = row.get("riccati_s")
        row["speedup_dense"] = (None if ric is None
                                else (row["setup_s"] + row["dense_s"]) / (row["setup_s"] + ric))
    else:
        row["dense_s"], row["speedup_dense"] = None, None
    row["dense_skipped"] = reason
    if not extras:
        return row

    row["hvp_s"], _ = _median_time(lambda: curv.hvp(g), reps, clock)
    row["grad_norm"] = float(np.linalg.norm(curv.gradient()))
    row["hess_norm"] = _hess_norm(curv, cfg["power_iters"], cfg["seed"] + 2)

    # conjugate gradients on the R-operator: one run, capped
    reason = caps["cg"].skip(net.n_params)
    row["cg_skipped"] = reason
    if reason is None:
        from ..solvers import KrylovConvergenceWarning

        solver = curv.factorize(eps, "cg", rtol=cfg["cg_rtol"], maxiter=cfg["cg_maxiter"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KrylovConvergenceWarning)
            start = clock()
            x = solver.solve(g)
            row["cg_s"] = clock() - start
        caps["cg"].record(net.n_params, row["cg_s"])
        row["cg_iterations"] = int(solver.iterations[0])
        row["cg_relres"] = _relres(curv, eps, x, g)
        row["cg_converged"] = bool(row["cg_relres"] <= cfg["cg_rtol"] * (1 + 1e-6))
    else:
        row.update(cg_s=None, cg_iterations=None, cg_relres=None, cg_converged=None)

    if cfg["memory"]:
        for m in ("riccati", "banded"):
            if row[f"{m}_s"] is None:
                row[f"mem_{m}_bytes"] = None
                continue
            with _quiet_pivots():
                row[f"mem_{m}_bytes"] = _peak_memory(
                    lambda: Curvature(net, theta, X, y).factorize(eps, m).solve(g)
                )
    return row


# -- the sweeps ----------------------------------------------------------------------


def loglog_slope(xs, ys):
    """Least-squares slope of ``log y`` against ``log x``; ``nan`` with
    fewer than two usable points (``y`` missing or not positive)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y is not None and y > 0]
    if len(pts) < 2:
        return float("nan")
    lx, ly = np.array(pts).T
    return float(np.polyfit(lx, ly, 1)[0])


def _column(rows, key):
    if key == "dense":
        return [r["setup_s"] + r["dense_s"] if r.get("dense_s") is not None else None for r in rows]
    if key.startswith("setup+"):
        m = key.split("+", 1)[1]
        return [None if r.get(f"{m}_s") is None else r["setup_s"] + r[f"{m}_s"] for r in rows]
    if key.startswith("mem_"):
        return [r.get(f"{key}_bytes") for r in rows]
    return [r.get(f"{key}_s") for r in rows]


SLOPE_COLUMNS = ("setup", "setup+riccati", "setup+ldu", "setup+banded", "hvp", "dense",
                 "mem_riccati", "mem_banded")


def _progress(cfg, msg):
    if cfg.get("progress", True):
        print(f"[bench] {msg}", file=sys.stderr, flush=True)


def depth_sweep(cfg, clock):
    caps = {"dense": _Caps(cfg["dense_max_s"], 3.0), "cg": _Caps(cfg["cg_max_s"], 2.0)}
    rows = []
    for L in cfg["depths"]:
        row = _measure(L, cfg["width"], cfg["batch"], cfg, clock, caps)
        rows.append(row)
        dense = "skipped" if row["dense_s"] is None else f"{row['dense_s']:.3g} s"
        _progress(cfg, f"depth {L}: setup {row['setup_s']:.3g} s, riccati {_fmt(row['riccati_s'])} s, "
                       f"dense {dense}")
    fit = [r for r in rows if r["depth"] >= 16] or rows
    Ls = [r["depth"] for r in fit]
    slopes = {key: loglog_slope(Ls, _column(fit, key)) for key in SLOPE_COLUMNS}
    return {"width": cfg["width"], "batch": cfg["batch"], "rows": rows, "slopes": slopes}


def _positive_definite_probe(row, cfg, clock, gf):
    r"""The same Riccati timing with every pivot positive definite.

    At the default damping a wide chain is indefinite and most pivots are
    factored by LU, about twice the flops of the Cholesky factorization the
    count credits.  Shifting by twice the power-iteration estimate of
    :math:`\|H\|_2` makes :math:`H + εI \succ 0`, so every pivot is a
    Cholesky factorization: this is the BLAS-3 efficiency of the recursion
    itself."""
    net, theta, X, y, g = _problem(row["depth"], row["width"], row["batch"], cfg["classes"],
                                   cfg["scale"], cfg["seed"])
    curv = Curvature(net, theta, X, y)
    eps = 2.0 * _hess_norm(curv, cfg["power_iters"], cfg["seed"] + 2) + cfg["damping"]
    row["pd_damping"] = eps
    row["riccati_pd_s"], _ = _median_time(lambda: curv.factorize(eps, "riccati").solve(g),
                                          cfg["repeats"], clock)
    fact = curv.factorize(eps, "riccati")
    row["riccati_pd_lu_pivots"] = sum(p.kind == "lu" for p in fact.pivots)
    row["riccati_pd_gflops"] = riccati_flops(curv.blocks) / row["riccati_pd_s"] / 1e9
    row["fraction_of_dgemm_pd"] = row["riccati_pd_gflops"] / gf


def width_sweep(cfg, clock):
    gf = dgemm_gflops(cfg["dgemm_n"], timer=cfg["timer"])
    caps = {"dense": _Caps(cfg["dense_max_s"], 3.0)}  # dense time ~ P^3 (P ~ width^2)
    rows = []
    for w in cfg["widths"]:
        row = _measure(cfg["width_depth"], w, cfg["width_batch"], cfg, clock, caps,
                       routes=("riccati",), extras=False)
        if row["riccati_s"] is None:  # pragma: no cover - a singular pivot at this width
            row.update(riccati_flops=None, riccati_gflops=None, fraction_of_dgemm=None,
                       riccati_lu_pivots=None)
        else:
            row["riccati_gflops"] = row["riccati_flops"] / row["riccati_s"] / 1e9
            row["fraction_of_dgemm"] = row["riccati_gflops"] / gf
        _positive_definite_probe(row, cfg, clock, gf)
        rows.append(row)
        _progress(cfg, f"width {w}: riccati {_fmt(row['riccati_s'])} s, "
                       f"{_fmt(row['riccati_gflops'])} GFLOP/s, positive definite "
                       f"{_fmt(row['riccati_pd_gflops'])} GFLOP/s")
    return {"depth": cfg["width_depth"], "batch": cfg["width_batch"], "dgemm_gflops": gf, "rows": rows}


def crossover_sweep(cfg, clock):
    caps = {"dense": _Caps(cfg["dense_max_s"], 3.0)}
    rows = []
    for L in cfg["crossover_depths"]:
        row = _measure(L, cfg["crossover_width"], cfg["crossover_batch"], cfg, clock, caps, extras=False)
        rows.append(row)
        _progress(cfg, f"crossover depth {L}: riccati {_fmt(row['riccati_s'])} s, ldu "
                       f"{_fmt(row['ldu_s'])} s, banded {_fmt(row['banded_s'])} s, dense "
                       f"{_fmt(row['dense_s'])} s")
    # the crossover: the smallest depth from which the route beats dense at
    # every measured depth (a single lucky win at a tiny size is noise)
    first_win = {}
    timed = [r for r in rows if r["dense_s"] is not None]
    for m in STRUCTURED:
        first_win[m] = None
        for r in reversed(timed):
            if r[f"{m}_s"] is None or r[f"{m}_s"] >= r["dense_s"]:
                break
            first_win[m] = r["depth"]
    return {"width": cfg["crossover_width"], "batch": cfg["crossover_batch"], "rows": rows,
            "first_win": first_win}


ROBUSTNESS_ROUTES = ("banded", "riccati", "ldu")


def _robustness_problem(rng):
    """``random_problem`` keyword arguments of one random small problem."""
    depth = int(rng.integers(1, 9))
    kinds = ("dense", "residual", "mixed")
    acts = sorted(ACTIVATIONS)
    return dict(
        depth=depth,
        width=int(rng.integers(1, 5)),
        batch=int(rng.integers(1, 4)),
        layers=kinds[int(rng.integers(len(kinds)))],
        activation=[acts[int(i)] for i in rng.integers(len(acts), size=max(depth - 1, 1))]
        if depth > 1 else "tanh",
        head=("softmax", "mse")[int(rng.integers(2))],
        bias=bool(rng.integers(2)),
        scale=float(rng.uniform(0.5, 2.0)),
        seed=int(rng.integers(2 ** 31)),
    )


def _robustness_cell(curv, damping, method, g, x_ref, kappa):
    """One route on one problem: ``(status, forward / (eps κ), backward / eps)``."""
    eps = float(np.finfo(np.dtype(str(curv.dtype))).eps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IllConditionedPivotWarning)
        try:
            fact = curv.factorize(damping, method)
        except SingularPivotError as err:
            return f"refused_{getattr(err, 'cause', None) or 'open'}", None, None
        x = fact.solve(g.astype(curv.dtype))
    warned = any(issubclass(w.category, IllConditionedPivotWarning) for w in caught)
    scale = float(np.max(np.abs(x_ref)))  # x ~ g/ε can be tiny: norms of scaled vectors
    err = float(np.linalg.norm((x - x_ref) / scale) / np.linalg.norm(x_ref / scale))
    eta = fact.backward_error(x, g.astype(curv.dtype)) / eps
    return ("warned" if warned else "solved"), err / (eps * kappa), eta


def robustness_sweep(cfg):
    """The robustness table (see the module notes): refusals, warnings and
    errors of every structured route, per precision and regime."""
    from ..testing import random_problem  # a tool may use the testing kit

    rng = np.random.default_rng(cfg["seed"])
    cells = {}
    for draw in range(cfg["robustness_draws"]):
        problem = _robustness_problem(rng)
        c64 = Curvature(*random_problem(**problem))
        c32 = Curvature(*random_problem(**problem, dtype="float32"))
        H = c64.hessian()
        w = np.linalg.eigvalsh(H)
        norm_H = max(float(np.max(np.abs(w))), 1e-3)
        g = np.random.default_rng(problem["seed"] + 1).standard_normal(c64.P)
        for kind, (lo, hi) in (("small", (-4.0, 0.0)), ("large", (1.0, 30.0))):
            damping = norm_H * 10.0 ** rng.uniform(lo, hi)
            s = np.abs(w + damping)
            kappa = float(s.max() / s.min()) if s.min() > 0 else math.inf
            regime = ("large damping" if kind == "large"
                      else "indefinite" if w[0] + damping < 0 else "positive definite")
            x_ref = np.linalg.solve(H + damping * np.eye(c64.P), g)
            for curv in (c64, c32):
                eps = float(np.finfo(np.dtype(str(curv.dtype))).eps)
                for m in ROBUSTNESS_ROUTES:
                    status, fwd, bwd = _robustness_cell(curv, damping, m, g, x_ref, kappa)
                    key = (m, str(curv.dtype), regime)
                    cells.setdefault(key, []).append(
                        (status, fwd, bwd, kappa >= 1 / (16 * c64.P * eps)))
        if (draw + 1) % 20 == 0:
            _progress(cfg, f"robustness: {draw + 1} of {cfg['robustness_draws']} problems")
    rows = []
    for (m, dtype, regime), got in sorted(cells.items(), key=lambda kv: (
            ROBUSTNESS_ROUTES.index(kv[0][0]), kv[0][1], kv[0][2])):
        fwd = [f for st, f, _, _ in got if f is not None and math.isfinite(f)]
        fwd_quiet = [f for st, f, _, _ in got if st == "solved" and math.isfinite(f)]
        bwd = [b for _, _, b, _ in got if b is not None]
        count = {k: sum(st == k for st, _, _, _ in got)
                 for k in ("refused_route", "refused_matrix", "refused_open", "warned")}
        rows.append(dict(route=m, dtype=dtype, regime=regime, cells=len(got), **count,
                         near_singular=sum(ns for *_, ns in got),
                         forward_median=float(np.median(fwd)) if fwd else None,
                         forward_max=max(fwd) if fwd else None,
                         forward_max_unwarned=max(fwd_quiet) if fwd_quiet else None,
                         backward_max=max(bwd) if bwd else None))
    return {"draws": cfg["robustness_draws"], "seed": cfg["seed"], "rows": rows}


# -- environment -------------------------------------------------------------------


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"summary": _show_config_summary()}]
    return [{k: v for k, v in d.items() if k in ("user_api", "internal_api", "version",
                                                    "num_threads", "architecture", "threading_layer",
                                                    "prefix")}
            for d in threadpool_info()]


def _show_config_summary():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '').strip()})"
    except Exception:  # pragma: no cover - older NumPy
        return "unknown (numpy.show_config unavailable)"


def environment(cfg=None):
    """The machine, the versions and the BLAS, as a dict."""
    from .. import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    cfg = cfg or {}
    return {
        "machine": platform.platform(),
        "processor": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "hessinv_ref": __version__,
        "blas": _blas_info(),
        "blas_threads": cfg.get("blas_threads_applied"),
        "timer": cfg.get("timer", "wall"),
        "env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_") or k == "OMP_NUM_THREADS"},
    }


@contextlib.contextmanager
def _blas_limit(n, cfg):
    """Limit BLAS threads to ``n`` (0: leave them) with threadpoolctl."""
    cfg["blas_threads_applied"] = None
    if not n:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn("bench: threadpoolctl is not installed; BLAS threads left at the library default",
                      RuntimeWarning, stacklevel=3)
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        cfg["blas_threads_applied"] = n
        yield


# -- targets -------------------------------------------------------------------------


def _targets(result):
    out = []

    def add(name, value, target, ok):
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        met = None if missing or ok is None else bool(ok(value))
        out.append({"name": name, "value": value, "target": target, "met": met})

    ds = result.get("depth_sweep")
    if ds:
        s = ds["slopes"]
        for m in STRUCTURED:
            add(f"slope of setup+{m} vs depth (L>=16)", s[f"setup+{m}"], "<= 1.05", lambda v: v <= 1.05)
        add("slope of dense vs depth (L>=16)", s["dense"], ">= 2.5", lambda v: v >= 2.5)
        by_L = {r["depth"]: r for r in ds["rows"]}
        r512 = by_L.get(512)
        add("speed-up of setup+riccati over dense at L=512",
            r512["speedup_dense"] if r512 else None, ">= 100", lambda v: v >= 100)
        r256 = by_L.get(256)
        ok256 = r256 is not None and r256.get("riccati_s") is not None
        add("riccati factor+solve / one HVP at L=256",
            r256["riccati_s"] / r256["hvp_s"] if ok256 else None, "<= 5", lambda v: v <= 5)
        add("riccati solve only / one HVP at L=256",
            r256["riccati_solve_s"] / r256["hvp_s"] if ok256 else None, "(info)", None)
        per = [r["per_layer_us"] for r in ds["rows"]
               if 256 <= r["depth"] <= 1024 and r["per_layer_us"] is not None]
        add("per-layer setup+riccati, median over L=256..1024 [us]",
            float(np.median(per)) if per else None, "<= 150", lambda v: v <= 150)
        add("slope of peak memory (setup+riccati) vs depth", s["mem_riccati"], "<= 1.05",
            lambda v: v <= 1.05)
    ws = result.get("width_sweep")
    if ws:
        rows = [r for r in ws["rows"] if r["width"] == 32]
        want = ws["batch"] == 8 and ws["depth"] == 16
        add("riccati GFLOP/s / dgemm at width 32, batch 8, depth 16",
            rows[0]["fraction_of_dgemm"] if rows and want else None, ">= 0.40", lambda v: v >= 0.40)
        add("  same, Cholesky pivots (eps = 2 norm(H): H + eps I pos. def.)",
            rows[0]["fraction_of_dgemm_pd"] if rows and want else None, ">= 0.40", lambda v: v >= 0.40)
    return out


# -- the run -------------------------------------------------------------------------


def _warm_up(cfg):
    """One tiny problem through every route, untimed: the first call of each
    imports its module and fills LAPACK's workspace queries."""
    caps = {"dense": _Caps(math.inf, 3.0), "cg": _Caps(math.inf, 2.0)}
    _measure(3, 2, 2, {**cfg, "repeats": 1, "memory": False, "cg_maxiter": 2, "power_iters": 1},
             _clock(cfg["timer"]), caps)


def run_bench(**options):
    """Run the sweeps and return the result dict (the JSON document).

    Keyword arguments override :data:`DEFAULTS`; ``sweeps`` selects among
    :data:`SWEEPS` (default the three timed ones); ``progress=False``
    silences stderr.
    """
    cfg = dict(DEFAULTS)
    cfg.update(sweeps=("depth", "width", "crossover"), progress=True)
    unknown = set(options) - set(cfg)
    if unknown:
        raise TypeError(f"run_bench: unknown options {sorted(unknown)}")
    cfg.update(options)
    clock = _clock(cfg["timer"])
    result = {"schema": SCHEMA}
    with _blas_limit(cfg["blas_threads"], cfg):
        result["environment"] = environment(cfg)
        _warm_up(cfg)
        result["dgemm_n"] = cfg["dgemm_n"]
        result["dgemm_gflops"] = dgemm_gflops(cfg["dgemm_n"], timer=cfg["timer"])
        _progress(cfg, f"dgemm {result['dgemm_gflops']:.1f} GFLOP/s")
        if "depth" in cfg["sweeps"]:
            result["depth_sweep"] = depth_sweep(cfg, clock)
        if "width" in cfg["sweeps"]:
            result["width_sweep"] = width_sweep(cfg, clock)
        if "crossover" in cfg["sweeps"]:
            result["crossover"] = crossover_sweep(cfg, clock)
        if "robustness" in cfg["sweeps"]:
            result["robustness"] = robustness_sweep(cfg)
    result["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()
                        if k not in ("progress", "blas_threads_applied")}
    result["targets"] = _targets(result)
    return result


# -- output --------------------------------------------------------------------------


def _fmt(v, spec="{:.3g}"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return spec.format(v)


def _ms(v):
    return _fmt(None if v is None else 1e3 * v, "{:.3g}")


def format_report(result):
    """The human-readable tables, as one string."""
    env = result["environment"]
    lines = [
        "hessinv-ref bench",
        f"machine: {env['processor']}, {env['cpu_count']} CPUs, {env['machine']}",
        f"python {env['python']}, numpy {env['numpy']}, scipy {env['scipy']}, hessinv_ref {env['hessinv_ref']}",
        "BLAS: " + "; ".join(
            b.get("summary") or f"{b.get('internal_api')} {b.get('version')} ({b.get('prefix')}, "
            f"{b.get('architecture')}, {b.get('num_threads')} threads)" for b in env["blas"]),
        f"BLAS threads pinned to: {env['blas_threads'] or 'library default'}; timer: {env['timer']}"
        + (f"; env {env['env']}" if env["env"] else ""),
        f"dgemm ({result['dgemm_n']}^3): {result['dgemm_gflops']:.1f} GFLOP/s",
        "",
    ]
    ds = result.get("depth_sweep")
    if ds:
        cfg = result["config"]
        lines.append(f"Depth sweep: width {ds['width']}, batch {ds['batch']}, tanh, no bias, softmax "
                     f"{cfg['classes']} classes, scale {cfg['scale']:g}, damping {cfg['damping']:g}, "
                     f"seed {cfg['seed']}; times in ms (median of {cfg['repeats']})")
        head = (f"{'L':>5} {'P':>6} {'|g|':>7} {'|H|':>7} {'setup':>8} {'riccati':>8} {'ldu':>8} "
                f"{'banded':>8} {'hvp':>7} {'dense':>9} {'cg':>8} {'cg it':>6} {'us/layer':>8} "
                f"{'mem MiB':>8} {'dense/ric':>9}")
        lines += [head, "-" * len(head)]
        for r in ds["rows"]:
            cg_it = "-" if r.get("cg_iterations") is None else (
                f"{r['cg_iterations']}" + ("" if r["cg_converged"] else "*"))
            lines.append(
                f"{r['depth']:>5} {r['P']:>6} {_fmt(r['grad_norm']):>7} {_fmt(r['hess_norm']):>7} "
                f"{_ms(r['setup_s']):>8} {_ms(r['riccati_s']):>8} {_ms(r['ldu_s']):>8} "
                f"{_ms(r['banded_s']):>8} {_ms(r['hvp_s']):>7} {_ms(r['dense_s']):>9} "
                f"{_ms(r.get('cg_s')):>8} {cg_it:>6} {_fmt(r['per_layer_us'], '{:.0f}'):>8} "
                f"{_fmt(None if r.get('mem_riccati_bytes') is None else r['mem_riccati_bytes'] / 2 ** 20, '{:.2f}'):>8} "
                f"{_fmt(r['speedup_dense'], '{:.3g}'):>9}")
        lines.append(f"  dense = H assembly + scipy.linalg.solve; dense/ric = (setup + dense) / "
                     f"(setup + riccati); cg to rtol {cfg['cg_rtol']:g}, at most {cfg['cg_maxiter']} "
                     f"iterations (* = not converged); mem = tracemalloc peak of setup + riccati")
        skipped = [(r["depth"], r["dense_skipped"]) for r in ds["rows"] if r["dense_skipped"]]
        if skipped:
            lines.append(f"  dense skipped from L={skipped[0][0]}: {skipped[0][1]}")
        lines.append("  log-log slope of time vs depth, L >= 16: " + ", ".join(
            f"{k} {_fmt(v, '{:.2f}')}" for k, v in ds["slopes"].items()))
        lines.append("")
    ws = result.get("width_sweep")
    if ws:
        lines.append(f"Width sweep: depth {ws['depth']}, batch {ws['batch']}; dgemm in this sweep "
                     f"{ws['dgemm_gflops']:.1f} GFLOP/s")
        head = (f"{'width':>5} {'P':>7} {'setup ms':>9} {'GFLOP':>8} | {'riccati ms':>10} "
                f"{'GFLOP/s':>8} {'% dgemm':>8} {'LU piv':>8} | {'PD ms':>8} {'GFLOP/s':>8} "
                f"{'% dgemm':>8} {'LU piv':>8} | {'dense ms':>9}")
        lines += [head, "-" * len(head)]
        for r in ws["rows"]:
            pct = (None if r["fraction_of_dgemm"] is None else 100 * r["fraction_of_dgemm"])
            lines.append(
                f"{r['width']:>5} {r['P']:>7} {_ms(r['setup_s']):>9} "
                f"{_fmt(r['riccati_flops'] and r['riccati_flops'] / 1e9, '{:.3f}'):>8} | "
                f"{_ms(r['riccati_s']):>10} {_fmt(r['riccati_gflops'], '{:.2f}'):>8} {_fmt(pct, '{:.0f}'):>7}% "
                f"{_fmt(r['riccati_lu_pivots'], '{}'):>4}/{r['depth']:<3} | {_ms(r['riccati_pd_s']):>8} "
                f"{r['riccati_pd_gflops']:>8.2f} {100 * r['fraction_of_dgemm_pd']:>7.0f}% "
                f"{r['riccati_pd_lu_pivots']:>4}/{r['depth']:<3} | {_ms(r['dense_s']):>9}")
        lines.append("  GFLOP counts the recursion with Cholesky pivots (riccati_flops); an indefinite "
                     "pivot (LU piv) is factored by LU, about twice that work. "
                     "PD: the same at damping 2|H|_2, where every pivot is positive definite.")
        lines.append("")
    co = result.get("crossover")
    if co:
        lines.append(f"Crossover: width {co['width']}, batch {co['batch']} (a = {co['width'] * co['batch']} "
                     f"per layer), times in ms including setup")
        head = f"{'L':>5} {'P':>6} {'riccati':>9} {'ldu':>9} {'banded':>9} {'dense':>9}"
        lines += [head, "-" * len(head)]
        for r in co["rows"]:
            tot = {m: None if r[f"{m}_s"] is None else r["setup_s"] + r[f"{m}_s"] for m in STRUCTURED}
            dense = None if r["dense_s"] is None else r["setup_s"] + r["dense_s"]
            lines.append(f"{r['depth']:>5} {r['P']:>6} {_ms(tot['riccati']):>9} {_ms(tot['ldu']):>9} "
                         f"{_ms(tot['banded']):>9} {_ms(dense):>9}")
        lines.append("  depth from which the route beats dense: " + ", ".join(
            f"{m} {v if v is not None else 'none'}" for m, v in co["first_win"].items()))
        for r in co["rows"]:
            for m in STRUCTURED:
                if r.get(f"{m}_error"):
                    lines.append(f"  L={r['depth']} {m}: {r[f'{m}_error']}")
        lines.append("")
    rb = result.get("robustness")
    if rb:
        lines.append(f"Robustness: {rb['draws']} random problems (seed {rb['seed']}), each at a small "
                     f"and a large damping; refused = SingularPivotError by verdict; errors over eps")
        head = (f"{'route':>8} {'dtype':>8} {'regime':>17} {'cells':>5} {'near-sing':>9} | "
                f"{'refused: route':>14} {'matrix':>6} {'open':>4} {'warned':>6} | "
                f"{'fwd/(eps k): med':>16} {'max':>7} {'unwarned':>8} | {'bwd/eps max':>11}")
        lines += [head, "-" * len(head)]
        for r in rb["rows"]:
            lines.append(
                f"{r['route']:>8} {r['dtype']:>8} {r['regime']:>17} {r['cells']:>5} {r['near_singular']:>9} | "
                f"{r['refused_route']:>14} {r['refused_matrix']:>6} {r['refused_open']:>4} {r['warned']:>6} | "
                f"{_fmt(r['forward_median'], '{:.2g}'):>16} {_fmt(r['forward_max'], '{:.2g}'):>7} "
                f"{_fmt(r['forward_max_unwarned'], '{:.2g}'):>8} | {_fmt(r['backward_max'], '{:.2g}'):>11}")
        lines.append("  near-sing = cells with kappa_2(H + eps I) >= 1/(16 P eps), where refusing is right; "
                     "open = refused without a verdict; unwarned = max over the cells solved without a "
                     "warning; small damping 10^U(-4,0) |H|_2, large 10^U(1,30) |H|_2")
        lines.append("")
    if result.get("targets"):
        lines.append("Targets")
        for t in result["targets"]:
            v = t["value"]
            mark = {True: "met", False: "NOT met", None: "no data"}[t["met"]]
            if t["target"].startswith("("):
                mark = ""
            lines.append(f"  {t['name']:<58} {_fmt(v, '{:.3g}'):>9}  target {t['target']:<8} {mark}")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(result, path):
    """The result as JSON (``NaN`` written as ``null``)."""
    with open(path, "w") as f:
        json.dump(_jsonable(result), f, indent=2)
        f.write("\n")


def write_csv(result, path):
    """Every row of every sweep, one header: ``sweep`` then the union of the
    row fields."""
    rows = []
    for sweep in ("depth_sweep", "width_sweep", "crossover"):
        for r in result.get(sweep, {}).get("rows", []):
            rows.append({"sweep": sweep.replace("_sweep", ""), **_jsonable(r)})
    fields = ["sweep"]
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot_depth(result, path):
    """Log-log time against depth for each route, with reference slopes 1
    and 3, saved to ``path``.  Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(
            "--plot needs matplotlib, which is not installed (pip install matplotlib)"
        ) from None
    ds = result.get("depth_sweep")
    if not ds:
        raise ValueError("plot: the result has no depth sweep")
    rows = ds["rows"]
    Ls = np.array([r["depth"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 5))
    series = [("setup+riccati", "setup + riccati", "o-"), ("setup+ldu", "setup + ldu", "s-"),
              ("setup+banded", "setup + banded", "^-"), ("hvp", "one HVP (R-operator)", "x--"),
              ("dense", "setup + dense (H + solve)", "D-")]
    for key, label, style in series:
        ys = _column(rows, key)
        pts = [(L, y) for L, y in zip(Ls, ys) if y is not None and y > 0]
        if pts:
            x, yv = np.array(pts).T
            ax.loglog(x, yv, style, label=f"{label} (slope {ds['slopes'][key]:.2f})")
    cg = [(r["depth"], r["cg_s"]) for r in rows if r.get("cg_s")]
    if cg:
        x, yv = np.array(cg).T
        ax.loglog(x, yv, "v:", label="cg (capped iterations)")
    # reference slopes, drawn through the first structured and dense points
    dense = [(L, y) for L, y in zip(Ls, _column(rows, "dense")) if y]
    structured = [(L, y) for L, y in zip(Ls, _column(rows, "setup+riccati")) if y] or [(Ls[0], 1.0)]
    anchors = ((1, structured[0], "k:"), (3, dense[0] if dense else structured[0], "k-."))
    for k, (L0, t0), style in anchors:
        ax.loglog(Ls, t0 * (Ls / L0) ** k, style, lw=0.8, label=f"slope {k}")
    env = result["environment"]
    ax.set_xlabel("depth L")
    ax.set_ylabel("time [s]")
    ax.set_title(f"width {ds['width']}, batch {ds['batch']}: time vs depth\n"
                 f"{env['processor']}, BLAS threads {env['blas_threads'] or 'default'}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the command line ------------------------------------------------------------------


def _int_list(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_parser(sub):
    """Add the ``bench`` subcommand to an ``argparse`` sub-parsers object."""
    from .._argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int
    from .._argtypes import seed as _seed

    d = DEFAULTS
    p = sub.add_parser(
        "bench",
        help="time every route against depth and width; check the linear-in-depth headline",
        description=(__doc__ or "").split("\n\n")[0].replace("``", "").strip()
        + " Sweeps depth, width and a short-and-wide crossover; prints tables and the "
        "headline targets. Progress goes to stderr.",
    )
    p.add_argument("--depths", type=_int_list, default=d["depths"],
                   help="depths of the depth sweep (default 4,8,...,1024)")
    p.add_argument("--width", type=positive_int, default=d["width"], help="width of the depth sweep (default 4)")
    p.add_argument("--batch", type=positive_int, default=d["batch"], help="batch of the depth sweep (default 2)")
    p.add_argument("--classes", type=positive_int, default=d["classes"], help="softmax classes (default 3)")
    p.add_argument("--widths", type=_int_list, default=d["widths"],
                   help="widths of the width sweep (default 4,8,16,32)")
    p.add_argument("--width-depth", type=positive_int, default=d["width_depth"], help="depth of the width sweep (default 16)")
    p.add_argument("--width-batch", type=positive_int, default=d["width_batch"], help="batch of the width sweep (default 8)")
    p.add_argument("--crossover-depths", type=_int_list, default=d["crossover_depths"],
                   help="depths of the crossover sweep (default 1,2,4,...,128)")
    p.add_argument("--crossover-width", type=positive_int, default=d["crossover_width"], help="(default 4)")
    p.add_argument("--crossover-batch", type=positive_int, default=d["crossover_batch"], help="(default 64)")
    p.add_argument("--sweeps", default="depth,width,crossover",
                   help="which sweeps to run, comma-separated, of depth,width,crossover,robustness "
                        "(default depth,width,crossover)")
    p.add_argument("--robustness-draws", type=positive_int, default=d["robustness_draws"],
                   help="random problems of the robustness sweep (default 200)")
    p.add_argument("--scale", type=positive_float, default=d["scale"], help="weight gain over torch's init (default 2)")
    p.add_argument("--damping", type=nonnegative_float, default=d["damping"], help="ε (default 1e-2)")
    p.add_argument("--seed", type=_seed, default=d["seed"], help="random seed, an integer >= 0 (default 0)")
    p.add_argument("--repeats", type=positive_int, default=d["repeats"], help="timed runs per cell, median (default 5)")
    p.add_argument("--dense-max-s", type=nonnegative_float, default=d["dense_max_s"],
                   help="skip dense once its predicted time passes this (default 600 s)")
    p.add_argument("--dense-max-gib", type=nonnegative_float, default=d["dense_max_gib"],
                   help="skip dense once 3 P^2 doubles pass this (default 4 GiB)")
    p.add_argument("--cg-rtol", type=positive_float, default=d["cg_rtol"], help="cg relative residual (default 1e-6)")
    p.add_argument("--cg-maxiter", type=positive_int, default=d["cg_maxiter"], help="cg iteration cap (default 500)")
    p.add_argument("--cg-max-s", type=nonnegative_float, default=d["cg_max_s"],
                   help="skip cg once its predicted time passes this (default 30 s)")
    p.add_argument("--power-iters", type=positive_int, default=d["power_iters"],
                   help="power iterations for |H|_2 (default 20)")
    p.add_argument("--dgemm-n", type=positive_int, default=d["dgemm_n"], help="size of the dgemm probe (default 1024)")
    p.add_argument("--blas-threads", type=nonnegative_int, default=d["blas_threads"],
                   help="pin BLAS threads with threadpoolctl (default 1; 0 = library default)")
    p.add_argument("--timer", choices=("wall", "cpu"), default=d["timer"],
                   help="wall clock (default) or CPU time of the process")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    p.add_argument("--json", metavar="FILE", help="write the full result as JSON (fields: see the module docs)")
    p.add_argument("--csv", metavar="FILE", help="write every row as CSV")
    p.add_argument("--plot", metavar="FILE", help="log-log time vs depth (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args):
    sweeps = tuple(s.strip() for s in args.sweeps.split(",") if s.strip())
    bad = set(sweeps) - set(SWEEPS)
    if bad or not sweeps:
        raise ValueError(f"--sweeps: expected some of {','.join(SWEEPS)}, got {args.sweeps!r}")
    if args.plot and "depth" not in sweeps:
        raise ValueError("--plot needs the depth sweep")
    if args.plot:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise OSError("--plot needs matplotlib, which is not installed (pip install matplotlib)") from None
    for name in ("width", "batch", "classes", "width_depth", "width_batch", "crossover_width",
                 "crossover_batch", "repeats", "cg_maxiter", "dgemm_n", "robustness_draws"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected a positive integer")
    result = run_bench(
        depths=args.depths, width=args.width, batch=args.batch, classes=args.classes,
        widths=args.widths, width_depth=args.width_depth, width_batch=args.width_batch,
        crossover_depths=args.crossover_depths, crossover_width=args.crossover_width,
        crossover_batch=args.crossover_batch, scale=args.scale, damping=args.damping,
        seed=args.seed, repeats=args.repeats, dense_max_s=args.dense_max_s,
        dense_max_gib=args.dense_max_gib, cg_rtol=args.cg_rtol, cg_maxiter=args.cg_maxiter,
        cg_max_s=args.cg_max_s, power_iters=args.power_iters, dgemm_n=args.dgemm_n,
        blas_threads=args.blas_threads, timer=args.timer, memory=not args.no_memory,
        robustness_draws=args.robustness_draws,
        sweeps=sweeps, progress=not args.quiet,
    )
    print(format_report(result))
    if args.json:
        write_json(result, args.json)
    if args.csv:
        write_csv(result, args.csv)
    if args.plot:
        plot_depth(result, args.plot)
    return 0
