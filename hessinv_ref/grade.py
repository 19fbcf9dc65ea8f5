"""The autograder of the classroom exercises (``tutorials/exercises/``).

Three ways in, one behaviour:

* from the last cell of an exercise notebook::

      from hessinv_ref.grade import grade
      grade("ex03_dense_curvature.md")

* from a shell: ``python -m hessinv_ref.grade ex03_dense_curvature.md``;
* from the package's command line: ``hessinv-ref grade ex03_dense_curvature.md``.

The grader identifies the exercise (the front-matter key ``exercise: N``, or
the file name ``exNN_...``), runs the student's code cells, and only those,
in a separate process with a limit on CPU time (which a busy machine does not
inflate, so a correct answer never fails for the machine's load), checks their
functions against the
reference on seeded and hypothesis-drawn cases, and prints a table of checks.
A failed check shows the input case, the expected and actual values (or the
worst entry) and a hint: the common mistake the answer matches, found by
comparing it with known wrong variants.  See :mod:`hessinv_ref.grading` for
the machinery and ``docs/teachers.md`` for grading a whole class.

Exit status (command line): 0 when every check of every file passes, 1 when
a check fails, 2 when a file cannot be graded at all (not found, no
exercise number).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ._argtypes import nonnegative_int, positive_float, positive_int

__all__ = ["grade", "add_parser", "main"]


def grade(path, *, exercise=None, timeout=None, examples=None, show=True, hypothesis=True):
    """Grade one exercise file and print the report.

    Parameters
    ----------
    path : str or Path
        The exercise notebook (``.md``, or an ``.ipynb`` made from it).  From
        a notebook, save it first: the grader reads the file, not the kernel.
        A relative path is taken from the current folder, which in Jupyter
        is the notebook's.
    exercise : int, optional
        The exercise number, if the file does not say.
    timeout : float, optional
        CPU seconds the grading of the file may use (default 20, or the
        environment variable ``HESSINV_REF_GRADE_TIMEOUT``); by the wall clock
        it may take ten times that (see :func:`~hessinv_ref.grading.runner.grade_files`).
    examples : int, optional
        Hypothesis-drawn cases per check (default 5, or
        ``HESSINV_REF_GRADE_EXAMPLES``).
    show : bool
        Print the report.
    hypothesis : bool
        Use hypothesis if installed (``False``: extra seeded cases instead).

    Returns
    -------
    GradeReport or None
        ``None`` when called from inside the grader itself (a notebook being
        graded does not grade itself again).
    """
    from .grading.runner import grade_files
    from .grading.worker import WORKER_ENV

    if os.environ.get(WORKER_ENV):
        return None
    (report,) = grade_files([path], exercise=exercise, timeout=timeout, examples=examples, hypothesis=hypothesis)
    if show:
        print(report.render())
    return report


def _configure(parser):
    parser.add_argument("files", nargs="+", metavar="FILE", help="exercise notebooks (.md or .ipynb)")
    parser.add_argument("--exercise", type=int, help="exercise number, if the files do not say")
    parser.add_argument("--timeout", type=positive_float, help="CPU seconds per file (default 20; the wall clock allows 10 times that)")
    parser.add_argument("--examples", type=nonnegative_int, help="hypothesis cases per check (default 5; 0: seeded cases only)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="files graded at the same time (default 1)")
    parser.add_argument("--no-hypothesis", action="store_true", help="extra seeded cases instead of hypothesis-drawn ones")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON document with every report")
    out.add_argument("--quiet", action="store_true", help="print one summary line per file")
    parser.set_defaults(func=run_command)
    return parser


def add_parser(subparsers):
    """Add the ``grade`` subcommand to the ``hessinv-ref`` command line."""
    return _configure(
        subparsers.add_parser(
            "grade",
            help="grade classroom exercise notebooks",
            description="Grade classroom exercise notebooks (tutorials/exercises/exNN_*.md) "
            "against the reference, each in an isolated process with a time limit.",
        )
    )


def run_command(args):
    """Run the ``grade`` command; return the exit status."""
    from .grading.runner import grade_files

    reports = grade_files(
        args.files,
        exercise=args.exercise,
        timeout=args.timeout,
        examples=args.examples,
        jobs=args.jobs,
        hypothesis=not args.no_hypothesis,
    )
    if args.json:
        print(json.dumps({"passed": all(r.passed for r in reports), "reports": [r.to_dict() for r in reports]}, indent=1))
    elif args.quiet:
        for r in reports:
            print(r.summary())
    else:
        for r in reports:
            print(r.render())
        if len(reports) > 1:
            print("Summary")
            for r in reports:
                print("  " + r.summary())
    if any(r.error is not None for r in reports):
        return 2
    return 0 if all(r.passed for r in reports) else 1


def main(argv=None):
    """``python -m hessinv_ref.grade FILE [FILE ...]``; returns the exit status."""
    parser = _configure(argparse.ArgumentParser(prog="python -m hessinv_ref.grade", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
