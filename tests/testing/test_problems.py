"""The oracle kit's problem builder and strategies."""

import doctest

import numpy as np
import pytest
from hypothesis import given

import hessinv_ref.testing.problems
import hessinv_ref.testing.strategies
from hessinv_ref import Dense, Residual, SoftmaxCrossEntropy, SquaredError
from hessinv_ref.testing import random_problem
from hessinv_ref.testing.strategies import architectures, problems


@pytest.mark.parametrize("module", [hessinv_ref.testing.problems, hessinv_ref.testing.strategies])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_reproducible_and_seeds_differ():
    a = random_problem(3, 4, 2, seed=7)
    b = random_problem(3, 4, 2, seed=7)
    c = random_problem(3, 4, 2, seed=8)
    net = a[0]
    np.testing.assert_array_equal(net.flatten(a[1]), net.flatten(b[1]))
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(a[3], b[3])
    assert not np.array_equal(a[2], c[2])


def test_params_are_net_init_of_the_seed():
    net, params, X, y = random_problem(4, 3, 2, scale=1.7, seed=3)
    np.testing.assert_array_equal(net.flatten(params), net.flatten(net.init(3, scale=1.7)))


@pytest.mark.parametrize(
    "layers, kinds",
    [("dense", [Dense, Dense, Dense]), ("residual", [Residual, Residual, Residual]),
     ("mixed", [Dense, Residual, Dense]), (["residual", "dense", "dense"], [Residual, Dense, Dense])],
)
def test_layer_kinds(layers, kinds):
    net, *_ = random_problem(4, 3, 2, layers=layers)
    assert [type(layer) for layer in net.layers[:-1]] == kinds


def test_depth_counts_the_head_and_shapes():
    net, params, X, y = random_problem(1, 3, 5, n_in=2, n_classes=4)
    assert net.depth == 1 and isinstance(net.head, SoftmaxCrossEntropy)
    assert X.shape == (5, 2) and y.shape == (5,) and y.dtype.kind == "i"
    assert np.all((0 <= y) & (y < 4))
    net, params, X, y = random_problem(3, 4, 2, n_in=6, head="mse", n_classes=2, bias=False,
                                       activation=["gelu", "silu"])
    assert isinstance(net.head, SquaredError) and y.shape == (2, 2) and y.dtype == np.float64
    assert [layer.activation.name for layer in net.layers[:-1]] == ["gelu", "silu"]
    assert not any(layer.bias for layer in net.layers) and net.layers[0].n_in == 6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"depth": 0}, ValueError, "depth: expected a positive int, got 0"),
        ({"width": 2.5}, TypeError, r"width: expected a positive int, got 2.5"),
        ({"batch": True}, TypeError, "batch: expected a positive int, got True"),
        ({"layers": "conv"}, ValueError, "layers: expected 'dense', 'residual', 'mixed' .* got 'conv'"),
        ({"layers": ["dense"]}, ValueError, r"layers: expected one kind per hidden layer \(depth - 1 = 2\), got 1"),
        ({"layers": ["dense", "lstm"]}, ValueError, r"layers\[1\]: expected one of \['dense', 'residual'\], got 'lstm'"),
        ({"layers": "residual", "n_in": 2}, ValueError, "layers: a residual first layer needs n_in == width, got n_in=2 and width=3"),
        ({"activation": ["tanh"]}, ValueError, r"activation: expected one entry per layer \(2\), got 1"),
        ({"head": "hinge"}, ValueError, r"head: expected one of \['softmax', 'mse'\], got 'hinge'"),
        ({"bias": "yes"}, TypeError, "bias: expected a bool, got 'yes'"),
        ({"scale": 0.0}, ValueError, "scale: expected a positive finite float, got 0.0"),
        ({"scale": float("nan")}, ValueError, "scale: expected a positive finite float, got nan"),
        ({"seed": -1}, ValueError, "seed: expected a non-negative int, got -1"),
        ({"seed": 1.0}, TypeError, "seed: expected a non-negative int, got 1.0"),
        ({"n_classes": 0}, ValueError, "n_classes: expected a positive int, got 0"),
    ],
)
def test_argument_validation(kwargs, error, match):
    args = {"depth": 3, "width": 3, "batch": 2, **kwargs}
    with pytest.raises(error, match=match):
        random_problem(args.pop("depth"), args.pop("width"), args.pop("batch"), **args)


@given(architectures(max_depth=5, max_width=3, max_batch=2))
def test_architectures_respect_their_bounds(arch):
    net = arch.network()
    assert 1 <= net.depth <= 5 and net.depth == arch.depth
    assert all(1 <= layer.n_out <= 4 for layer in net.layers) and 1 <= arch.batch <= 2
    assert all(layer.activation.name != "relu" for layer in net.layers[:-1])
    assert [layer.bias for layer in net.layers] == list(arch.biases)


@given(problems(max_depth=3))
def test_problems_are_consistent(problem):
    net, params, X, y = problem
    assert np.isfinite(net.loss(params, X, y))


@pytest.mark.parametrize("head", ["softmax", "mse"])
def test_dtype_float32_is_the_float64_problem_rounded_once(head):
    from hessinv_ref.backend import get_backend, to_numpy

    be = get_backend()
    net, p64, X64, y64 = random_problem(3, 3, 2, head=head, seed=5)
    net32, p32, X32, y32 = random_problem(3, 3, 2, head=head, seed=5, dtype="float32")
    for a in (X32, y32, *net32.layer_vectors(p32)):
        assert be.is_array(a)  # on the active backend
    assert X32.dtype == be.dtype("float32") and X64.dtype == be.dtype("float64")
    np.testing.assert_array_equal(to_numpy(X32), to_numpy(X64).astype(np.float32))
    np.testing.assert_array_equal(to_numpy(net32.flatten(p32)), to_numpy(net.flatten(p64)).astype(np.float32))
    if head == "mse":
        assert y32.dtype == be.dtype("float32")
        np.testing.assert_array_equal(to_numpy(y32), to_numpy(y64).astype(np.float32))
    else:  # labels stay integers
        np.testing.assert_array_equal(to_numpy(y32), to_numpy(y64))


def test_dtype_is_validated():
    with pytest.raises(ValueError, match=r"dtype: expected one of \['float64', 'float32'\], got 'float16'"):
        random_problem(2, 2, 2, dtype="float16")
