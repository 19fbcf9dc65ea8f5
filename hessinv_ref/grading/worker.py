"""The grading process: runs a student's cells and the exercise's checks.

Run as ``python -m hessinv_ref.grading.worker JOBS.json``, never by hand:
:mod:`hessinv_ref.grading.runner` writes the job file and starts it.  The job
file lists the files to grade and the options.

Isolation.  Each file is graded in a process of its own, so a student's
infinite loop, ``sys.exit()``, crash or monkey-patching cannot touch the
grader or another student.  Where ``os.fork`` exists this process imports
NumPy, SciPy and :mod:`hessinv_ref` once and forks a child per file (cheap,
and the import time is paid once per class, not once per student).
Elsewhere (``--inline``) it grades the one file in this very process.

Time limits count CPU time, so that a correct answer graded on a busy
machine is not failed for the machine's load (see
:data:`~hessinv_ref.grading.harness.WALL_FACTOR`).  The process that grades
a file gets ``RLIMIT_CPU`` = the file's limit (whole seconds, rounded up):
the kernel stops it there, even inside C code or with every signal ignored.
The wall clock, ten times the limit and at least 30 s, is a backstop for
code that sleeps or waits.  Inside, each call into student code also has its
own, shorter, limit (see :class:`~hessinv_ref.grading.harness.Student`), so
one looping function fails its checks and the others still get graded.

Results.  The child appends one JSON object per line to the job's results
file, flushing each: ``start``, ``note``, ``check_start``, ``check``,
``done``.  This process adds ``killed`` (a time limit: ``clock`` is
``"cpu"`` or ``"wall"``) or ``crashed`` (the child died).  A partial file
therefore still says which check was running.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
import traceback
import types
import zlib
from pathlib import Path

import numpy as np

from .exercises import get_exercise, solver_functions
from .harness import CheckFailure, Guard, Student, wall_backstop
from .notebook import read_student_file

__all__ = ["run_job", "main"]

WORKER_ENV = "HESSINV_REF_GRADING_WORKER"
"""Set inside a grading process: :func:`hessinv_ref.grade.grade` does nothing there."""

CPU_LIMIT_STATUS = 86
"""Exit status of a grading process stopped at its CPU-time limit (``SIGXCPU``)."""


def _cpu_limit_reached(signum, frame):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a reentrant flush, if the signal came mid-print
            pass
    os._exit(CPU_LIMIT_STATUS)


def limit_cpu_time(seconds):
    """Stop this process after ``seconds`` of CPU time (rounded up to whole seconds).

    At the soft limit the kernel sends ``SIGXCPU``, on which the process
    exits with :data:`CPU_LIMIT_STATUS`; one second later the hard limit
    kills it even if student code ignored that signal.  Core dumps are
    turned off, so that nothing lands in the student's folder.  Returns
    whether a limit could be set (not on systems without :mod:`resource`).
    """
    try:
        import resource
    except ImportError:  # Windows: the wall-clock backstop is the only limit
        return False
    soft = max(1, math.ceil(seconds))
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        new_hard = soft + 1 if hard == resource.RLIM_INFINITY else min(hard, soft + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (min(soft, new_hard), new_hard))
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ValueError, OSError):
        return False
    signal.signal(signal.SIGXCPU, _cpu_limit_reached)
    return True


class ResultWriter:
    """Appends events to a job's results file, one flushed JSON line each."""

    def __init__(self, path):
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the job's life

    def write(self, event, **fields):
        self._f.write(json.dumps({"event": event, **fields}) + "\n")
        self._f.flush()


_MAGIC = re.compile(r"^\s*[%!]")


def _strip_magics(source):
    """Blank out IPython magics and shell lines, which are not Python."""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def _compile_cell(sf, cell):
    if sf.path.suffix == ".ipynb":
        import linecache

        filename = f"{sf.path} (cell {cell.index})"
        source = _strip_magics(cell.source)
        lines = [line + "\n" for line in source.splitlines()]
        linecache.cache[filename] = (len(source), None, lines, filename)
        return compile(source, filename, "exec")
    # Leading newlines make line numbers in tracebacks those of the .md file.
    return compile("\n" * (cell.line - 1) + _strip_magics(cell.source), str(sf.path), "exec")


def load_cells(sf, cell_limit):
    """Run the student's cells in a fresh module, each within ``cell_limit`` seconds;
    return ``(namespace, notes)``.

    A cell that fails does not stop the others, as with "run all" that
    ignores errors: the checks then report precisely which definition is
    missing.
    """
    module = types.ModuleType("student")
    module.__file__ = str(sf.path)
    sys.modules["student"] = module
    ns = module.__dict__
    notes = []
    explainer = Student(sf.path, ns, Guard(), cell_limit)
    for cell in sf.student_cells:
        where = f"cell {cell.index}" + (f" (line {cell.line})" if cell.line else "")
        try:
            code = _compile_cell(sf, cell)
        except SyntaxError as err:
            notes.append(f"{where} has a syntax error on line {err.lineno}: {err.msg}; it was not run")
            continue
        try:
            explainer.invoke(where, lambda code=code: exec(code, ns))
        except CheckFailure as failure:
            what = failure.message.replace(f"`{where}` ", "", 1)
            notes.append(f"{where} did not run to the end ({what}); the grader ran the other cells")
    return ns, notes


def _run_case(check, student, params, label):
    cases = check.cases
    try:
        case = cases.build(params)
    except Exception as err:  # pragma: no cover - a bug in the grader
        raise CheckFailure(f"internal grader error while building a case: {err!r}", kind="grader_error") from err
    try:
        check.run(student, case)
    except CheckFailure as failure:
        if failure.case is None:
            failure.case = f"{label}: {cases.text(params)}"
        raise


def _hypothesis_cases(check, student, examples):
    """Run ``examples`` hypothesis-drawn cases; return how many ran."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    count, failure = [0], [None]

    @settings(
        max_examples=examples,
        derandomize=True,  # every student sees the same cases, run after run
        database=None,
        deadline=None,
        phases=(Phase.generate,),  # no shrinking: the cases are small, and time is short
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(check.cases.strategy())
    def drawn(params):
        count[0] += 1
        try:
            _run_case(check, student, params, "drawn by hypothesis")
        except CheckFailure as f:
            failure[0] = f
            raise

    try:
        drawn()
    except CheckFailure:
        raise failure[0] from None
    except Exception:
        # hypothesis's own complaints (e.g. a failure that did not reproduce
        # because the student's code is random): report the failure we saw.
        if failure[0] is not None:
            raise failure[0] from None
        raise
    return count[0]


def run_check(check, student, options, notes):
    """Run one check on all its cases; return the ``check`` event's fields."""
    n = 0
    try:
        if check.cases is None:
            check.run(student, None)
            n = 1
        else:
            for i, params in enumerate(check.cases.seeded, 1):
                _run_case(check, student, params, f"seeded case {i}")
                n += 1
            n += _extra_cases(check, student, options, notes)
    except CheckFailure as failure:
        return {"passed": False, "n_cases": n, **failure.to_dict()}
    except Exception as err:  # a bug in the grader, not in the student's code
        tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:])
        return {
            "passed": False,
            "n_cases": n,
            "kind": "grader_error",
            "message": f"internal grader error: {err!r}; please report it to your teacher",
            "hint": tail.strip(),
        }
    return {"passed": True, "n_cases": n}


def _extra_cases(check, student, options, notes):
    examples = int(options.get("examples", 5))
    if check.max_examples is not None:
        examples = min(examples, check.max_examples)
    if examples <= 0:
        return 0
    if options.get("hypothesis", True):
        try:
            import hypothesis  # noqa: F401 - a test dependency, imported only when wanted
        except ImportError:
            options["hypothesis"] = False
    if options.get("hypothesis", True):
        return _hypothesis_cases(check, student, examples)
    if "no-hypothesis" not in notes:
        notes.add("no-hypothesis")
    rng = np.random.default_rng(zlib.crc32(check.id.encode()))
    n = 2 * examples  # seeded draws are less searching than hypothesis's: take more
    for _ in range(n):
        _run_case(check, student, check.cases.draw(rng), "extra seeded case")
    return n


def _redirect_output(path):
    """Send this process's stdout and stderr (fds 1 and 2) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def run_job(job, options):
    """Grade one file in this process; events go to ``job["results"]``."""
    out = ResultWriter(job["results"])
    _redirect_output(job["output"])
    os.environ[WORKER_ENV] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")  # a plt.show() in a cell must not open a window
    try:
        sf = read_student_file(job["path"], job.get("exercise"))
        exercise = get_exercise(sf.exercise)
    except (ValueError, KeyError) as err:
        out.write("fatal", message=str(err))
        return
    folder = str(sf.path.parent)
    os.chdir(folder)  # as a Jupyter kernel starts in the notebook's folder
    sys.path.insert(0, folder)
    out.write("start", exercise=sf.exercise)
    call_limit = float(options.get("call_limit", 5.0))
    ns, cell_notes = load_cells(sf, float(options.get("cell_limit", call_limit)))
    for note in cell_notes:
        out.write("note", text=note)
    guard = Guard()
    for obj, label in exercise.forbidden():
        guard.forbid(obj, label)
    for obj, label in solver_functions():
        guard.watch_solver(obj, label)
    student = Student(sf.path, ns, guard, call_limit, cell_notes)
    flags = set()
    for check in exercise.CHECKS:
        out.write("check_start", id=check.id)
        out.write("check", id=check.id, **run_check(check, student, options, flags))
    if "no-hypothesis" in flags:
        out.write(
            "note",
            text="hypothesis is not installed (or was turned off), so extra seeded cases replaced "
            "the hypothesis-drawn ones (pip install hypothesis for the full set)",
        )
    out.write("done")


def _append(path, event, **fields):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"event": event, **fields}) + "\n")


PRELOAD = ("scipy.special", "scipy.linalg", "scipy.sparse", "scipy.sparse.linalg")
"""Modules the library imports on first use (``scipy.special`` for an activation's ``expit`` or
``erfc``...).  Imported before any student code runs, so that their import time, a few tenths of
a second of CPU, is never charged to the first student call that happens to reach them."""


def _preload():
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def _warm(jobs, options):
    """Import, once and before forking, what every child would otherwise import for itself."""
    _preload()
    for job in jobs:
        try:
            get_exercise(read_student_file(job["path"], job.get("exercise")).exercise)
        except (ValueError, KeyError):
            pass  # the child reports it
    if options.get("hypothesis", True) and int(options.get("examples", 5)) > 0:
        try:
            import hypothesis.strategies  # noqa: F401 - optional; a child falls back without it
        except ImportError:
            return
        try:
            # Recent hypothesis versions parse every loaded local module (this package included)
            # for constants on first use: do it once here rather than once per child.  An
            # internal function, hence the blanket guard: without it, children just do it themselves.
            from hypothesis.internal.conjecture.providers import _get_local_constants

            _get_local_constants()
        except Exception:  # noqa: BLE001
            pass


def _run_forked(jobs, options, parallel):
    """Fork one child per job, ``parallel`` at a time; each stops at its CPU-time
    limit, and this process kills those past the wall-clock backstop."""
    _warm(jobs, options)
    timeout = float(options.get("timeout", 20.0))
    wall = float(options.get("wall_limit") or wall_backstop(timeout))
    pending, running = list(jobs), {}
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: grade, then leave without running the parent's exit handlers
                status = 0
                try:
                    limit_cpu_time(timeout)  # a fresh process: its CPU time starts at zero
                    run_job(job, options)
                except BaseException:  # noqa: BLE001 - report anything, then exit
                    traceback.print_exc()
                    status = 3
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(status)
            running[pid] = (job, time.monotonic())
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid in running:
            job, _ = running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            # SIGXCPU's handler exits with CPU_LIMIT_STATUS; a child that ignored it died of SIGKILL
            # at the hard limit, which its CPU time tells apart from another death by SIGKILL.
            if code == CPU_LIMIT_STATUS or (code in (-signal.SIGXCPU, -signal.SIGKILL) and cpu >= timeout):
                _append(job["results"], "killed", clock="cpu", limit=max(1, math.ceil(timeout)))
            elif code != 0:
                _append(job["results"], "crashed", status=code)
            continue
        now = time.monotonic()
        for pid, (job, start) in list(running.items()):
            if now - start > wall:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                running.pop(pid)
                _append(job["results"], "killed", clock="wall", limit=wall)
        time.sleep(0.005)


def main(argv=None):
    """``python -m hessinv_ref.grading.worker JOBS.json [--inline]``."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    jobs, options = spec["jobs"], spec["options"]
    if "--inline" in argv or not hasattr(os, "fork"):
        # One file per process (the runner's rule): the limit counts this process's imports too.
        limit_cpu_time(float(options.get("timeout", 20.0)) * len(jobs))
        _preload()
        for job in jobs:
            run_job(job, options)
        return 0
    _run_forked(jobs, options, max(1, int(spec.get("parallel", 1))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
