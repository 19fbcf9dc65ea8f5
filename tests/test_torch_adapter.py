"""The PyTorch adapter of ``docs/oracle.md``, run against the oracle.

Optional: skipped when torch is not installed (it is not a dependency).  The
adapter's code is read from the documentation page itself, so the page can
never show an adapter that does not work.
"""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessinv_ref import golden  # noqa: E402
from hessinv_ref.testing.asserts import (  # noqa: E402
    assert_gradient_close,
    assert_hvp_close,
    assert_inverse_hvp_close,
)

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "oracle.md"
GOLDEN = golden.CURATED_DIR  # the packaged curated set


def named_code_block(path, name):
    """The body of the ``{code-block}`` with ``:name: <name>`` in a MyST page."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("```{code-block}"):
            j, options = i + 1, []
            while j < len(lines) and lines[j].startswith(":"):
                options.append(lines[j])
                j += 1
            if f":name: {name}" in options:
                end = lines.index("```", j)
                return "\n".join(lines[j:end])
    raise LookupError(f"{path}: no code-block named {name!r}")


@pytest.fixture(scope="module")
def adapter():
    # These problems are tiny: with torch's default thread pool, scheduling
    # overhead makes the tests ten times slower than with one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace = {"__name__": "torch_adapter"}
    exec(compile(named_code_block(PAGE, "torch-adapter"), str(PAGE), "exec"), namespace)
    yield namespace
    torch.set_num_threads(threads)


def test_torch_gradient_passes(adapter):
    assert assert_gradient_close(adapter["torch_gradient"]).passed


def test_torch_hvp_passes(adapter):
    assert assert_hvp_close(adapter["torch_hvp"]).passed


def test_torch_inverse_hvp_passes(adapter):
    report = assert_inverse_hvp_close(adapter["torch_inverse_hvp"])
    assert report.passed and len(report.comparisons) == 7


def test_an_approximate_gelu_is_caught_on_the_gelu_problem_only(adapter, monkeypatch):
    monkeypatch.setitem(adapter["ACTIVATION"], "gelu",
                        lambda u: torch.nn.functional.gelu(u, approximate="tanh"))
    with pytest.raises(AssertionError) as info:
        assert_hvp_close(adapter["torch_hvp"])
    msg = str(info.value)
    assert msg.startswith("assert_hvp_close: 1 of 6 comparisons failed")
    assert "problem 'mse' [random_problem(depth=4, width=3, batch=3, layers='mixed', activation='gelu'" in msg


def test_a_summed_loss_is_caught(adapter, monkeypatch):
    chain = adapter["TorchChain"]
    original = chain.forward

    def summed(self, X, y):
        return original(self, X, y) * X.shape[0]

    monkeypatch.setattr(chain, "forward", summed)
    report = assert_gradient_close(adapter["torch_gradient"], raise_on_failure=False)
    assert len(report.failures) == len(report.comparisons)


@pytest.mark.parametrize("name", ["paper_tanh_softmax", "mixed_gelu_mse", "near_singular_softmax_bias"])
def test_torch_answers_written_as_a_golden_file_verify(adapter, tmp_path, name):
    net, params, X, y, given, _ = golden.load(GOLDEN / name)
    v, damping = given["v"], given["damping"]
    mine = {
        "v": v,
        "damping": damping,
        "g": adapter["torch_gradient"](net, params, X, y),
        "Hv": adapter["torch_hvp"](net, params, X, y, v),
        "inverse_v": np.stack([adapter["torch_inverse_hvp"](net, params, X, y, v, d) for d in damping]),
    }
    golden.save(tmp_path / "mine", net, params, X, y, mine, library={"name": "my-torch", "version": "1.0"})
    report = golden.verify(tmp_path / "mine")
    assert report.passed, str(report)
    assert "answers by my-torch 1.0" in report.summary()


def test_torch_hessian_matches_the_stored_dense_hessian(adapter):
    """The dense H from torch against the golden file's H (same tolerance as verify)."""
    net, params, X, y, given, _ = golden.load(GOLDEN / "residual_tanh_softmax")
    model = adapter["torch_model"](net, params)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss(theta):
        chunks = torch.split(theta, [s.numel() for s in shapes])
        return torch.func.functional_call(model, {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes)},
                                          (torch.tensor(X), torch.tensor(y)))

    H = torch.autograd.functional.hessian(loss, torch.tensor(params), vectorize=True).numpy()
    P = len(params)
    err = np.max(np.abs(H - given["H"])) / np.max(np.abs(given["H"]))
    assert err <= golden.C_TOL_H * P * np.finfo(float).eps
