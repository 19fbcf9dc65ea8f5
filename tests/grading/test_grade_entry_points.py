"""The ways in: ``grade()`` from a notebook, ``python -m hessinv_ref.grade``,
``hessinv-ref grade``; JSON output, exit statuses, the time limit, and the
fallbacks (no fork, no hypothesis).  Also the consistency of the exercise set."""

from __future__ import annotations

import ast
import json
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
        assert len(grader_cells) == 1 and f'grade("{ex.FILE}")' in grader_cells[0].source
        defined = set()
        for cell in sf.student_cells:
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    defined.add(node.name)
        assert set(ex.NAMES) <= defined, f"{folder.name}/{ex.FILE} does not define {set(ex.NAMES) - defined}"


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


def test_grade_does_nothing_inside_the_grader(monkeypatch):
    monkeypatch.setenv("HESSINV_REF_GRADING_WORKER", "1")
    assert grade("anything.md") is None


def test_the_time_limit_stops_a_notebook_that_ignores_the_alarm(tmp_path):
    # A cell that disables the per-call alarm and never ends: only the hard limit can stop it.
    # (It sleeps rather than spins, to spare the test machine's CPU; the grader cannot tell.)
    text = (STUBS / "ex02_dense_vjp_jvp.md").read_text(encoding="utf-8").replace(
        "import numpy as np\n", "import numpy as np\nimport signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "while True:\n    time.sleep(0.05)\n", 1)
    path = tmp_path / "ex02_stuck.md"
    path.write_text(text, encoding="utf-8")
    (report,) = grade_files([path], timeout=2, examples=0, call_limit=0.5)
    assert any("stopped your notebook after 2 s" in note for note in report.notes), report.notes
    assert all(c.kind == "not_run" and "did not finish loading" in c.message for c in report.checks)


def test_without_fork_and_without_hypothesis(monkeypatch):
    monkeypatch.setenv("HESSINV_REF_GRADE_NO_FORK", "1")
    (report,) = grade_files([SOLUTIONS / "ex02_dense_vjp_jvp.md"], examples=1, hypothesis=False)
    assert report.passed, report.render()
    assert any("extra seeded cases" in note for note in report.notes), report.notes
    check = report.check("vjp_b_in")
    assert check.n_cases == len(get_exercise(2).CHECKS[0].cases.seeded) + 2  # two seeded draws per example
