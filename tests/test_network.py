"""Network: construction checks, initialisation, parameter layout, gradient."""

import numpy as np
import pytest
from hypothesis import given

from hessinv_ref import Dense, Network, Residual, SoftmaxCrossEntropy, SquaredError
from hessinv_ref.testing import central_jacobian, central_step
from hessinv_ref.testing.strategies import problems
from tolerances import assert_fd_close


def small_net(bias=True):
    return Network([Dense(3, 4, bias=bias), Residual(4, "gelu", bias=False), SoftmaxCrossEntropy(4, 2)])


# -- construction ----------------------------------------------------------------


def test_width_mismatch_names_the_layer():
    with pytest.raises(ValueError, match=r"layers\[2\].*input width 5.*layers\[1\].*output width 4"):
        Network([Dense(3, 4), Dense(4, 4), SoftmaxCrossEntropy(5, 2)])


def test_loss_head_must_be_last():
    with pytest.raises(ValueError, match=r"layers\[0\].*must be the last layer"):
        Network([SoftmaxCrossEntropy(3, 3), Dense(3, 3), SquaredError(3, 1)])


def test_loss_head_is_required():
    with pytest.raises(ValueError, match=r"layers\[1\].*last layer must be a loss head"):
        Network([Dense(3, 4), Dense(4, 2)])


def test_empty_network_is_refused():
    with pytest.raises(ValueError, match="layers: expected at least one layer"):
        Network([])


def test_non_layer_is_refused():
    with pytest.raises(TypeError, match=r"layers\[0\].*n_in"):
        Network([object(), SoftmaxCrossEntropy(3, 2)])


@pytest.mark.parametrize("bad, index, kind", [
    ([Dense(3, 3), "relu", SoftmaxCrossEntropy(3, 2)], 1, "str 'relu'"),
    ([Dense(3, 3), 5, SoftmaxCrossEntropy(3, 2)], 1, "int 5"),
    ([None, SoftmaxCrossEntropy(3, 2)], 0, "NoneType None"),
    ([Dense(3, 3), SoftmaxCrossEntropy], 1, "type <class"),  # the class, not an instance
])
def test_a_non_layer_item_is_named_with_its_index_and_type(bad, index, kind):
    with pytest.raises(TypeError, match=rf"^layers\[{index}\]: expected a layer .*, got {kind}"):
        Network(bad)


@pytest.mark.parametrize("bad, kind", [
    (5, "int"), ("dense", "str"), (None, "NoneType"), ({"a": Dense(3, 2)}, "dict"), (3.0, "float"),
])
def test_layers_that_are_not_a_sequence_are_named(bad, kind):
    with pytest.raises(TypeError, match=rf"^layers: expected a sequence of layers ending in a loss head, got {kind}$"):
        Network(bad)


def test_a_single_layer_is_told_to_be_wrapped_in_a_list():
    with pytest.raises(TypeError, match=r"^layers: .*got SquaredError \(a single layer: wrap it in a list"):
        Network(SquaredError(3, 1))
    # a tuple or any iterable of layers is fine
    assert Network((Dense(3, 4), SquaredError(4, 1))).depth == 2
    assert Network(iter([SquaredError(3, 1)])).depth == 1


# -- sizes -------------------------------------------------------------------------


def test_sizes_by_hand():
    net = small_net()
    # Dense(3, 4): 12 + 4; Residual(4), no bias: 16; head 4 -> 2: 8 + 2
    assert net.param_sizes == (16, 16, 10)
    assert net.n_params == 42
    assert net.depth == 3 and net.n_in == 3 and net.head is net.layers[-1]
    assert net.activation_sizes(5) == (15, 20, 20, 1)
    assert net.sizes(5) == [(16, 20), (16, 20), (10, 1)]
    np.testing.assert_array_equal(net.offsets(), [0, 16, 32, 42])
    head_only = Network([SquaredError(2, 3, bias=False)])
    assert head_only.n_params == 6 and head_only.activation_sizes(4) == (8, 1)


# -- initialisation ---------------------------------------------------------------


def test_init_bounds_are_those_of_torch_linear():
    net = Network([Dense(50, 40), Dense(40, 30, bias=True), SquaredError(30, 20)])
    for scale in (1.0, 2.5):
        params = net.init(seed=3, scale=scale)
        for layer, p in zip(net.layers, params):
            bound = scale / np.sqrt(layer.n_in)
            for name in ("weight", "bias"):
                a = p[name]
                assert np.all(np.abs(a) <= bound)
            W = p["weight"]
            # U(-b, b) has mean 0 and variance b^2/3; with >= 600 draws the
            # sample max comes within 2% of b and the moments within 5 standard
            # errors, so a narrower or shifted distribution fails.
            n = W.size
            assert np.abs(W).max() > 0.98 * bound
            assert abs(W.mean()) < 5 * bound / np.sqrt(3 * n)
            assert abs(W.var() / (bound**2 / 3) - 1) < 5 * np.sqrt(0.8 / n)


def test_init_draws_weight_then_bias_layer_by_layer():
    net = small_net()
    rng = np.random.default_rng(11)
    expected = []
    for layer in net.layers:
        b = 1.0 / np.sqrt(layer.n_in)
        expected.append(rng.uniform(-b, b, size=(layer.n_out, layer.n_in)).ravel())
        if layer.bias:
            expected.append(rng.uniform(-b, b, size=layer.n_out))
    np.testing.assert_array_equal(net.flatten(net.init(seed=11)), np.concatenate(expected))


def test_init_is_reproducible_and_seeds_differ():
    net = small_net()
    a, b, c = net.flatten(net.init(5)), net.flatten(net.init(5)), net.flatten(net.init(6))
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)
    # a Generator is consumed, so two draws from one generator differ
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(net.flatten(net.init(rng)), a)
    assert not np.array_equal(net.flatten(net.init(rng)), a)


def test_init_seeds_none_numpy_ints_and_generators():
    net = small_net()
    np.testing.assert_array_equal(net.flatten(net.init(seed=np.int64(5))), net.flatten(net.init(seed=5)))
    a, b = net.flatten(net.init(seed=None)), net.flatten(net.init(seed=None))
    assert a.shape == (net.n_params,) and not np.array_equal(a, b)  # fresh entropy each time


@pytest.mark.parametrize("seed, error, match", [
    (1.5, TypeError, "got float 1.5"),
    (2.0, TypeError, "got float 2.0"),
    ("0", TypeError, "got str '0'"),
    (True, TypeError, "got bool True"),
    ([1, 2], TypeError, r"got list \[1, 2\]"),
    (np.random.RandomState(0), TypeError, "got RandomState"),
    (-1, ValueError, "got -1"),
])
def test_bad_seeds_are_named(seed, error, match):
    with pytest.raises(error, match=r"^seed: expected (None, )?an int >= 0.*" + match):
        small_net().init(seed=seed)


def test_init_returns_dicts_with_torch_names_and_shapes():
    params = small_net().init(0)
    assert [sorted(p) for p in params] == [["bias", "weight"], ["weight"], ["bias", "weight"]]
    assert [p["weight"].shape for p in params] == [(4, 3), (4, 4), (2, 4)]
    assert params[0]["bias"].shape == (4,)


# -- flatten / unflatten ---------------------------------------------------------------


def test_flatten_unflatten_round_trip():
    net = small_net()
    theta = np.random.default_rng(0).standard_normal(net.n_params)
    params = net.unflatten(theta)
    np.testing.assert_array_equal(net.flatten(params), theta)
    # layout: layer by layer, W row-major, then bias
    np.testing.assert_array_equal(params[0]["weight"], theta[:12].reshape(4, 3))
    np.testing.assert_array_equal(params[0]["bias"], theta[12:16])
    np.testing.assert_array_equal(params[1]["weight"], theta[16:32].reshape(4, 4))
    np.testing.assert_array_equal(params[2]["bias"], theta[40:42])
    again = net.unflatten(net.flatten(params))
    for p, q in zip(params, again):
        assert p.keys() == q.keys()
        for k in p:
            np.testing.assert_array_equal(p[k], q[k])


def test_unflatten_returns_copies():
    net = small_net()
    theta = np.zeros(net.n_params)
    params = net.unflatten(theta)
    params[0]["weight"][...] = 1.0
    assert not theta.any()


def test_params_and_theta_give_the_same_results():
    net = small_net()
    rng = np.random.default_rng(2)
    params = net.init(rng)
    X, y = rng.standard_normal((3, 3)), np.array([0, 1, 1])
    theta = net.flatten(params)
    assert net.loss(params, X, y) == net.loss(theta, X, y)
    np.testing.assert_array_equal(net.gradient(params, X, y), net.gradient(theta, X, y))


# -- gradient ------------------------------------------------------------------------


@given(problems())
def test_gradient_matches_central_differences_of_the_loss(problem):
    net, params, X, y = problem
    theta = net.flatten(params)
    g = net.gradient(theta, X, y)
    assert g.shape == (net.n_params,)
    h = central_step(theta)
    fd = central_jacobian(lambda t: net.loss(t, X, y), theta, h)[0]
    assert_fd_close(g, fd, h, scale=abs(net.loss(theta, X, y)), what=f"gradient of {net!r}")


def test_forward_returns_every_activation():
    net = small_net()
    rng = np.random.default_rng(4)
    params, X, y = net.init(rng), rng.standard_normal((2, 3)), np.array([1, 0])
    zs = net.forward(params, X, y)
    assert [z.shape for z in zs] == [(6,), (8,), (8,), (1,)]
    np.testing.assert_array_equal(zs[0], X.ravel())
    assert zs[-1][0] == net.loss(params, X, y)
