"""The GPU check (``hessinv_ref.gpu_check``): on a CPU it runs in-process
with the strict Array API namespace and with NumPy at a tiny size, which is
how the CPU CI exercises it; on CuPy only where a CUDA device exists."""

import importlib.util

import pytest

from hessinv_ref import get_backend
from hessinv_ref import gpu_check
from hessinv_ref.cli import main as cli_main

TINY = ["--depth", "3", "--width", "2", "--batch", "2",
        "--timing-depths", "2,3", "--timing-width", "2", "--timing-batch", "2"]


def _rows(out):
    """``{first word: line}`` of the table's rows."""
    return {line.split()[0]: line for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("backend", ["array_api_strict", "numpy"])
def test_runs_on_a_cpu_backend_and_lists_every_route(backend, capsys):
    if backend == "array_api_strict":
        pytest.importorskip("array_api_strict")
    before = get_backend().name
    assert gpu_check.main(["--backend", backend, *TINY]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    for route in ("riccati", "ldu", "dense", "hvp", "polynomial_hvp"):
        assert route in rows and " ok " in rows[route], out
    # banded (NumPy only) and the Krylov baselines (NumPy, CuPy) are checked
    # where the backend has them and listed as skipped, with a note, elsewhere
    for route in ("banded", "cg", "minres"):
        assert (" ok " if backend == "numpy" else " skip ") in rows[route], out
    assert "timing:" in out and "PASS" in out
    assert get_backend().name == before  # the check does not leave its backend active


def test_float32_and_the_subcommand(capsys):
    pytest.importorskip("array_api_strict")
    code = cli_main(["gpu-check", "--backend", "array_api_strict", "--dtype", "float32", "--no-timing",
                     "--depth", "3", "--width", "2", "--batch", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "float32" in out and "timing:" not in out
    assert " ok " in _rows(out)["riccati"], out


def test_a_failed_check_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "SAFETY", 0.0)  # every tolerance 0: rounding alone fails
    assert gpu_check.main(["--backend", "numpy", "--no-timing", "--depth", "3", "--width", "2",
                           "--batch", "2"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_missing_cupy_is_one_line_and_exit_2(capsys):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here; the missing-package path cannot be shown")
    assert gpu_check.main(["--backend", "cupy", "--no-timing"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "CuPy is not installed" in lines[0] and "Traceback" not in captured.err


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--backend", "torch"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--timing-depths", "4,-1"])
    assert info.value.code == 2


def _cuda_device_count():
    cupy = pytest.importorskip("cupy")
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver or no device: CuPy raises CUDARuntimeError
        return 0


@pytest.mark.gpu
def test_runs_on_cupy(capsys):
    if _cuda_device_count() < 1:
        pytest.skip("no CUDA device")
    code = gpu_check.main(["--backend", "cupy", "--timing-depths", "4,8"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = _rows(out)
    for route in ("riccati", "ldu", "dense", "cg", "minres"):
        assert " ok " in rows[route], out
    assert " skip " in rows["banded"]
