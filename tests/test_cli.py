"""The command line: every subcommand runs at a small size, ``--help`` works
everywhere, and bad input ends in one clear line and a non-zero exit status."""

import argparse
import shutil

import numpy as np
import pytest

from hessinv_ref import golden
from hessinv_ref.cli import build_parser, main

GOLDEN = golden.CURATED_DIR  # the packaged curated set


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


def test_the_expected_subcommands_exist():
    assert {"demo", "export", "verify"} <= set(_subcommands())


@pytest.mark.parametrize("command", [None, *_subcommands()])
def test_help_on_every_subcommand(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hessinv-ref") and (command is None or command in out.splitlines()[0])


def test_demo_runs_small(capsys):
    # the default timing sweep (depths 16..128) at width 1 is short
    assert main(["demo", "--depth", "3", "--width", "1", "--batch", "1", "--classes", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "depth L=3" in out and "R-operator" in out and "riccati" in out


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--depth", "4", "--layers", "residual", "--activation", "gelu", "--head", "mse", "--bias",
         "--classes", "2", "--damping", "0.5", "--damping", "1e-3", "--seed", "7"],
        ["--depth", "3", "--layers", "mixed", "--no-bias", "--scale", "0.5", "--dense-limit", "0"],
    ],
    ids=["defaults", "residual-mse", "no-H"],
)
def test_export_then_verify(tmp_path, capsys, flags):
    out_path = tmp_path / "sub" / "case"
    assert main(["export", *flags, "-o", str(out_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    net, theta, X, y, ans, meta = golden.load(out_path)
    if "--damping" in flags:
        assert meta["damping"] == [0.5, 1e-3]
        assert meta["architecture"]["layers"][0]["kind"] == "residual"
        assert meta["architecture"]["layers"][-1]["kind"] == "mse"
    if "--dense-limit" in flags:
        assert "H" not in ans
    assert main(["verify", str(out_path) + ".json"]) == 0
    out = capsys.readouterr().out
    assert "quantity" in out and "PASS:" in out and "FAIL" not in out


def test_export_is_reproducible_from_the_seed(tmp_path):
    main(["export", "--seed", "3", "-o", str(tmp_path / "a")])
    main(["export", "--seed", "3", "-o", str(tmp_path / "b")])
    a, b = golden.load(tmp_path / "a"), golden.load(tmp_path / "b")
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[4]["inverse_v"], b[4]["inverse_v"])


def test_verify_of_a_curated_file_passes(capsys):
    assert main(["verify", str(GOLDEN / "paper_tanh_softmax")]) == 0
    out = capsys.readouterr().out
    for q in ("loss", "g", "Hv", "H", "inverse_v[eps=0.1]", "logdet[eps=0.001]", "inertia[eps=0.001]"):
        assert q in out


def test_verify_of_a_perturbed_file_fails_with_status_1_and_names_it(tmp_path, capsys):
    shutil.copy(GOLDEN / "mixed_gelu_mse.json", tmp_path / "m.json")
    with np.load(GOLDEN / "mixed_gelu_mse.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["g"] = arrays["g"] * (1 + 1e-6)
    np.savez(tmp_path / "m.npz", **arrays)
    assert main(["verify", str(tmp_path / "m.npz")]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("g "))
    assert "FAIL" in line
    assert out.splitlines()[-1].startswith("FAIL:") and out.splitlines()[-1].endswith("failed: g")
    # a loose fixed tolerance accepts it
    assert main(["verify", str(tmp_path / "m"), "--rtol", "1e-4"]) == 0


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: p.with_suffix(".npz").write_bytes(p.with_suffix(".npz").read_bytes()[:100]), "not an .npz archive"),
        (lambda p: p.with_suffix(".json").write_text("{oops"), "not valid JSON"),
        (lambda p: p.with_suffix(".json").write_text(
            p.with_suffix(".json").read_text().replace('"softmax"', '"hinge"')), "kind: expected one of"),
        (lambda p: p.with_suffix(".json").unlink(), "no such file"),
    ],
    ids=["truncated-npz", "bad-json", "unknown-kind", "missing-json"],
)
def test_malformed_files_exit_2_with_one_line(tmp_path, capsys, damage, match):
    path = tmp_path / "c"
    shutil.copy(GOLDEN / "tiny_logistic.json", path.with_suffix(".json"))
    shutil.copy(GOLDEN / "tiny_logistic.npz", path.with_suffix(".npz"))
    damage(path)
    assert main(["verify", str(path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("hessinv-ref verify: error: ") and match in err
    assert "\n" not in err and "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--depth", "0", "-o", "x"],
        ["export", "--damping", "-1", "-o", "x"],
        ["export", "--head", "hinge", "-o", "x"],
        ["export"],  # -o is required
        ["verify"],
        ["verify", "x", "--rtol", "0"],
    ],
)
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "bench", "export", "gpu-check"])
@pytest.mark.parametrize("bad", ["-1", "1.5", "abc"])
def test_bad_seeds_are_usage_errors_naming_seed(command, bad, capsys):
    """--seed takes what Network.init(seed=...) takes on a command line: an
    integer >= 0; anything else is an argparse error naming --seed."""
    argv = [command, f"--seed={bad}"] + (["-o", "x"] if command == "export" else [])
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --seed: expected a non-negative integer" in err and bad in err


def test_export_of_a_too_large_problem_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", "--depth", "1000", "--width", "3", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hessinv-ref export: error: --depth/--width: P = 9000 parameters") and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()


def test_demo_sweep_flag(capsys):
    assert main(["demo", "--depth", "3", "--width", "1", "--batch", "1", "--sweep", "3,4"]) == 0
    out = capsys.readouterr().out
    assert "3. Depth sweep" in out
    assert main(["demo", "--depth", "3", "--width", "1", "--batch", "1", "--sweep", "none"]) == 0
    assert "Depth sweep" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["demo", "--sweep", "0,4"])


@pytest.mark.parametrize("convert, good, bad", [
    ("positive_int", [("1", 1), ("12", 12)], ["0", "-3", "x", "1.5"]),
    ("nonnegative_int", [("0", 0), ("7", 7)], ["-1", "x"]),
    ("positive_float", [("0.5", 0.5), ("3", 3.0)], ["0", "-1", "nan", "inf", "x"]),
    ("nonnegative_float", [("0", 0.0), ("1e-3", 1e-3)], ["-1e-9", "nan", "inf", "x"]),
    ("seed", [("0", 0), ("12345", 12345)], ["-1", "1.5", "x", ""]),
])
def test_shared_argument_types(convert, good, bad):
    from hessinv_ref import _argtypes

    fn = getattr(_argtypes, convert)
    for text, value in good:
        assert fn(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            fn(text)


def test_numpy_subcommands_run_on_numpy_whatever_backend_is_active(capsys):
    """demo, bench, export, verify and grade build NumPy inputs, so the CLI
    runs them on NumPy even when another backend is active (for example
    from HESSINV_REF_BACKEND), and restores that backend afterwards."""
    pytest.importorskip("array_api_strict")
    from hessinv_ref.backend import get_backend, use_backend

    with use_backend("array_api_strict"):
        assert main(["demo", "--depth", "3", "--width", "1", "--batch", "1", "--classes", "2"]) == 0
        assert get_backend().name == "array_api_strict"
    assert "riccati" in capsys.readouterr().out
