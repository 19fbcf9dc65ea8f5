"""The one report type (``hessinv_ref.testing.report``): how a check is
judged, how a report tabulates and fails, and that every checker's rows and
reports are of that type."""

import math

import numpy as np
import pytest

from hessinv_ref import Dense, golden
from hessinv_ref.testing import Check, OracleProblem, Report, assert_gradient_close, check_layer
from hessinv_ref.testing.asserts import Comparison, OracleReport
from hessinv_ref.testing.check import CheckResult, LayerCheckReport
from hessinv_ref.testing.report import STATUSES, judge


def test_a_check_without_a_status_is_judged_by_its_error_against_its_tolerance():
    assert Check("g", error=1e-12, tolerance=1e-12).status == "pass"
    assert Check("g", error=2e-12, tolerance=1e-12).status == "FAIL"
    nan = Check("g", error=math.nan, tolerance=1.0)
    assert nan.status == "FAIL" and nan.failed and not nan.passed
    assert judge(math.inf, 1.0) == "FAIL" and judge(0.0, 0.0) == "pass"


def test_a_check_refuses_an_unknown_status_and_a_verdict_it_cannot_make():
    with pytest.raises(ValueError, match="status: expected one of"):
        Check("g", "ok")
    with pytest.raises(ValueError, match="an error and a tolerance to judge by"):
        Check("g", error=1.0)
    for status in STATUSES:
        c = Check("g", status)
        assert c.passed == (status == "pass") and c.failed == (status == "FAIL")


def test_only_failed_checks_fail_a_report_and_raise_names_them():
    rows = [Check("a", error=1.0, tolerance=2.0), Check("b", "skip", detail="not there"),
            Check("c", "info", error=3.0, tolerance=2.0), Check("d", "refused", detail="pivot")]
    report = Report(checks=list(rows))
    assert report.passed and report.failures == [] and report.n_passed == 1
    assert report.raise_if_failed() is report
    report.checks.append(Check("e", error=3.0, tolerance=2.0, measure="|d|"))
    assert not report.passed and [c.quantity for c in report.failures] == ["e"]
    with pytest.raises(AssertionError, match="1 of 5 checks passed") as info:
        report.raise_if_failed()
    assert "e                       FAIL      3.00e+00   2.00e+00  |d|" in str(info.value)
    assert report["b"].detail == "not there"
    with pytest.raises(KeyError, match="quantity: expected one of"):
        report["z"]


def test_the_table_keeps_its_columns_whatever_the_rows():
    report = Report(checks=[Check("a", error=1e-3, tolerance=2e-3, measure="m", detail="d"),
                            Check("a much longer name", "skip", detail="why")])
    head, rule, first, second = report.table().splitlines()
    assert head.startswith("quantity") and set(rule) == {"-"} and len(rule) == len(head)
    # fixed columns: quantity 24, status 7, error 11, tolerance 11, two spaces, the note
    assert head[:55] == f"{'quantity':<24}{'status':<7}{'error':>11}{'tolerance':>11}  "
    assert first[:24].rstrip() == "a" and first[24:31].rstrip() == "pass"
    assert first[31:42] == "   1.00e-03" and first[42:53] == "   2.00e-03"
    assert first[55:] == "m; d" and second[:31].split() == ["a", "much", "longer", "name", "skip"]
    assert second[31:53].strip() == "" and second[55:].endswith("why")


def test_every_checker_returns_a_report_of_checks():
    layer = check_layer(Dense(2, 2, "tanh"))
    assert isinstance(layer, LayerCheckReport) and isinstance(layer, Report)
    assert layer.rows is layer.checks and all(isinstance(r, CheckResult) and isinstance(r, Check)
                                              for r in layer.rows)
    prob = OracleProblem.random("tiny", depth=1, width=2, batch=2, seed=0)
    oracle = assert_gradient_close(lambda net, params, X, y: np.asarray(
        prob.curvature().gradient()), problems=[prob])
    assert isinstance(oracle, OracleReport) and isinstance(oracle, Report)
    assert oracle.comparisons is oracle.checks and isinstance(oracle.comparisons[0], Comparison)
    verified = golden.verify(golden.curated_path(golden.curated()[0]))
    assert isinstance(verified, golden.VerifyReport) and isinstance(verified, Report)
    assert verified.rows is verified.checks and all(isinstance(r, golden.VerifyRow) for r in verified.rows)
    assert verified.passed and all(r.status in STATUSES for r in verified.rows)
