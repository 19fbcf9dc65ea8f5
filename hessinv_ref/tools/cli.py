"""The ``hessinv-ref`` command line (also ``python -m hessinv_ref``).

Each subcommand lives in its own module; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys

from .._argtypes import depth_list, nonnegative_float, nonnegative_int, positive_float, positive_int, seed

__all__ = ["main", "build_parser"]


def build_parser():
    """The argument parser with one sub-parser per subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="hessinv-ref",
        description="Exact Hessian and inverse-Hessian-vector products of deep chains.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="build a deep tall-skinny network and check every route against the dense oracle",
        description="Build a deep tall-skinny network and check the Hessian-vector "
        "product and the inverse routes against the dense oracle.",
    )
    demo.add_argument("--depth", type=positive_int, default=64, help="number of layers L (default 64)")
    demo.add_argument("--width", type=positive_int, default=4, help="hidden width (default 4)")
    demo.add_argument("--batch", type=positive_int, default=2, help="batch size (default 2)")
    demo.add_argument("--classes", type=positive_int, default=3, help="softmax classes (default 3)")
    demo.add_argument("--damping", type=nonnegative_float, default=1e-2, help="ε in (H + εI) (default 1e-2)")
    demo.add_argument("--scale", type=float, default=2.0, help="weight gain over torch.nn.Linear's init (default 2)")
    demo.add_argument("--seed", type=seed, default=0, help="random seed, an integer >= 0 (default 0)")
    demo.add_argument(
        "--sweep", type=depth_list, default=(16, 32, 64, 128), metavar="L1,L2,...",
        help="depths of the timing sweep, comma-separated, or 'none' (default 16,32,64,128)",
    )
    from .demo import DEFAULTS as _demo

    demo.add_argument("--repeats", type=positive_int, default=_demo["repeats"],
                      help=f"each time is the median of this many runs (default {_demo['repeats']})")
    demo.add_argument("--krylov-maxiter", type=positive_int, default=_demo["krylov_maxiter"],
                      help=f"iteration cap of the cg and minres rows (default {_demo['krylov_maxiter']})")
    demo.add_argument("--dense-max-s", type=positive_float, default=_demo["dense_max_s"],
                      help="skip the dense oracle once its predicted time passes this "
                      f"(default {_demo['dense_max_s']:g} s)")
    demo.add_argument("--dense-max-gib", type=positive_float, default=_demo["dense_max_gib"],
                      help="skip the dense oracle once its predicted memory, 3 P^2 doubles, passes "
                      f"this (default {_demo['dense_max_gib']:g} GiB)")
    demo.add_argument("--force-dense", action="store_true",
                      help="run the dense oracle whatever its predicted time and memory")
    demo.add_argument("--blas-threads", type=nonnegative_int, default=_demo["blas_threads"],
                      help="pin BLAS threads with threadpoolctl, as bench does "
                      f"(default {_demo['blas_threads']}; 0 = library default)")
    demo.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    demo.set_defaults(func=_run_demo)

    from .bench import add_parser as _add_bench

    _add_bench(sub)

    from ..golden import add_parsers as _add_golden  # the export and verify subcommands

    _add_golden(sub)

    from .grade import add_parser as _add_grade  # the classroom exercises' autograder

    _add_grade(sub)

    from .gpu_check import add_parser as _add_gpu_check  # every route on CuPy (or another backend)

    _add_gpu_check(sub)
    return parser


def _run_demo(args):
    from .demo import run_demo

    return run_demo(
        depth=args.depth,
        width=args.width,
        batch=args.batch,
        classes=args.classes,
        damping=args.damping,
        scale=args.scale,
        seed=args.seed,
        sweep=args.sweep,
        repeats=args.repeats,
        krylov_maxiter=args.krylov_maxiter,
        dense_max_s=args.dense_max_s,
        dense_max_gib=args.dense_max_gib,
        force_dense=args.force_dense,
        blas_threads=args.blas_threads,
        progress=not args.quiet,
        out=lambda line="": print(line, flush=True),
    )


def main(argv=None):
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "gpu-check":  # it picks its backend itself (--backend)
            return int(args.func(args) or 0)
        # The other subcommands build NumPy inputs and compare with SciPy, so
        # they run on NumPy whatever HESSINV_REF_BACKEND says.
        from ..backend import use_backend

        with use_backend("numpy"):
            return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError) as err:
        print(f"hessinv-ref {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
