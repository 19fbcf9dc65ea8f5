"""``hessinv-ref demo``: a deep tall-skinny network, every route against dense."""

from __future__ import annotations

import time
import warnings

import numpy as np

from .curvature import Curvature
from .layers import Dense, SoftmaxCrossEntropy
from .network import Network

__all__ = ["tall_skinny_network", "run_demo"]


def tall_skinny_network(depth, width, classes=3, activation="tanh", bias=False, n_in=None):
    """``depth - 1`` :class:`Dense` layers of ``width`` and a softmax head
    (``depth`` layers in all), the paper's setting."""
    if depth < 1:
        raise ValueError(f"depth: expected >= 1, got {depth}")
    n_in = width if n_in is None else n_in
    layers = []
    for l in range(depth - 1):
        layers.append(Dense(n_in if l == 0 else width, width, activation, bias=bias))
    layers.append(SoftmaxCrossEntropy(n_in if depth == 1 else width, classes, bias=bias))
    return Network(layers)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(float).tiny))


def run_demo(depth=64, width=4, batch=2, classes=3, damping=1e-2, scale=2.0, seed=0,
             sweep=(16, 32, 64, 128), krylov_maxiter=200, out=print):
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
        Depths for the timing sweep (empty to skip).
    krylov_maxiter : int
        Iteration cap for the ``cg`` and ``minres`` baselines, which need
        far more than this on the ill-conditioned, indefinite default problem.
    out : callable
        Where lines go (``print``).
    """
    from .inverse import METHODS
    from .solvers import KrylovConvergenceWarning

    net, params, X, y = _problem(depth, width, batch, classes, scale, seed)
    rng = np.random.default_rng(seed + 1)
    v = rng.standard_normal(net.n_params)

    curv, t_setup = _timed(lambda: Curvature(net, params, X, y))
    _, t_blocks = _timed(lambda: curv.blocks)
    H, t_assemble = _timed(curv.hessian)
    eigs = np.linalg.eigvalsh(H + damping * np.eye(net.n_params))
    out(f"hessinv-ref demo: depth L={depth}, width {width}, batch {batch}, "
        f"{classes} classes, no bias, tanh, P={net.n_params}, seed {seed}")
    out(f"loss {curv.loss():.6g}  |grad| {np.linalg.norm(curv.gradient()):.3g}  "
        f"|H|_2 {np.max(np.abs(eigs - damping)):.3g}  damping {damping:g}  "
        f"kappa(H+eps I) {np.max(np.abs(eigs)) / np.min(np.abs(eigs)):.3g}  "
        f"negative eigenvalues {int(np.sum(eigs < 0))}")
    out(f"forward+backward {1e3 * t_setup:.1f} ms, per-layer blocks {1e3 * t_blocks:.1f} ms, "
        f"dense H assembly {1e3 * t_assemble:.1f} ms")
    out("")
    out("1. Hessian-vector product H v against the dense H @ v")
    out(f"   {'route':<26}{'time [ms]':>11}{'rel. error':>12}")
    Hv_dense = H @ v
    for name, fn in (("R-operator (Pearlmutter)", lambda: curv.hvp(v)),
                     ("matrix polynomial", lambda: curv.polynomial().matvec(v))):
        Hv, t = _timed(fn)
        out(f"   {name:<26}{1e3 * t:>11.2f}{_rel(Hv, Hv_dense):>12.1e}")
    out("")
    out("2. Inverse (H + eps I)^-1 v against scipy.linalg.solve on the dense matrix")
    out(f"   {'method':<10}{'factor [ms]':>12}{'solve [ms]':>12}{'rel. error':>12}"
        f"{'backward err':>14}  note")
    x_ref = _dense_reference(H, damping, v)
    for method in METHODS:
        krylov = method in ("cg", "minres")
        options = {"rtol": 1e-10, "maxiter": krylov_maxiter} if krylov else {}
        fact, t_fact = _timed(lambda: curv.factorize(damping, method, **options))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KrylovConvergenceWarning)
            x, t_solve = _timed(lambda: fact.solve(v))
        note = f"{fact.iterations[0]} iterations, rtol 1e-10" if krylov else ""
        out(f"   {method:<10}{1e3 * t_fact:>12.2f}{1e3 * t_solve:>12.2f}"
            f"{_rel(x, x_ref):>12.1e}{fact.backward_error(x, v):>14.1e}  {note}")
    if sweep:
        out("")
        out("3. Depth sweep: seconds for blocks + factor + solve (structured) vs assembly + solve (dense)")
        out(f"   {'depth':>6}{'P':>7}{'riccati':>10}{'banded':>10}{'dense':>10}{'dense/riccati':>15}")
        for L in sweep:
            row = _sweep_row(L, width, batch, classes, scale, seed, damping)
            out(f"   {L:>6}{row['P']:>7}{row['riccati']:>10.4f}{row['banded']:>10.4f}"
                f"{row['dense']:>10.4f}{row['dense'] / row['riccati']:>15.1f}")
        out("   structured time grows linearly with depth; dense grows like depth^3.")
    return 0


def _problem(depth, width, batch, classes, scale, seed):
    net = tall_skinny_network(depth, width, classes)
    rng = np.random.default_rng(seed)
    params = net.init(seed=rng, scale=scale)
    X = rng.standard_normal((batch, width))
    y = rng.integers(0, classes, size=batch)
    return net, params, X, y


def _dense_reference(H, damping, v):
    import scipy.linalg

    return scipy.linalg.solve(H + damping * np.eye(H.shape[0]), v)


def _sweep_row(depth, width, batch, classes, scale, seed, damping):
    net, params, X, y = _problem(depth, width, batch, classes, scale, seed)
    g = np.ones(net.n_params)
    row = {"P": net.n_params}
    for method in ("riccati", "banded"):
        def run():
            return Curvature(net, params, X, y).factorize(damping, method).solve(g)
        row[method] = _timed(run)[1]

    def dense():
        H = Curvature(net, params, X, y).hessian()
        return _dense_reference(H, damping, g)
    row["dense"] = _timed(dense)[1]
    return row
