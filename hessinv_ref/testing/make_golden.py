"""Generate the curated golden test vectors shipped with the package.

The shipped copies live in ``hessinv_ref/golden_files/`` (package data; see
:func:`hessinv_ref.golden.curated_path`).  Run as::

    python -m hessinv_ref.testing.make_golden OUTDIR

(``OUTDIR = hessinv_ref/golden_files`` in a source checkout refreshes the
shipped set; anywhere else it writes a private copy.)

Every file is a :mod:`hessinv_ref.golden` pair ``NAME.json`` + ``NAME.npz``,
drawn by :func:`~hessinv_ref.testing.random_problem` with the arguments in
:data:`CURATED` (recorded in each JSON under ``generator``), so the set can be
regenerated bit for bit on the same NumPy, and checked for drift with
``hessinv-ref verify``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..golden import export
from .problems import random_problem

__all__ = ["CURATED", "write_curated", "main"]

CURATED = {
    "tiny_logistic": dict(
        description="Smallest case: one softmax layer without bias (multinomial logistic "
        "regression, convex), P = 4. Start here.",
        problem=dict(depth=1, width=2, batch=3, head="softmax", n_classes=2, bias=False, seed=5),
        damping=(1e-1,),
    ),
    "paper_tanh_softmax": dict(
        description="The paper's setting: tanh layers without bias and a softmax head, "
        "weights at twice torch.nn.Linear's bound; H is indefinite.",
        problem=dict(depth=6, width=3, batch=2, activation="tanh", head="softmax", bias=False,
                     scale=2.0, seed=0),
        damping=(1e-1, 1e-3),
    ),
    "deep_paper_tanh_softmax": dict(
        description="The paper's setting, 24 layers deep (P = 216); the dense H is omitted, "
        "as for any problem too large to store it.",
        problem=dict(depth=24, width=3, batch=2, activation="tanh", head="softmax", bias=False,
                     scale=2.0, seed=0),
        damping=(1e-1,),
        dense_limit=100,
    ),
    "residual_tanh_softmax": dict(
        description="Residual blocks z + tanh(z W^T + b) with biases, softmax head.",
        problem=dict(depth=5, width=3, batch=2, layers="residual", activation="tanh", head="softmax",
                     bias=True, scale=1.5, seed=1),
        damping=(1e-1, 1e-2),
    ),
    "mixed_gelu_mse": dict(
        description="Alternating dense and residual gelu layers with biases, squared-error head "
        "(torch mse_loss, mean over all elements).",
        problem=dict(depth=4, width=3, batch=3, layers="mixed", activation="gelu", head="mse",
                     n_classes=2, bias=True, scale=1.0, seed=2),
        damping=(1e-1,),
    ),
    "indefinite_sigmoid_mse": dict(
        description="Indefinite: H + 0.01 I has negative eigenvalues (see inertia), so "
        "Cholesky-based solvers fail and the inverse is not a descent direction.",
        problem=dict(depth=3, width=2, batch=4, activation="sigmoid", head="mse", n_classes=2,
                     bias=True, scale=2.0, seed=3),
        damping=(1e-2,),
    ),
    "near_singular_softmax_bias": dict(
        description="Near-singular: a softmax head with bias has a null space (shifting every "
        "class's bias, or every row of its weight by one vector, changes nothing), so with "
        "eps = 1e-6 the condition number is about 1e6 and inverse_v is accurate only to "
        "about n eps kappa; verify's tolerance uses that kappa.",
        problem=dict(depth=3, width=3, batch=2, activation="tanh", head="softmax", bias=True,
                     scale=1.0, seed=3),
        damping=(1e-6,),
    ),
}
"""The curated set: name -> description, ``random_problem`` arguments, dampings."""


def write_curated(outdir, names=None, out=print):
    """Write the curated golden files into ``outdir``; returns the JSON paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or CURATED:
        spec = CURATED[name]
        net, params, X, y = random_problem(**spec["problem"])
        seed = spec["problem"].get("seed", 0)
        json_path, _ = export(
            outdir / name, net, params, X, y, damping=spec["damping"], seed=seed,
            dense_limit=spec.get("dense_limit", 400), name=name, description=spec["description"],
            generator={"script": "python -m hessinv_ref.testing.make_golden OUTDIR",
                       "random_problem": spec["problem"],
                       "v": "numpy.random.default_rng([seed, 1]).standard_normal(P)"},
        )
        out(f"wrote {json_path.with_suffix('')}.{{json,npz}}  (P = {net.n_params})")
        written.append(json_path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hessinv_ref.testing.make_golden",
        description="Write the curated golden test vectors (NAME.json + NAME.npz) into OUTDIR.",
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="directory to write into (created if missing)")
    parser.add_argument("--only", action="append", choices=sorted(CURATED), metavar="NAME",
                        help=f"write only this file (repeatable); one of {', '.join(CURATED)}")
    args = parser.parse_args(argv)
    write_curated(args.outdir, args.only)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
