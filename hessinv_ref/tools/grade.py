"""The autograder of the classroom exercises (``tutorials/exercises/``).

Three ways in, one behaviour:

* from the last cell of an exercise notebook::

      from hessinv_ref.grade import grade
      grade("ex03_dense_curvature")

  which grades the notebook the cell runs in: the ``.ipynb`` a student made
  from the ``.md``, or the ``.md`` opened as a notebook (see :func:`grade`);
* from a shell: ``python -m hessinv_ref.grade ex03_dense_curvature.ipynb``;
* from the package's command line: ``hessinv-ref grade ex03_dense_curvature.ipynb``.

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
from pathlib import Path

from .._argtypes import nonnegative_int, positive_float, positive_int

__all__ = ["grade", "running_notebook", "add_parser", "main"]


def running_notebook():
    """The file of the Jupyter notebook whose kernel calls this, or ``None``.

    Jupyter Server tells its kernels in the environment variable
    ``JPY_SESSION_NAME`` (which ipykernel also puts in ``__session__``), VS
    Code in ``__vsc_ipynb_file__``; a relative path is taken from the current
    folder, or is looked up there by its file name (a kernel starts in the
    notebook's folder).  Other front ends, ``nbconvert --execute`` and plain
    Python say nothing: then ``None``.
    """
    values = []
    ipython = sys.modules.get("IPython")  # only if already imported: never start IPython here
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    user_ns = getattr(shell, "user_ns", None) or {}
    values += [user_ns.get(key) for key in ("__vsc_ipynb_file__", "__session__")]
    values.append(os.environ.get("JPY_SESSION_NAME"))
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        path = Path(value)
        for candidate in [path] if path.is_absolute() else [Path.cwd() / path, Path.cwd() / path.name]:
            if candidate.suffix in (".ipynb", ".md") and candidate.is_file():
                return candidate.resolve()
    return None


def grade(path=None, *, exercise=None, timeout=None, examples=None, show=True, hypothesis=True):
    """Grade one exercise file and print the report.

    Parameters
    ----------
    path : str or Path, optional
        What to grade.  From a notebook, save it first: the grader reads the
        file, not the kernel.  A relative path is taken from the current
        folder, which in Jupyter is the notebook's.

        * A file name with its extension (``"ex03_dense_curvature.md"``,
          ``"mine.ipynb"``): that file.
        * An exercise's name without one (``"ex03_dense_curvature"``, what
          the exercises' last cell says): the notebook that runs the cell,
          when Jupyter says which it is (:func:`running_notebook`) and it is
          that exercise; otherwise ``ex03_dense_curvature.ipynb`` or
          ``ex03_dense_curvature.md`` in the current folder, the one saved
          last if both are there (the report says so).  So the same cell
          grades the ``.md`` opened as a notebook and the ``.ipynb`` made
          from it.
        * Nothing: the notebook that runs the cell.
    exercise : int, optional
        The exercise number, if the file does not say.
    timeout : float, optional
        CPU seconds the grading of the file may use (default 20, or the
        environment variable ``HESSINV_REF_GRADE_TIMEOUT``); by the wall clock
        it may take ten times that, at least 30 s (see
        :func:`~hessinv_ref.grading.runner.grade_files`).
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
    from ..grading.notebook import ExerciseFileError, find_exercise_file
    from ..grading.report import GradeReport
    from ..grading.runner import grade_files
    from ..grading.worker import WORKER_ENV

    if os.environ.get(WORKER_ENV):
        return None
    try:
        target, note = find_exercise_file(path, running=running_notebook())
    except ExerciseFileError as err:
        target, note = None, None
        report = GradeReport(str(path) if path is not None else "(this notebook)", None, error=str(err))
    if target is not None:
        (report,) = grade_files([target], exercise=exercise, timeout=timeout, examples=examples, hypothesis=hypothesis)
        if note:
            report.notes.insert(0, note)
    if show:
        print(report.render())
    return report


def _configure(parser):
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="exercise notebooks (.md or .ipynb; a name without extension, e.g. ex03_dense_curvature, "
                        "grades the .ipynb or .md of that name saved last)")
    parser.add_argument("--exercise", type=int, help="exercise number, if the files do not say")
    parser.add_argument("--timeout", type=positive_float, help="CPU seconds per file (default 20; the wall clock allows 10 times that, at least 30 s)")
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
    from ..grading.notebook import SUFFIXES, ExerciseFileError, find_exercise_file
    from ..grading.runner import grade_files

    files, notes = [], {}
    for name in args.files:
        if Path(name).suffix in SUFFIXES or Path(name).is_file():
            files.append(name)
            continue
        try:
            found, note = find_exercise_file(name)
        except ExerciseFileError:
            found, note = name, None  # grade_files reports the missing file, with the others
        files.append(found)
        if note:
            notes[len(files) - 1] = note
    reports = grade_files(
        files,
        exercise=args.exercise,
        timeout=args.timeout,
        examples=args.examples,
        jobs=args.jobs,
        hypothesis=not args.no_hypothesis,
    )
    for i, note in notes.items():
        reports[i].notes.insert(0, note)
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
