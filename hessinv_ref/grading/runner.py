"""Start the grading process, wait for it, and turn its events into reports.

This side never runs student code: it reads the files (to identify each
exercise and report usage errors at once), writes a job file, starts
``python -m hessinv_ref.grading.worker`` and reads back the events each
graded file left behind (see :mod:`hessinv_ref.grading.worker`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .exercises import get_exercise
from .harness import wall_backstop
from .notebook import ExerciseFileError, read_student_file
from .report import CheckResult, GradeReport

__all__ = ["grade_files", "DEFAULT_TIMEOUT", "DEFAULT_EXAMPLES"]

DEFAULT_TIMEOUT = 20.0
"""CPU seconds one file may use, unless ``HESSINV_REF_GRADE_TIMEOUT`` says otherwise
(the wall clock stops it at :func:`~hessinv_ref.grading.harness.wall_backstop` of that)."""

DEFAULT_EXAMPLES = 5
"""Hypothesis examples per check, unless ``HESSINV_REF_GRADE_EXAMPLES`` says otherwise."""

_OUTPUT_TAIL = 2000


def _env_number(name, default, kind):
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None


def _worker_env():
    env = dict(os.environ)
    # Tiny matrices gain nothing from BLAS threads, and threads plus fork plus
    # several students at once would oversubscribe the machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    # The worker must import this very copy of hessinv_ref, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("HESSINV_REF_GRADING_WORKER", None)
    return env


def _launch(spec_path, env, inline, wait):
    args = [sys.executable, "-m", "hessinv_ref.grading.worker", str(spec_path)] + (["--inline"] if inline else [])
    # No stdin: a student's input() fails at once instead of waiting for the wall-clock backstop.
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=wait)
        return proc.returncode, out.decode(errors="replace"), False
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return proc.returncode, out.decode(errors="replace"), True


def grade_files(paths, *, exercise=None, timeout=None, examples=None, jobs=1, hypothesis=True, call_limit=None,
                wall_limit=None):
    """Grade exercise files, each in an isolated process.

    Parameters
    ----------
    paths : sequence of str or Path
        ``.md`` or ``.ipynb`` exercise files.
    exercise : int, optional
        Force the exercise number instead of reading it from each file.
    timeout : float, optional
        CPU seconds each file may use (default ``HESSINV_REF_GRADE_TIMEOUT``
        or 20; rounded up to whole seconds where the system enforces it).  CPU
        time does not grow when the machine is busy, so a correct answer
        passes under load, while a loop that computes forever is stopped at
        the limit.
    examples : int, optional
        Hypothesis examples per check (default ``HESSINV_REF_GRADE_EXAMPLES``
        or 5); 0 runs the seeded cases only.
    jobs : int
        Files graded at the same time.
    hypothesis : bool
        Draw extra cases with hypothesis when it is installed; ``False``
        behaves as if it were not (extra seeded cases instead).
    call_limit : float, optional
        CPU seconds one call into a student's function may use (default a
        quarter of ``timeout``, at most 5).  Each cell of the notebook may use
        half of ``timeout``.  By the clock, each may take ten times its limit,
        at least 30 s (:func:`~hessinv_ref.grading.harness.wall_backstop`).
    wall_limit : float, optional
        Seconds by the clock each file may take (default ten times
        ``timeout``, at least 30 s): the backstop for a notebook that waits
        rather than computes.

    Returns
    -------
    list of GradeReport
        In the order of ``paths``.
    """
    timeout = float(timeout if timeout is not None else _env_number("HESSINV_REF_GRADE_TIMEOUT", DEFAULT_TIMEOUT, float))
    examples = int(examples if examples is not None else _env_number("HESSINV_REF_GRADE_EXAMPLES", DEFAULT_EXAMPLES, int))
    if not timeout > 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout}")
    if examples < 0:
        raise ValueError(f"examples: expected an int >= 0, got {examples}")
    jobs = max(1, int(jobs))
    if call_limit is None:
        call_limit = min(5.0, timeout / 4)
    # A cell may import and plot (seconds); one call into a graded function should take milliseconds.
    cell_limit = max(float(call_limit), timeout / 2)
    wall_limit = wall_backstop(timeout) if wall_limit is None else float(wall_limit)
    options = {"timeout": timeout, "examples": examples, "hypothesis": bool(hypothesis),
               "call_limit": float(call_limit), "cell_limit": cell_limit, "wall_limit": wall_limit}

    reports, work = [None] * len(paths), []
    for i, path in enumerate(paths):
        try:
            sf = read_student_file(path, exercise)
            ex = get_exercise(sf.exercise)
        except ExerciseFileError as err:
            reports[i] = GradeReport(str(path), None, error=str(err))
            continue
        except KeyError as err:
            reports[i] = GradeReport(str(path), None, error=str(err.args[0]))
            continue
        work.append((i, sf, ex))
    if not work:
        return reports

    with tempfile.TemporaryDirectory(prefix="hessinv-grade-") as tmp:
        tmp = Path(tmp)
        job_list = [
            {
                "path": str(sf.path),
                "exercise": sf.exercise,
                "results": str(tmp / f"{i}.jsonl"),
                "output": str(tmp / f"{i}.out"),
            }
            for i, sf, _ in work
        ]
        for job in job_list:
            Path(job["results"]).touch()
        env = _worker_env()
        # hypothesis keeps caches in ./.hypothesis; the grader runs in the student's folder, so point
        # them at this temporary folder instead of leaving them behind there.
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(tmp / "hypothesis")
        fork = hasattr(os, "fork") and not os.environ.get("HESSINV_REF_GRADE_NO_FORK")
        worker_log = ""
        if fork:
            spec = tmp / "jobs.json"
            spec.write_text(json.dumps({"jobs": job_list, "options": options, "parallel": jobs}))
            # The worker stops each child at its limits; this is only a safety net.
            rounds = math.ceil(len(job_list) / jobs)
            _, worker_log, _ = _launch(spec, env, inline=False, wait=rounds * (wall_limit + 5) + 120)
        else:
            from .worker import CPU_LIMIT_STATUS

            for job in job_list:  # one process per file; the limit includes its imports
                spec = tmp / f"{Path(job['results']).stem}.json"
                spec.write_text(json.dumps({"jobs": [job], "options": options}))
                status, log, killed = _launch(spec, env, inline=True, wait=wall_limit)
                worker_log += log
                stop = ({"clock": "wall", "limit": wall_limit} if killed else
                        {"clock": "cpu", "limit": max(1, math.ceil(timeout))} if status == CPU_LIMIT_STATUS else None)
                if stop is not None:
                    with open(job["results"], "a", encoding="utf-8") as f:
                        f.write(json.dumps({"event": "killed", **stop}) + "\n")
        for (i, sf, ex), job in zip(work, job_list):
            reports[i] = _assemble(sf, ex, job, timeout, worker_log)
    return reports


def _read_events(path):
    events = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a line cut short by a kill
            continue
    return events


def _tail(path, n):
    """The last ``n`` characters (about) of a file a student's prints may have made huge."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4 * n))
            return f.read().decode("utf-8", errors="replace")[-n:]
    except OSError:
        return ""


def _assemble(sf, ex, job, timeout, worker_log):
    """Build a :class:`GradeReport` from one job's events."""
    events = _read_events(job["results"])
    report = GradeReport(str(sf.path), sf.exercise, ex.TITLE, output=_tail(job["output"], _OUTPUT_TAIL))
    kinds = {e["event"] for e in events}
    running = "this check did not finish"
    if "fatal" in kinds:
        report.error = next(e["message"] for e in events if e["event"] == "fatal")
        return report
    done = {e["id"]: e for e in events if e["event"] == "check"}
    started = [e["id"] for e in events if e["event"] == "check_start"]
    report.notes = [e["text"] for e in events if e["event"] == "note"]
    if "killed" in kinds:
        killed = next(e for e in events if e["event"] == "killed")
        if killed.get("clock") == "wall":
            stop = (f"the grader stopped your notebook after {killed['limit']:g} s by the clock (its limit is "
                    f"{timeout:g} s of CPU time; a notebook that waits rather than computes is stopped by the clock)")
            running = f"{stop}, while this check was running: look for something that waits (time.sleep, a lock)"
        else:
            stop = f"the grader stopped your notebook after {killed.get('limit', timeout):g} s of CPU time"
            running = f"{stop} while this check was running: look for a loop that never ends"
        report.notes.append(f"{stop}; checks after that point were not run")
    elif "done" not in kinds:
        crash = next((e for e in events if e["event"] == "crashed"), None)
        status = f" (exit status {crash['status']})" if crash else ""
        stop = f"the grading process stopped unexpectedly{status}"
        running = f"{stop} during this check: does your code call sys.exit(), os._exit() or crash Python?"
        report.notes.append(stop + "; the last thing printed is in the report's output")
        if not events and worker_log.strip():
            report.notes.append("grader log: " + worker_log.strip()[-500:])
    for check in ex.CHECKS:
        if check.id in done:
            fields = {k: v for k, v in done[check.id].items() if k not in ("event", "id")}
            report.checks.append(CheckResult(check.id, check.title, **fields))
        elif check.id in started:
            report.checks.append(CheckResult(check.id, check.title, False, kind="timeout", message=running))
        else:
            if started:
                message = "not run: the grader stopped before this check"
            elif "start" in kinds:
                message = "not run: your notebook's cells did not finish loading (see the notes)"
            else:
                message = "not run: the grading process did not start (see the notes)"
            report.checks.append(CheckResult(check.id, check.title, False, kind="not_run", message=message))
    return report
