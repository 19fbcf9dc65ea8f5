"""The ways in: ``grade()`` from a notebook, ``python -m hessinv_ref.grade``,
``hessinv-ref grade``; JSON output, exit statuses, the time limit, and the
fallbacks (no fork, no hypothesis).  Also the consistency of the exercise set."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hessinv_ref.cli import main as cli_main
from hessinv_ref.grade import grade
from hessinv_ref.grading.exercises import EXERCISES, get_exercise
from hessinv_ref.grading.notebook import read_student_file
from hessinv_ref.grading.runner import grade_files

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "tutorials" / "exercises"
SOLUTIONS = STUBS / "solutions"


# -- the exercise set is consistent ---------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_exercise_files_match_the_registry(number):
    ex = get_exercise(number)
    assert ex.NUMBER == number and ex.FILE == EXERCISES[number] + ".md"
    ids = [c.id for c in ex.CHECKS]
    assert len(ids) == len(set(ids)), f"duplicate check ids {ids}"
    for folder in (STUBS, SOLUTIONS):
        sf = read_student_file(folder / ex.FILE)
        assert sf.exercise == number
        grader_cells = [c for c in sf.cells if c.is_grader]
        # The bare name: the cell grades the notebook it runs in, .md or the .ipynb made from it.
        assert len(grader_cells) == 1 and f'grade("{Path(ex.FILE).stem}")' in grader_cells[0].source
        defined = set()
        for cell in sf.student_cells:
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    defined.add(node.name)
        assert set(ex.NAMES) <= defined, f"{folder.name}/{ex.FILE} does not define {set(ex.NAMES) - defined}"


ALLOWED_IMPORTS = {"numpy", "scipy", "hessinv_ref"}


@pytest.mark.parametrize("folder", [STUBS, SOLUTIONS], ids=["stubs", "solutions"])
def test_exercise_cells_import_only_numpy_scipy_and_hessinv_ref(folder):
    # The grader runs every cell; an import of a library outside the package's own dependencies
    # (matplotlib is only in the docs extra) would fail a correct answer where it is not installed.
    for number in sorted(EXERCISES):
        path = folder / get_exercise(number).FILE
        for cell in read_student_file(path).cells:
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                for name in names:
                    assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name}, cell {cell.index} imports {name}"


# -- entry points -------------------------------------------------------------------------------------


def test_module_cli_json_for_a_roster():
    stub, solution = STUBS / "ex01_activation.md", SOLUTIONS / "ex01_activation.md"
    proc = subprocess.run([sys.executable, "-m", "hessinv_ref.grade", "--json", "--examples", "0", "--jobs", "2",
                           str(stub), str(solution)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] is False
    first, second = doc["reports"]
    assert first["path"] == str(stub) and second["path"] == str(solution)
    assert first["n_passed"] == 0 and {c["kind"] for c in first["checks"]} == {"not_implemented"}
    assert second["passed"] is True and second["n_checks"] == len(get_exercise(1).CHECKS)


def test_package_cli_exit_statuses(tmp_path, capsys):
    assert cli_main(["grade", "--quiet", "--examples", "0", str(SOLUTIONS / "ex05_backprop_matrix.md")]) == 0
    assert "3/3 (all checks passed)" in capsys.readouterr().out
    # A file that cannot be graded at all is a usage error, status 2, and no process is started for it.
    unknown = tmp_path / "homework.md"
    unknown.write_text("```{code-cell} ipython3\nx = 1\n```\n", encoding="utf-8")
    assert cli_main(["grade", str(tmp_path / "ex01_missing.md"), str(unknown)]) == 2
    out = capsys.readouterr().out
    assert "no such file" in out and "cannot tell which exercise" in out
    with pytest.raises(SystemExit):
        cli_main(["grade", "--jobs", "0", "x.md"])


def test_grade_from_a_notebook_folder(monkeypatch, capsys):
    monkeypatch.chdir(SOLUTIONS)  # Jupyter starts the kernel in the notebook's folder
    report = grade("ex05_backprop_matrix.md", examples=0)
    assert report.passed
    assert "All 3 checks passed." in capsys.readouterr().out
    assert repr(report) == "<GradeReport exercise 5: 3/3 checks passed>"


def as_ipynb(md_path):
    """The .ipynb a student makes from an exercise's .md: with jupytext when it is installed (what
    docs/teachers.md tells them to use), else by hand as jupytext does it (the code cells with their
    tags, the front matter's keys in the notebook's metadata)."""
    try:
        import jupytext
    except ImportError:
        cells = [{"cell_type": "code", "metadata": {"tags": list(c.tags)} if c.tags else {}, "source": c.source,
                  "outputs": [], "execution_count": None} for c in read_student_file(md_path).cells]
        number = read_student_file(md_path).exercise
        return json.dumps({"cells": cells, "metadata": {"exercise": number}, "nbformat": 4, "nbformat_minor": 5})
    return jupytext.writes(jupytext.read(md_path), fmt="ipynb")


def _grader_cell(path):
    (cell,) = [c for c in read_student_file(path).cells if c.is_grader]
    return cell.source


@pytest.mark.parametrize("session", [False, True], ids=["newest-file", "jupyter-says"])
def test_the_grading_cell_of_an_ipynb_grades_that_notebook(tmp_path, monkeypatch, capsys, session):
    # A student converts the exercise to .ipynb and fills that in; the unfilled .md stays beside it.
    # Run the notebook's own grading cell, as its kernel would (in the notebook's folder).
    number = 8
    name = Path(get_exercise(number).FILE).stem
    stub = tmp_path / f"{name}.md"
    stub.write_text((STUBS / f"{name}.md").read_text(encoding="utf-8"), encoding="utf-8")
    notebook = tmp_path / (f"{name}.ipynb" if not session else f"{name}-Copy1.ipynb")
    notebook.write_text(as_ipynb(SOLUTIONS / f"{name}.md"), encoding="utf-8")
    if session:  # Jupyter says which notebook runs, even one renamed and saved before the .md
        os.utime(notebook, (1_000_000, 1_000_000))
        monkeypatch.setenv("JPY_SESSION_NAME", f"course/{notebook.name}")
    else:  # nothing says: the file saved last
        os.utime(stub, (1_000_000, 1_000_000))
        monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("HESSINV_REF_GRADE_EXAMPLES", "0")
    monkeypatch.chdir(tmp_path)
    exec(compile(_grader_cell(notebook), str(notebook), "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert f"file: {notebook.resolve()}" in out, out
    assert f"All {len(get_exercise(number).CHECKS)} checks passed." in out, out


def test_grade_does_nothing_inside_the_grader(monkeypatch):
    monkeypatch.setenv("HESSINV_REF_GRADING_WORKER", "1")
    assert grade("anything.md") is None


needs_rlimit = pytest.mark.skipif(not hasattr(os, "fork") or importlib.util.find_spec("resource") is None,
                                  reason="needs fork and resource.RLIMIT_CPU")


def _stuck(tmp_path, name, preamble):
    """Exercise 2's stub with a first cell that runs ``preamble`` and never ends."""
    text = (STUBS / "ex02_dense_vjp_jvp.md").read_text(encoding="utf-8").replace(
        "import numpy as np\n", "import numpy as np\nimport signal, time\n" + preamble, 1)
    path = tmp_path / f"ex02_{name}.md"
    path.write_text(text, encoding="utf-8")
    return path


@needs_rlimit
def test_the_cpu_limit_stops_a_loop_that_ignores_every_signal(tmp_path):
    # Only the file's CPU-time limit (RLIMIT_CPU, which the kernel enforces) can stop these: the
    # per-cell timers are ignored, and the second also ignores SIGXCPU, so the hard limit kills it.
    timers = "signal.signal(signal.SIGPROF, signal.SIG_IGN)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    files = [_stuck(tmp_path, "spins", timers + "while True:\n    pass\n"),
             _stuck(tmp_path, "spins_deaf", timers + "signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
                    "while True:\n    pass\n")]
    for report in grade_files(files, timeout=1, examples=0, call_limit=0.5, jobs=2):
        assert any("stopped your notebook after 1 s of CPU time" in note for note in report.notes), report.notes
        assert all(c.kind == "not_run" and "did not finish loading" in c.message for c in report.checks)


@needs_rlimit
def test_the_wall_clock_backstop_stops_a_notebook_that_only_waits(tmp_path):
    # A cell that ignores its own timer and sleeps forever uses no CPU: the clock stops it (by default
    # at ten times the file's limit, at least 30 s; a short backstop here keeps the test short).
    path = _stuck(tmp_path, "sleeps", "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)\n")
    (report,) = grade_files([path], timeout=1, examples=0, call_limit=0.1, wall_limit=3)
    assert any("after 3 s by the clock" in note for note in report.notes), report.notes
    assert all(c.kind == "not_run" for c in report.checks)


@pytest.fixture
def busy_machine():
    """Every core kept busy by spinning processes (at normal priority) while the test runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_correct_answer_passes_on_a_busy_machine(busy_machine):
    # Exercise 3's answer key once failed "time limit" beside other work.  The limits count CPU time,
    # which load does not inflate, and the library's lazy imports (scipy.special, on an activation's
    # first use) are done before any student call; a short call limit (CPU seconds) makes the test
    # sensitive to both.  Only that it passes is asserted, never how long it took.
    (report,) = grade_files([SOLUTIONS / "ex03_dense_curvature.md"], examples=0, call_limit=0.25)
    assert report.passed, report.render()


def test_without_fork_and_without_hypothesis(monkeypatch):
    monkeypatch.setenv("HESSINV_REF_GRADE_NO_FORK", "1")
    (report,) = grade_files([SOLUTIONS / "ex02_dense_vjp_jvp.md"], examples=1, hypothesis=False)
    assert report.passed, report.render()
    assert any("extra seeded cases" in note for note in report.notes), report.notes
    check = report.check("vjp_b_in")
    assert check.n_cases == len(get_exercise(2).CHECKS[0].cases.seeded) + 2  # two seeded draws per example
