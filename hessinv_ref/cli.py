"""The ``hessinv-ref`` command line (also ``python -m hessinv_ref``).

Each subcommand lives in its own module; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys

from ._argtypes import nonnegative_float, positive_int, seed

__all__ = ["main", "build_parser"]


def _depth_list(text):
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        depths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated depths or 'none', got {text!r}") from None
    if any(d < 1 for d in depths):
        raise argparse.ArgumentTypeError(f"expected positive depths, got {text!r}")
    return depths


def build_parser():
    """The argument parser with one sub-parser per subcommand."""
    from . import __version__

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
        "--sweep", type=_depth_list, default=(16, 32, 64, 128), metavar="L1,L2,...",
        help="depths of the timing sweep, comma-separated, or 'none' (default 16,32,64,128)",
    )
    demo.set_defaults(func=_run_demo)

    from .bench import add_parser as _add_bench

    _add_bench(sub)

    from .golden import add_parsers as _add_golden  # the export and verify subcommands

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
        from .backend import use_backend

        with use_backend("numpy"):
            return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError) as err:
        print(f"hessinv-ref {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
