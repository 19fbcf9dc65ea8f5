"""The comparison, its diagnoses, the guarded student call, cases and reports (no subprocess)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.sparse

from hessinv_ref.grading.harness import (
    Cases,
    NO_MATCH,
    CheckFailure,
    Guard,
    Student,
    WALL_FACTOR,
    WALL_MIN,
    Variant,
    as_array,
    block_locator,
    compare,
    compare_pieces,
)
from hessinv_ref.grading.report import CheckResult, GradeReport

# -- compare and its diagnoses ---------------------------------------------------------------


def fails(*args, **kwargs):
    with pytest.raises(CheckFailure) as info:
        compare(*args, **kwargs)
    return info.value


def test_compare_passes_within_tolerance_and_reports_the_worst_entry():
    compare("x", [1.0, 2.0 + 1e-12], [1.0, 2.0])
    f = fails("x", [1.0, 2.5, 3.0], [1.0, 2.0, 3.0])
    assert f.message == "x is wrong" and f.kind == "wrong"
    assert "entry 1: expected 2, got 2.5" in f.worst
    assert "2.5" in f.actual and f.hint == NO_MATCH  # every wrong answer gets a hint, if only this one
    assert fails("x", [1.0, 2.5], [1.0, 2.0], hint="mine").hint == "mine"


def test_the_first_matching_variant_gives_the_hint_and_lazy_variants_wait():
    expected = np.array([1.0, 2.0])

    def never():
        raise AssertionError("a variant must not be computed when the answer is right")

    compare("x", expected, expected, variants=[Variant("no", never)])
    f = fails("x", [3.0, 4.0], expected, variants=[Variant("wrong one", [0.0, 0.0]), Variant("this one", [3.0, 4.0]),
                                                   Variant("later", [3.0, 4.0])])
    assert f.hint == "this one"


@pytest.mark.parametrize("actual, phrase", [
    (np.zeros((2, 2)), "all zeros"),
    (-np.array([[1.0, 2.0], [3.0, 4.0]]), "negative"),
    (np.array([[1.0, 3.0], [2.0, 4.0]]), "transpose"),
    (0.5 * np.array([[1.0, 2.0], [3.0, 4.0]]), "0.5 times"),
    (np.array([[1.0, np.nan], [3.0, 4.0]]), "NaN or inf"),
])
def test_generic_diagnoses(actual, phrase):
    assert phrase in fails("H", actual, np.array([[1.0, 2.0], [3.0, 4.0]])).hint


def test_shape_mismatch_diagnoses():
    expected = np.arange(6.0).reshape(2, 3)
    f = fails("g_W", expected.T, expected)
    assert "shape (3, 2), expected (2, 3)" in f.message and "transpose" in f.hint
    assert "reshape" in fails("t", expected.ravel(), expected).hint
    assert "must have shape (2, 3)" in fails("t", np.ones(4), expected).hint


def test_a_variant_that_cannot_be_computed_is_not_the_mistake():
    # A variant may fail where the reference does not (no damping leaves a pivot singular): the
    # answer is then simply not that mistake, and the diagnosis goes on.
    def singular():
        return np.linalg.solve(np.zeros((2, 2)), np.ones(2))

    f = fails("x", [3.0, 4.0], [1.0, 2.0], variants=[Variant("never", singular), Variant("this one", [3.0, 4.0])])
    assert f.hint == "this one"
    assert fails("x", [5.0, 4.0], [1.0, 2.0], variants=[Variant("never", singular)]).hint == NO_MATCH


def test_worst_entry_in_the_students_coordinates():
    # A vector made of layers: the entry is named by its layer (numbered from 1) and its index there.
    f = fails("g", [0.0, 1.0, 2.0, 9.0, 4.0], np.arange(5.0), locate=block_locator([2, 3], "g_l of layer"))
    assert f.worst.startswith("entry 3 (g_l of layer 2, index 1): expected 3, got 9")
    # A matrix made of blocks: block (row, column) and the index inside it.
    M = np.arange(12.0).reshape(3, 4)
    bad = M.copy()
    bad[2, 1] = -1.0
    f = fails("M", bad, M, locate=block_locator([1, 2], "block", [3, 1]))
    assert f.worst.startswith("entry [2, 1] (block (2, 1), index [1, 1]): expected 9, got -1")
    # NaN is the worst entry, wherever it is.
    assert fails("x", [1.0, np.nan, 30.0], [1.0, 2.0, 3.0]).worst.startswith("entry 1:")


def test_compare_pieces_reports_the_wrong_piece_in_its_own_coordinates():
    ref = [np.eye(2), 2 * np.eye(3), np.array([[5.0]])]
    compare_pieces(["Q1", "Q2", "Q3"], [r.copy() for r in ref], ref)
    got = [np.eye(2), 2 * np.eye(3), np.array([[5.0]])]
    got[1][2, 0] = 7.0
    with pytest.raises(CheckFailure) as info:
        compare_pieces(["Q1", "Q2", "Q3"], got, ref)
    f = info.value
    assert f.message == "Q2 is wrong (Q1 is right)"
    assert f.worst.startswith("Q2, entry [2, 0]: expected 0, got 7")  # not entry 10 of a stack
    assert "7." in f.actual and f.actual.count("\n") == 2  # the 3 × 3 matrix, not the stack
    # A sweep from the last piece down shows the last wrong piece, and the ones above it as right.
    got[0][0, 1] = 1.0
    with pytest.raises(CheckFailure) as info:
        compare_pieces(["Q1", "Q2", "Q3"], got, ref, last_first=True)
    assert info.value.message == "Q2 is wrong (Q3 is right)"
    # Variants are lists of pieces; a transposed set of pieces is recognised.
    with pytest.raises(CheckFailure) as info:
        compare_pieces(["A", "B"], [-ref[0], -ref[1]], ref[:2], variants=[Variant("negated", [-ref[0], -ref[1]])])
    assert info.value.hint == "negated"
    asym = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 1.0], [0.0, 0.0]])]
    with pytest.raises(CheckFailure) as info:
        compare_pieces(["A", "B"], [a.T for a in asym], asym)
    assert "transposes" in info.value.hint
    with pytest.raises(CheckFailure, match=r"B has shape \(1, 1\), expected \(2, 2\)"):
        compare_pieces(["A", "B"], [asym[0], np.ones((1, 1))], asym)


def test_as_array_explains_none_and_accepts_sparse():
    with pytest.raises(CheckFailure, match="is None") as info:
        as_array("M", None)
    assert "return" in info.value.hint
    assert np.array_equal(as_array("M", scipy.sparse.eye(2, format="csr")), np.eye(2))
    with pytest.raises(CheckFailure, match="not an array of numbers"):
        as_array("M", {"a": 1})


# -- the guarded call ---------------------------------------------------------------------------


@pytest.fixture
def student_file(tmp_path):
    """A real file, so that tracebacks can quote the student's line."""
    return tmp_path / "student_ex.md"


def make_student(path, source, guard=None, call_limit=5.0, **kwargs):
    path.write_text(source, encoding="utf-8")
    ns = {}
    exec(compile(source, str(path), "exec"), ns)
    return Student(str(path), ns, guard or Guard(), call_limit=call_limit, **kwargs)


def test_not_implemented_names_the_function_and_line(student_file):
    st = make_student(student_file, "def helper():\n    raise NotImplementedError\n\ndef f():\n    return helper()\n")
    with pytest.raises(CheckFailure) as info:
        st.call("f")
    f = info.value
    assert f.kind == "not_implemented"
    assert "`helper` (called from `f`)" in f.message and "line 2 of student_ex.md" in f.message


def test_missing_name_and_student_error(student_file):
    st = make_student(student_file, "def f(x):\n    return x[10]\n", cell_errors=["cell 2 raised"])
    with pytest.raises(CheckFailure, match="`g` is not defined.*cell 2 raised") as info:
        st.call("g")
    assert info.value.kind == "missing"
    with pytest.raises(CheckFailure, match=r"raised IndexError.*line 2.*return x\[10\]"):
        st.call("f", [1])


needs_timers = pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="needs signal.setitimer")


@needs_timers
def test_a_loop_times_out_once_then_is_skipped(student_file):
    st = make_student(student_file, "def f():\n    while True:\n        pass\n", call_limit=0.2)
    with pytest.raises(CheckFailure, match="did not return within 0.2 s of CPU time") as info:
        st.call("f")
    assert info.value.kind == "timeout"
    with pytest.raises(CheckFailure, match="skipped"):
        st.call("f")


@needs_timers
def test_waiting_does_not_count_against_the_limit_but_the_clock_backstop_stops_it(student_file):
    # Time spent not running (as on a busy machine, where the process waits for a core) is not CPU
    # time: a call that takes longer than its limit by the clock but computes little still returns.
    st = make_student(student_file, "import time\ndef f():\n    time.sleep(0.25)\n    return 1.0\n"
                      "def g():\n    while True:\n        time.sleep(0.01)\n", call_limit=0.1)
    assert st.call("f") == 1.0
    # A call that only waits is stopped by the wall clock (by default at wall_backstop(limit), ten times
    # the limit and at least WALL_MIN seconds; a short one here, to keep the test short).
    assert Student(st.path, st.namespace, Guard(), call_limit=5).wall_limit == max(WALL_FACTOR * 5, WALL_MIN)
    with pytest.raises(CheckFailure, match="within 0.5 s by the clock") as info:
        Student(st.path, st.namespace, Guard(), call_limit=0.05, wall_limit=0.5).call("g")
    assert info.value.kind == "timeout" and "waits" in info.value.hint


def test_guard_catches_an_aliased_reference_and_removes_its_hook(student_file):
    import hessinv_ref.activations as acts

    guard = Guard()
    guard.forbid(acts.Softplus.df, "Softplus.df")
    st = make_student(student_file, "from hessinv_ref.activations import ACTIVATIONS\nd = ACTIVATIONS['softplus'].df\n"
                      "def f(u):\n    return d(u)\ndef g(u):\n    return ACTIVATIONS['sigmoid'].f(u)\n", guard)
    before = sys.getprofile()
    with pytest.raises(CheckFailure, match="calls Softplus.df") as info:
        st.call("f", np.zeros(2))
    assert info.value.kind == "forbidden" and "reference" in info.value.hint
    assert np.allclose(st.call("g", np.zeros(2)), 0.5)  # the sigmoid is not the softplus
    assert sys.getprofile() is before


def test_guard_catches_a_whole_system_solve_but_not_a_block_solve(student_file):
    from hessinv_ref.grading.exercises import solver_functions

    guard = Guard()
    for obj, label in solver_functions():
        guard.watch_solver(obj, label)
    st = make_student(student_file, "import numpy as np\nfrom scipy.linalg import solve\n"
                      "def big(n):\n    return solve(np.eye(n), np.ones(n))\n", guard)
    assert np.allclose(st.call("big", 3, max_system=3), 1.0)
    with pytest.raises(CheckFailure, match=r"scipy.linalg.solve on a 5×5 matrix") as info:
        st.call("big", 5, max_system=3)
    assert "block by block" in info.value.hint
    assert np.allclose(st.call("big", 5), 1.0)  # no limit outside the block-by-block check


# -- cases ---------------------------------------------------------------------------------------


def test_cases_draw_within_the_space_reproducibly():
    cases = Cases(seeded=[], space={"n": range(1, 4), "act": ["tanh", "gelu"]}, build=dict,
                  fix=lambda p: {**p, "m": p["n"] + 1})
    draws = [cases.draw(np.random.default_rng(0)) for _ in range(2)]
    assert draws[0] == draws[1]
    for p in [cases.draw(np.random.default_rng(s)) for s in range(30)]:
        assert 1 <= p["n"] <= 3 and p["act"] in ("tanh", "gelu") and p["m"] == p["n"] + 1
    assert cases.text({"n": 2}) == "n=2"


def test_cases_strategy_stays_in_the_space():
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings

    cases = Cases(seeded=[], space={"n": range(1, 4), "act": ["tanh"]}, build=dict)

    @settings(max_examples=20, database=None, derandomize=True)
    @given(cases.strategy())
    def inside(p):
        assert 1 <= p["n"] <= 3 and p["act"] == "tanh"

    inside()


# -- reports ---------------------------------------------------------------------------------------


def test_report_render_and_json():
    report = GradeReport("ex.md", 3, "Title", checks=[
        CheckResult("a", "first check", True, n_cases=4),
        CheckResult("b", "second check", False, kind="wrong", message="Hxz is wrong", case="seeded case 1: x",
                    expected="[1. 2.]", actual="[2. 1.]", worst="entry 0", hint="transpose"),
        CheckResult("c", "third check", False, kind="not_implemented", message="not implemented: `f`",
                    case="hidden", hint="replace the stub"),
    ], notes=["a note"])
    text = report.render()
    assert "first check   pass" in text and "FAIL (not implemented)" in text
    assert "hint:     transpose" in text and "note: a note" in text and "1 of 3 checks passed." in text
    assert "hidden" not in text  # a stub's case and values would only be noise
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] is False and d["n_passed"] == 1 and d["checks"][1]["hint"] == "transpose"
    assert not report.passed and report.summary() == "ex.md: 1/3 (some checks failed)"
    with pytest.raises(KeyError, match="no check 'z'"):
        report.check("z")
    assert not GradeReport("x.md", None, error="gone").passed
