"""Grade every solution, every stub and every catalogued mistake, in one batch.

The batch goes through the real machinery (a worker process that runs each
student file in a forked child with a time limit), once per test session, so
that the many assertions below share one import of NumPy and SciPy.

* Every reference solution passes every check.
* Every unmodified stub fails every check, each with the "not implemented"
  message.
* Every mistake in ``mistakes/`` (a realistic wrong edit of a solution) fails
  the checks it names, each *with the hint it names*, and passes the checks it
  must not break: the diagnosis is targeted, not a blanket failure.
* A few misbehaving notebooks (an infinite loop, a cell that raises, a missing
  function, ``sys.exit``, ``os._exit``, an ``.ipynb``) are reported, never crash
  the grader.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from hessinv_ref.grading.exercises import EXERCISES, get_exercise
from hessinv_ref.grading.runner import grade_files

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "tutorials" / "exercises"
SOLUTIONS = STUBS / "solutions"
MISTAKES = sorted((Path(__file__).parent / "mistakes").glob("ex*.py"))

CALL_LIMIT = 1.0  # seconds per call into student code: enough for every solution, short for the loop test


def apply_edits(text, edits, where):
    """Apply ``(old, new)`` edits, each of whose ``old`` must occur exactly once."""
    for old, new in edits:
        count = text.count(old)
        assert count == 1, f"{where}: the edit's text occurs {count} times in the solution, expected once:\n{old}"
        text = text.replace(old, new)
    return text


def load_mistake(path):
    spec = runpy.run_path(str(path))
    return {k: spec[k] for k in ("EXERCISE", "EDITS", "FAILS", "PASSES")} | {"doc": spec.get("__doc__")}


def solution_text(number):
    return (SOLUTIONS / get_exercise(number).FILE).read_text(encoding="utf-8")


def _special_files(tmp):
    """Misbehaving notebooks, each built from a solution; name -> path."""
    files = {}

    def write(name, number, edits=(), suffix=".md", text=None):
        text = text if text is not None else apply_edits(solution_text(number), edits, name)
        path = tmp / f"{name}{suffix}"
        path.write_text(text, encoding="utf-8")
        files[name] = path

    loop = "    while True:\n        pass\n"
    write("loop", 2, [("    U = Z @ W.T + c\n    D = b_out", loop + "    U = Z @ W.T + c\n    D = b_out")])
    write("syntax", 2, [("## Check\n", "```{code-cell} ipython3\ndef broken(:\n    pass\n```\n\n## Check\n")])
    write("cell_raises", 5, [("## Check\n", "```{code-cell} ipython3\nassemble_M(None)\n```\n\n## Check\n")])
    write("missing", 2, [("def dense_jvp(", "def dense_jvp_renamed(")])
    write("no_return", 2, [("    return D @ W, D.T @ Z, D.sum(axis=0)", "    result = D @ W, D.T @ Z, D.sum(axis=0)")])
    write("raises", 5, [("    a = [blk.Jz.shape[0] for blk in blocks]  # a_1..a_L",
                         "    a = [blk.Jz.shape[0] for blk in blocks]  # a_1..a_L\n    raise ValueError('my bug')")])
    write("sys_exit", 5, [("    return scipy.linalg.block_diag(*[blk.Jx for blk in blocks])", "    import sys\n    sys.exit(3)")])
    write("os_exit", 5, [("## Check\n", "```{code-cell} ipython3\nimport os\nos._exit(0)\n```\n\n## Check\n")])
    # The solution as the .ipynb that jupytext would make: code cells and the exercise in the metadata.
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Exercise 3\n"]}]
    from hessinv_ref.grading.notebook import read_student_file

    for cell in read_student_file(SOLUTIONS / get_exercise(3).FILE).cells:
        cells.append({"cell_type": "code", "metadata": {"tags": list(cell.tags)}, "source": cell.source,
                      "outputs": [], "execution_count": None})
    nb = {"cells": cells, "metadata": {"exercise": 3}, "nbformat": 4, "nbformat_minor": 5}
    write("notebook", 3, suffix=".ipynb", text=json.dumps(nb))
    return files


@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory):
    """Where the mistakes and misbehaving notebooks are written (and graded from)."""
    return tmp_path_factory.mktemp("grading")


@pytest.fixture(scope="module")
def graded(batch_folder):
    """Grade everything at once; returns name -> GradeReport."""
    tmp = batch_folder
    named = {}
    for number, stem in EXERCISES.items():
        named[f"solution-{number}"] = SOLUTIONS / get_exercise(number).FILE
        named[f"stub-{number}"] = STUBS / get_exercise(number).FILE
    for path in MISTAKES:
        m = load_mistake(path)
        text = apply_edits(solution_text(m["EXERCISE"]), m["EDITS"], path.name)
        target = tmp / f"{path.stem}.md"
        target.write_text(text, encoding="utf-8")
        named[f"mistake-{path.stem}"] = target
    for name, path in _special_files(tmp).items():
        named[f"special-{name}"] = path
    names = list(named)
    reports = grade_files([named[n] for n in names], timeout=60, examples=3, jobs=2, call_limit=CALL_LIMIT)
    return dict(zip(names, reports))


def _explain(report):
    return report.render() + ("\noutput:\n" + report.output if report.output else "")


# -- the answer key and the stubs ---------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_solution_passes_every_check(graded, number):
    report = graded[f"solution-{number}"]
    assert report.error is None, report.error
    assert report.passed, _explain(report)
    assert not report.notes, report.notes  # every cell of the answer key runs, demos included
    assert len(report.checks) == len(get_exercise(number).CHECKS)
    assert all(c.n_cases >= 1 for c in report.checks)


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_stub_fails_every_check_as_not_implemented(graded, number):
    report = graded[f"stub-{number}"]
    assert report.error is None, report.error
    assert report.checks, "no checks ran"
    for check in report.checks:
        assert not check.passed, f"{check.id} passed on the unmodified stub"
        assert check.kind == "not_implemented", f"{check.id}: {check.kind}: {check.message}"
        assert "not implemented" in check.message
    assert not report.notes, report.notes  # a stub's cells all run: only definitions


def test_hypothesis_cases_were_drawn(graded):
    # 3 examples per check on top of the seeded cases (the batch asks for 3).
    check = graded["solution-2"].check("vjp_b_in")
    assert check.n_cases == len(get_exercise(2).CHECKS[0].cases.seeded) + 3


# -- the mistake catalogue --------------------------------------------------------------------------


def test_every_exercise_has_at_least_two_mistakes():
    counts = {n: 0 for n in EXERCISES}
    for path in MISTAKES:
        counts[load_mistake(path)["EXERCISE"]] += 1
    assert all(c >= 2 for c in counts.values()), counts


@pytest.mark.parametrize("path", MISTAKES, ids=[p.stem for p in MISTAKES])
def test_mistake_fails_with_the_right_hint(graded, path):
    m = load_mistake(path)
    report = graded[f"mistake-{path.stem}"]
    assert report.error is None, report.error
    assert m["doc"], f"{path.name}: describe the mistake in the module docstring"
    assert m["FAILS"], f"{path.name}: name at least one check that must fail"
    for check_id, phrase in m["FAILS"].items():
        check = report.check(check_id)
        assert not check.passed, f"{path.stem}: {check_id} passed\n" + _explain(report)
        assert check.hint and phrase in check.hint, (
            f"{path.stem}: {check_id} failed without the hint {phrase!r}; got {check.hint!r}\n" + _explain(report))
    for check_id in m["PASSES"]:
        assert report.check(check_id).passed, f"{path.stem}: {check_id} should still pass\n" + _explain(report)


# -- misbehaving notebooks ------------------------------------------------------------------------


def test_infinite_loop_fails_its_checks_and_spares_the_others(graded):
    report = graded["special-loop"]
    for check_id in ("vjp_b_in", "vjp_g_W", "vjp_g_c"):
        check = report.check(check_id)
        assert check.kind == "timeout" and not check.passed, check
    assert "did not return within" in report.check("vjp_b_in").message
    assert "skipped" in report.check("vjp_g_W").message  # no second wait on the same loop
    for check_id in ("jvp_z", "jvp_x", "jvp_full"):
        assert report.check(check_id).passed


def test_syntax_error_in_a_cell_is_a_note(graded):
    report = graded["special-syntax"]
    assert report.passed, _explain(report)
    assert any("syntax error" in note for note in report.notes), report.notes


def test_cell_that_raises_is_a_note_and_the_rest_still_runs(graded):
    report = graded["special-cell_raises"]
    assert report.passed, _explain(report)
    assert any("did not run to the end" in note and "TypeError" in note for note in report.notes), report.notes


def test_missing_function_is_named(graded):
    report = graded["special-missing"]
    check = report.check("jvp_z")
    assert check.kind == "missing" and "`dense_jvp` is not defined" in check.message
    assert report.check("vjp_b_in").passed


def test_forgotten_return_is_diagnosed(graded):
    check = graded["special-no_return"].check("vjp_b_in")
    assert check.kind == "wrong"
    assert "returned None" in check.message and "forget" in check.hint


def test_student_exception_names_the_line(graded):
    report = graded["special-raises"]
    check = report.check("M")
    assert check.kind == "error"
    assert "ValueError: my bug" in check.message and "line" in check.message and "raise ValueError" in check.message


def test_sys_exit_in_student_code_is_a_failed_check(graded):
    report = graded["special-sys_exit"]
    check = report.check("Dx")
    assert check.kind == "error" and "SystemExit" in check.message
    assert report.check("M").passed


def test_os_exit_in_a_cell_is_reported_not_a_crash(graded):
    report = graded["special-os_exit"]
    assert not report.passed
    assert any("stopped unexpectedly" in note for note in report.notes), report.notes
    assert all(c.kind == "not_run" for c in report.checks)


def test_ipynb_is_graded_like_the_md(graded):
    report = graded["special-notebook"]
    assert report.exercise == 3
    assert report.passed, _explain(report)


def test_grading_leaves_nothing_in_the_students_folder(graded, batch_folder):
    # The child runs in the notebook's folder (as Jupyter does), where hypothesis would otherwise
    # keep its caches and a student's plt.savefig would land: only what we wrote may be there.
    written = {f"{p.stem}.md" for p in MISTAKES} | {f"{n.split('-', 1)[1]}{'.ipynb' if n.endswith('notebook') else '.md'}"
                                                      for n in graded if n.startswith("special-")}
    assert {p.name for p in batch_folder.iterdir()} == written
