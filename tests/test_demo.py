"""``hessinv-ref demo`` tells the truth about its own run, at tiny sizes.

Nothing here asserts a time: the conclusion's wording is tested on injected
timings, and the runs check what is printed about warnings, convergence and
the dense guard."""

import io
import math
import re
import warnings

import numpy as np
import pytest

from hessinv_ref import Curvature, IllConditionedPivotWarning, demo
from hessinv_ref.bench import _Caps
from hessinv_ref.cli import main
from hessinv_ref.factorization import EPS, check_pivot
from hessinv_ref.solvers import KrylovConvergenceWarning

TINY = dict(depth=3, width=2, batch=2, classes=2, sweep=(), repeats=1, progress=False)


def _run(**kwargs):
    lines = []
    assert demo.run_demo(**{**TINY, **kwargs}, out=lines.append) == 0
    return lines


def _row(lines, method):
    return next(line for line in lines if line.split()[:1] == [method])


# -- the note column ------------------------------------------------------------------


def _recorded(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return caught


def test_pivot_note_counts_the_warnings_and_names_the_worst_condition():
    def factor():
        for layer, rcond in ((1, 1e-9), (2, 0.5), (3, 1e-11), (4, 1e-10)):
            check_pivot("ldu", layer, rcond, 3)
        warnings.warn("not a pivot", UserWarning)

    caught = _recorded(factor)
    assert demo.pivot_note(caught, n_pivots=4) == "3/4 pivots ill-conditioned, worst cond 1e+11"
    assert demo.pivot_note(caught) == "3 pivots ill-conditioned, worst cond 1e+11"
    # the factorization's pivot_condition bounds the parsed values from above
    assert demo.pivot_note(caught, pivot_condition=2e11).endswith("worst cond 2e+11")
    assert demo.pivot_note(_recorded(lambda: check_pivot("dense", None, 1e-12, 5)),
                           n_pivots=1) == "1/1 pivot ill-conditioned, worst cond 1e+12"
    assert demo.pivot_note([w for w in caught if w.category is UserWarning]) == ""


def _near_singular_damping(**problem):
    """A damping that puts H + eps I within 1e-10 |lambda_min| of singular:
    minus H's most negative eigenvalue, shifted by that much."""
    net, params, X, y = demo._problem(problem["depth"], problem["width"], problem["batch"],
                                      problem["classes"], 2.0, 0)
    lam = np.linalg.eigvalsh(Curvature(net, params, X, y).hessian())
    assert lam[0] < 0, "the problem must be indefinite for this construction"
    eps = -lam[0] * (1 - 1e-10)
    w = np.abs(lam + eps)
    return eps, float(w.max() / w.min())


def test_the_note_column_aggregates_the_pivot_warnings_of_an_ill_conditioned_matrix():
    problem = dict(depth=4, width=3, batch=2, classes=3)
    eps, kappa = _near_singular_damping(**problem)
    assert kappa > 1 / math.sqrt(EPS)  # ill-conditioned, not singular, by construction
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        lines = _run(**problem, damping=eps)
    # aggregated into the table, not spilled as a hundred warning lines
    assert not [w for w in escaped if issubclass(w.category, IllConditionedPivotWarning)]
    note = _row(lines, "dense").split("  ")[-1]
    found = re.search(r"1/1 pivot ill-conditioned, worst cond ([0-9.e+]+)", note)
    assert found, note
    # LAPACK's 1-norm estimate of the condition of H + eps I: within a
    # factor P of the 2-norm condition
    P = int(re.search(r"P=(\d+)", lines[0]).group(1))
    assert kappa / P <= float(found.group(1)) <= kappa * P


def test_other_warnings_are_shown_not_swallowed():
    def factor():
        check_pivot("ldu", 1, 1e-10, 2)
        warnings.warn("something else", UserWarning)

    with pytest.warns(UserWarning, match="something else"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", IllConditionedPivotWarning)  # must not be re-issued
            demo._reissue_others(_recorded(factor))


# -- Krylov rows ---------------------------------------------------------------------------


def test_krylov_rows_that_stop_at_the_cap_are_marked():
    lines = _run(krylov_maxiter=1)
    for method in ("cg", "minres"):
        assert "1* iterations, not converged: rel. residual" in _row(lines, method)
    assert any(line.strip().startswith("* = stopped at the iteration cap (1") for line in lines)


def test_krylov_rows_that_converge_are_not_marked():
    # a large damping makes H + eps I positive definite and well conditioned
    lines = _run(damping=50.0, krylov_maxiter=500)
    for method in ("cg", "minres"):
        row = _row(lines, method)
        assert "*" not in row and "not converged" not in row
        relres = float(re.search(r"rel. residual ([0-9.e+-]+)", row).group(1))
        assert relres <= demo.KRYLOV_RTOL * 10  # the true residual, near the rtol the method met
    assert not any("* = stopped" in line for line in lines)


class _Solver:
    def __init__(self, converged):
        self.converged = converged


def test_convergence_is_read_from_the_solver_when_it_says_so():
    warned = _recorded(lambda: warnings.warn("x", KrylovConvergenceWarning))
    assert demo._krylov_converged(_Solver([True]), warned) is True
    assert demo._krylov_converged(_Solver([True, False]), []) is False
    # a solver without the flags: the warning decides
    assert demo._krylov_converged(object(), warned) is False
    assert demo._krylov_converged(object(), []) is True


# -- the dense guard -------------------------------------------------------------------------


def test_dense_guard_predicts_by_the_cube_of_P_and_by_memory():
    caps = _Caps(5.0, 3.0)
    caps.record(100, 1.0)
    assert demo.dense_guard(150, caps, 4.0) is None  # 3.4 s
    assert demo.dense_guard(200, caps, 4.0) == "predicted 8 s > cap 5 s"
    assert demo.dense_guard(200, caps, 4.0, force=True) is None
    roomy = _Caps(math.inf, 3.0)
    assert demo.dense_guard(1000, roomy, 1e-3).startswith("predicted memory 0.0 GiB > cap 0.001 GiB")


def test_the_dense_oracle_is_skipped_past_its_cap_and_forced_on_request():
    skipped = _run(dense_max_s=1e-9, sweep=(2, 3))
    assert any("(dense oracle skipped)" in line for line in skipped)
    row = _row(skipped, "dense")
    assert "skipped: predicted" in row and "> cap 1e-09 s; --force-dense runs it" in row
    assert "(ref)" in _row(skipped, "banded")  # the reference without the oracle
    assert any(line.strip().startswith("dense from L=2: skipped") for line in skipped)
    assert "kappa" not in skipped[2] and "riccati inertia" in skipped[2]

    forced = _run(dense_max_s=1e-9, sweep=(2, 3), force_dense=True)
    assert not any("skipped" in line for line in forced)
    fields = _row(forced, "dense").split()
    assert float(fields[3]) == 0.0  # the dense route against scipy.linalg.solve: the same LU
    assert "kappa(H+eps I)" in forced[2]


def test_the_memory_cap_skips_too():
    row = _row(_run(dense_max_gib=1e-9), "dense")
    assert "skipped: predicted memory" in row


def test_the_calibration_network_is_the_largest_under_its_size():
    for depth, width in ((64, 4), (3, 2), (1, 5), (40, 30)):
        d0 = demo._calibration_depth(depth, width, 3)
        P = demo.tall_skinny_network(d0, width, 3).n_params
        assert 1 <= d0 <= depth
        assert P <= demo.CALIBRATION_P or d0 == 1
        if d0 < depth:
            assert demo.tall_skinny_network(d0 + 1, width, 3).n_params > demo.CALIBRATION_P


# -- slopes and the conclusion ------------------------------------------------------------


def _rows(riccati, banded, dense, depths=(4, 16, 32, 64, 128)):
    return [{"depth": L, "riccati": riccati(L), "banded": banded(L), "dense": dense(L)} for L in depths]


def test_the_conclusion_follows_linear_and_cubic_timings():
    # depth 4 is off the fit (below FIT_MIN_DEPTH): its wild time changes nothing
    rows = _rows(lambda L: 1e-4 * L if L > 4 else 1.0, lambda L: 2e-4 * L, lambda L: 1e-7 * L ** 3)
    slopes, fitted = demo.sweep_slopes(rows)
    assert fitted == [16, 32, 64, 128]
    assert slopes["riccati"] == pytest.approx(1.0) and slopes["dense"] == pytest.approx(3.0)
    text = "\n".join(demo.conclusion(slopes, fitted, 3))
    assert "riccati: slope 1.00, linear in depth (within 1 ± 0.2)" in text
    assert "banded: slope 1.00, linear in depth" in text
    assert "dense: slope 3.00, close to the cubic growth" in text
    assert "as the theory says" in text and "does not show" not in text
    assert "L = 16, 32, 64, 128" in text and "medians of up to 3 runs" in text


@pytest.mark.parametrize("riccati, dense, ric_text, dense_text", [
    (lambda L: 1e-6 * L ** 2, lambda L: 1e-7 * L ** 3, "slope 2.00, faster than linear", "close to the cubic"),
    (lambda L: 1e-3, lambda L: 1e-7 * L ** 3, "slope 0.00, slower than linear", "close to the cubic"),
    (lambda L: 1e-4 * L, lambda L: 1e-6 * L ** 2, "linear in depth", "slope 2.00, between linear and cubic"),
    (lambda L: 1e-4 * L, lambda L: 1e-4 * L, "linear in depth", "slope 1.00, no faster than linear"),
    (lambda L: 1e-4 * L, lambda L: 1.0 if L == 16 else None, "linear in depth", "no slope"),
])
def test_the_conclusion_says_when_the_numbers_disagree_with_the_theory(riccati, dense, ric_text, dense_text):
    slopes, fitted = demo.sweep_slopes(_rows(riccati, lambda L: 1e-4 * L, dense))
    lines = demo.conclusion(slopes, fitted, 5)
    assert ric_text in next(ln for ln in lines if "riccati:" in ln)
    assert dense_text in next(ln for ln in lines if "dense:" in ln)
    assert "does not show linear against cubic growth" in "\n".join(lines)
    assert not any("as the theory says" in ln for ln in lines)


def test_the_fit_uses_every_depth_when_fewer_than_two_reach_the_threshold():
    slopes, fitted = demo.sweep_slopes(_rows(lambda L: L, lambda L: L, lambda L: L ** 3, depths=(2, 4, 16)))
    assert fitted == [2, 4, 16] and slopes["dense"] == pytest.approx(3.0)


def test_the_printed_conclusion_is_the_measured_one(monkeypatch):
    """The sweep's closing lines are computed from its own rows: fake rows in,
    their slopes out."""
    def fake_row(net, params, X, y, damping, repeats, caps, max_gib, force, prog):
        L = net.depth
        return {"P": net.n_params, "riccati": 1e-4 * L ** 2, "banded": 1e-4 * L,
                "dense": 1e-7 * L ** 3, "dense_skipped": None}, ""

    monkeypatch.setattr(demo, "_sweep_row", fake_row)
    text = "\n".join(_run(sweep=(16, 32, 64)))
    assert "riccati: slope 2.00, faster than linear" in text
    assert "banded: slope 1.00, linear in depth" in text
    assert "dense: slope 3.00" in text and "does not show" in text
    assert "structured time grows linearly with depth" not in text


def test_the_header_states_the_blas_threads():
    assert _run(blas_threads=0)[1] == "times: medians of up to 1 runs; BLAS threads library default"
    pytest.importorskip("threadpoolctl")
    assert _run(blas_threads=1)[1].endswith("BLAS threads pinned to 1")


def _fake_clock(monkeypatch, durations):
    ticks = iter([t for i, d in enumerate(durations) for t in (10.0 * i, 10.0 * i + d)])
    monkeypatch.setattr(demo.time, "perf_counter", lambda: next(ticks))


def test_a_slow_outlier_among_short_runs_is_outvoted(monkeypatch):
    _fake_clock(monkeypatch, [0.6, 0.001, 0.002])
    assert demo._median_recording(lambda: None, 3)[0] == pytest.approx(0.002)


def test_runs_stop_once_they_have_spent_the_budget(monkeypatch):
    _fake_clock(monkeypatch, [0.7, 0.4])  # a third call would exhaust the fake clock
    assert demo._median_recording(lambda: None, 5)[0] == pytest.approx(0.55)
    _fake_clock(monkeypatch, [1.5])
    assert demo._median_recording(lambda: None, 5)[0] == pytest.approx(1.5)


# -- progress and the command line ------------------------------------------------------------


def test_progress_goes_to_stderr_and_stdout_holds_only_the_tables(capsys):
    args = ["demo", "--depth", "3", "--width", "1", "--batch", "1", "--classes", "2", "--repeats", "1",
            "--sweep", "2,3", "--dense-max-s", "1e-9"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "[demo]" not in captured.out
    assert "[demo] depth sweep 1/2: L=2" in captured.err
    assert "[demo] dense oracle at P=" in captured.err and "--force-dense" in captured.err
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_sweep_line_is_rewritten_in_place():
    term, lines = _Terminal(), []
    demo.run_demo(**{**TINY, "progress": True, "sweep": (2, 3)}, out=lines.append, err=term)
    text = term.getvalue()
    assert "\r[demo] depth sweep 1/2" in text and "\r[demo] depth sweep 2/2" in text
    assert text.endswith("\r\x1b[K")  # cleared, so the shell prompt starts clean


def test_the_new_flags_reach_the_demo(capsys):
    assert main(["demo", "--depth", "3", "--width", "1", "--batch", "1", "--classes", "2",
                 "--sweep", "none", "--krylov-maxiter", "1", "--repeats", "2", "--dense-max-gib", "1e-9",
                 "--force-dense", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "medians of up to 2 runs" in out and "1* iterations" in out and "skipped" not in out
    for bad in (["--repeats", "0"], ["--dense-max-s", "0"], ["--krylov-maxiter", "-1"]):
        with pytest.raises(SystemExit):
            main(["demo", *bad])


@pytest.mark.parametrize("option, value, error", [
    ("repeats", 0, ValueError), ("krylov_maxiter", 1.5, TypeError), ("dense_max_s", 0, ValueError),
    ("dense_max_gib", float("nan"), ValueError), ("dense_max_s", "30", TypeError),
    ("blas_threads", -1, ValueError),
])
def test_bad_options_name_themselves(option, value, error):
    with pytest.raises(error, match=f"{option}: expected a (positive|non-negative)"):
        demo.run_demo(**{**TINY, option: value}, out=lambda line: None)
