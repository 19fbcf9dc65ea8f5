"""``hessinv-ref demo``: a deep tall-skinny network, every route against dense."""

from __future__ import annotations

import time

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


def run_demo(depth=64, width=4, batch=2, classes=3, damping=1e-2, scale=2.0, seed=0, out=print):
    """Print a table of every route against the dense oracle; return 0."""
    net = tall_skinny_network(depth, width, classes)
    rng = np.random.default_rng(seed)
    params = net.init(seed=rng, scale=scale)
    X = rng.standard_normal((batch, width))
    y = rng.integers(0, classes, size=batch)
    v = rng.standard_normal(net.n_params)

    curv, t_setup = _timed(lambda: Curvature(net, params, X, y))
    H, t_dense = _timed(curv.hessian)
    Hv_dense = H @ v
    out(f"hessinv-ref demo: depth L={depth}, width {width}, batch {batch}, "
        f"{classes} classes, P={net.n_params} parameters, seed {seed}")
    out(f"loss {curv.loss():.6g}, |grad| {np.linalg.norm(curv.gradient()):.3g}, "
        f"|H|_2 {np.linalg.norm(H, 2):.3g}")
    out("")
    out("Hessian-vector product, each route against the dense Hessian H @ v")
    out(f"{'route':<28}{'time [ms]':>12}{'rel. error':>14}")
    rows = [
        ("R-operator (Pearlmutter)", lambda: curv.hvp(v)),
        ("matrix polynomial", lambda: curv.polynomial().matvec(v)),
    ]
    out(f"{'dense H (assembly)':<28}{1e3 * t_dense:>12.2f}{0.0:>14.1e}")
    for name, fn in rows:
        Hv, t = _timed(fn)
        out(f"{name:<28}{1e3 * t:>12.2f}{_rel(Hv, Hv_dense):>14.1e}")
    return 0
