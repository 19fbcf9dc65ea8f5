"""The benchmark's code paths at tiny sizes: smoke and correctness only.

No assertion here is about speed (timings on a shared CI machine mean
nothing); they check that every column is produced, that the outputs parse
and carry the documented fields, and the pieces of arithmetic the report
relies on (slopes, flop counts).
"""

import csv
import json
import math

import numpy as np
import pytest

from hessinv_ref import Curvature, bench
from hessinv_ref.cli import main

TINY = dict(
    depths=(2, 4, 16),
    widths=(2, 3),
    width_depth=2,
    width_batch=2,
    crossover_depths=(1, 2),
    crossover_batch=3,
    repeats=1,
    dgemm_n=16,
    cg_maxiter=5,
    power_iters=3,
    progress=False,
)

TINY_ARGS = [
    "bench", "--depths", "2,4,16", "--widths", "2,3", "--width-depth", "2", "--width-batch", "2",
    "--crossover-depths", "1,2", "--crossover-batch", "3", "--repeats", "1", "--dgemm-n", "16",
    "--cg-maxiter", "5", "--power-iters", "3", "--quiet",
]

DEPTH_ROW_FIELDS = {
    "depth", "P", "A", "grad_norm", "hess_norm", "setup_s", "riccati_s", "riccati_factor_s",
    "riccati_solve_s", "riccati_flops", "riccati_lu_pivots", "ldu_s", "banded_s", "hvp_s", "dense_s", "dense_skipped", "cg_s",
    "cg_iterations", "cg_converged", "cg_relres", "riccati_relres", "ldu_relres",
    "banded_relres", "mem_riccati_bytes", "mem_banded_bytes", "dense_mem_bytes",
    "per_layer_us", "speedup_dense",
}
WIDTH_ROW_FIELDS = {"width", "P", "setup_s", "riccati_s", "riccati_flops", "riccati_gflops",
                    "fraction_of_dgemm", "riccati_lu_pivots", "riccati_pd_s", "fraction_of_dgemm_pd", "riccati_pd_lu_pivots", "dense_s", "dense_skipped"}
ENV_FIELDS = {"machine", "processor", "cpu_count", "python", "numpy", "scipy", "hessinv_ref",
              "blas", "blas_threads", "timer", "env"}


@pytest.fixture(scope="module")
def result():
    return bench.run_bench(**TINY)


def test_every_documented_field_is_there(result):
    assert result["schema"] == bench.SCHEMA
    assert ENV_FIELDS <= set(result["environment"])
    assert result["dgemm_gflops"] > 0
    ds = result["depth_sweep"]
    assert [r["depth"] for r in ds["rows"]] == [2, 4, 16]
    for row in ds["rows"]:
        assert DEPTH_ROW_FIELDS <= set(row), DEPTH_ROW_FIELDS - set(row)
    assert set(bench.SLOPE_COLUMNS) <= set(ds["slopes"])
    ws = result["width_sweep"]
    assert {"depth", "batch", "dgemm_gflops", "rows"} <= set(ws)
    for row in ws["rows"]:
        assert WIDTH_ROW_FIELDS <= set(row)
    co = result["crossover"]
    assert set(co["first_win"]) == set(bench.STRUCTURED)
    assert {t["name"] for t in result["targets"]}
    assert all({"name", "value", "target", "met"} == set(t) for t in result["targets"])


def test_the_routes_solved_the_system(result):
    """Each structured route's residual is small (the default problem is
    indefinite, so unpivoted LDU may lose digits: a loose bound for it)."""
    for row in result["depth_sweep"]["rows"]:
        assert row["riccati_relres"] < 1e-8
        assert row["banded_relres"] < 1e-8
        assert row["ldu_relres"] < 1e-4
        assert row["P"] == 16 * (row["depth"] - 1) + 12  # width 4, no bias, 3 classes
        assert row["grad_norm"] > 0 and row["hess_norm"] > 0
        assert row["mem_riccati_bytes"] > 0
        if row["dense_s"] is not None:
            assert row["speedup_dense"] > 0


def test_json_round_trip(result, tmp_path):
    path = tmp_path / "bench.json"
    bench.write_json(result, path)
    loaded = json.loads(path.read_text())
    assert loaded["schema"] == bench.SCHEMA
    assert DEPTH_ROW_FIELDS <= set(loaded["depth_sweep"]["rows"][0])
    assert loaded["config"]["depths"] == [2, 4, 16]


def test_csv_has_a_header_and_every_row(result, tmp_path):
    path = tmp_path / "bench.csv"
    bench.write_csv(result, path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "sweep" in rows[0] and "depth" in rows[0] and "riccati_s" in rows[0]
    assert [r["sweep"] for r in rows].count("depth") == 3
    assert {"width", "crossover"} <= {r["sweep"] for r in rows}


def test_report_is_readable(result):
    text = bench.format_report(result)
    for needle in ("Depth sweep", "Width sweep", "Crossover", "Targets", "dgemm", "BLAS"):
        assert needle in text


def test_plot(result, tmp_path):
    # matplotlib is in the test extra: without it this test fails, as it should
    path = tmp_path / "depth.png"
    bench.plot_depth(result, path)
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_so(result, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    with pytest.raises(RuntimeError, match="matplotlib"):
        bench.plot_depth(result, tmp_path / "x.png")


def test_dense_caps_skip_the_dense_route():
    out = bench.run_bench(**{**TINY, "sweeps": ("depth",), "dense_max_gib": 1e-12, "memory": False})
    for row in out["depth_sweep"]["rows"]:
        assert row["dense_s"] is None and "GiB" in row["dense_skipped"]
    caps = bench._Caps(max_s=1.0, exponent=3.0)
    caps.record(10, 0.1)
    assert caps.skip(20) is None  # 0.8 s predicted
    assert "cap" in caps.skip(30)  # 2.7 s predicted
    assert caps.skip(11) is not None  # once skipped, always skipped


def test_loglog_slope_recovers_a_power_law():
    L = np.array([16, 32, 64, 128])
    assert math.isclose(bench.loglog_slope(L, 3e-4 * L ** 1.0), 1.0, rel_tol=1e-12)
    assert math.isclose(bench.loglog_slope(L, 2.0 * L ** 3.0), 3.0, rel_tol=1e-12)
    assert math.isnan(bench.loglog_slope([16], [1.0]))
    assert math.isclose(bench.loglog_slope([16, 32, 64], [1.0, None, 4.0]), 1.0)


def test_riccati_flops_by_hand():
    """One hidden layer of width 2 (batch 1) and a 2-class head, no bias:
    layer 1 has p = 4, a = 2, c = 2; the head p = 4, a = 1, c = 2."""
    from hessinv_ref.testing.problems import tall_skinny_network

    net = tall_skinny_network(2, 2, classes=2)
    curv = Curvature(net, net.init(seed=0), np.ones((1, 2)), np.array([1]))

    def layer(p, a, c):
        factor = (2 * p * a * a + 2 * p * p * a + 2 * p * a * c + 2 * a * a * c + 2 * a * c * c
                  + p ** 3 / 3 + 2 * p * p * c + 2 * p * c * c)
        solve = 2 * (p * a + a * c) + 2 * p * p + 2 * p * c + 2 * (p * c + a * c + a * p)
        return factor + solve

    assert bench.riccati_flops(curv.blocks) == pytest.approx(layer(4, 2, 2) + layer(4, 1, 2))


def test_cli_subcommand_runs(tmp_path, capsys):
    out_json = tmp_path / "b.json"
    out_csv = tmp_path / "b.csv"
    args = TINY_ARGS + ["--sweeps", "depth", "--no-memory", "--json", str(out_json), "--csv", str(out_csv)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Depth sweep" in text and "Targets" in text
    assert json.loads(out_json.read_text())["schema"] == bench.SCHEMA
    assert out_csv.read_text().splitlines()[0].startswith("sweep,")


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    assert "--depths" in capsys.readouterr().out


def test_cli_rejects_bad_options(capsys):
    assert main(["bench", "--sweeps", "nonsense", "--quiet"]) == 2
    assert "--sweeps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--depths", "4,x"])


@pytest.mark.parametrize("option, value, expected", [
    ("--repeats", "0", "a positive integer"),
    ("--width", "-2", "a positive integer"),
    ("--blas-threads", "-1", "a non-negative integer"),
    ("--cg-max-s", "-1", "a non-negative number"),
    ("--damping", "nan", "a non-negative number"),
])
def test_cli_names_a_bad_option_value(capsys, option, value, expected):
    # the command line's shared argparse types, as demo, export and verify use
    with pytest.raises(SystemExit):
        main(["bench", option, value])
    err = capsys.readouterr().err
    assert f"argument {option}: expected {expected}, got {value}" in err


def test_a_route_that_meets_a_singular_pivot_is_reported_not_fatal(monkeypatch, tmp_path):
    """Unpivoted LDU can fail on an indefinite chain (SingularPivotError):
    the bench records the failure and goes on."""
    from hessinv_ref import SingularPivotError

    real = Curvature.factorize

    def failing(self, damping, method="banded", **options):
        if method == "ldu":
            raise SingularPivotError("ldu", 2, 1e-20)
        return real(self, damping, method, **options)

    monkeypatch.setattr(Curvature, "factorize", failing)
    out = bench.run_bench(**{**TINY, "widths": (2,)})
    for sweep in ("depth_sweep", "crossover"):
        for row in out[sweep]["rows"]:
            assert row["ldu_s"] is None and "singular" in row["ldu_error"]
            assert row["riccati_s"] is not None and row["riccati_error"] is None
    assert out["crossover"]["first_win"]["ldu"] is None
    assert "ldu" in bench.format_report(out)
    bench.write_json(out, tmp_path / "b.json")
    bench.write_csv(out, tmp_path / "b.csv")
    if _has_matplotlib():
        bench.plot_depth(out, tmp_path / "b.png")


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_width_sweep_cap_predicts_growth_in_the_parameter_count():
    # a cap below the first (tiny) dense time, times P^3 growth, must skip the
    # wider network before running it, not after
    first = bench.run_bench(**{**TINY, "sweeps": ("width",), "widths": (2,), "memory": False})
    t0 = first["width_sweep"]["rows"][0]["dense_s"]
    out = bench.run_bench(**{**TINY, "sweeps": ("width",), "widths": (2, 8), "memory": False,
                             "dense_max_s": 4 * t0})  # width 8 has ~16x the parameters
    small, wide = out["width_sweep"]["rows"]
    assert small["dense_s"] is not None
    assert wide["dense_s"] is None and "predicted" in wide["dense_skipped"]


def test_robustness_sweep_counts_every_cell_and_large_damping_is_clean():
    """The opt-in robustness sweep: every (route, dtype) sees each draw at two
    dampings, the documented fields are there, and at a large damping
    (``κ_2 <= 1.25``) no route refuses or warns and every error is a few
    eps (the bound is 16 eps max(κ, pivot_condition), see tests/solvers)."""
    res = bench.run_bench(sweeps=("robustness",), robustness_draws=3, dgemm_n=16, repeats=1,
                          progress=False)
    rb = res["robustness"]
    assert rb["draws"] == 3
    fields = {"route", "dtype", "regime", "cells", "refused_route", "refused_matrix", "refused_open",
              "warned", "near_singular", "forward_median", "forward_max", "forward_max_unwarned",
              "backward_max"}
    per_route = {}
    for r in rb["rows"]:
        assert set(r) == fields
        assert r["refused_route"] + r["refused_matrix"] + r["refused_open"] + r["warned"] <= r["cells"]
        per_route[r["route"], r["dtype"]] = per_route.get((r["route"], r["dtype"]), 0) + r["cells"]
        if r["regime"] == "large damping":
            assert r["refused_route"] == r["refused_matrix"] == r["refused_open"] == r["warned"] == 0
            assert r["forward_max"] <= 16 and r["backward_max"] <= 16
    assert per_route == {(m, d): 6 for m in bench.ROBUSTNESS_ROUTES for d in ("float64", "float32")}
    assert "Robustness: 3 random problems" in bench.format_report(res)
