"""Bad input gives a clear error naming the argument, the expected and the
actual value, at every entry point; good input is never modified."""

import copy
import re

import numpy as np
import pytest

from hessinv_ref import Curvature, Dense, Network, SoftmaxCrossEntropy, SquaredError, hessian, hvp, polynomial_hvp
from hessinv_ref.testing import random_problem


def _with_v(route):
    return lambda net, params, X, y: route(net, params, X, y, np.zeros(net.n_params))


ENTRY_POINTS = {
    "forward": lambda net, params, X, y: net.forward(params, X, y),
    "loss": lambda net, params, X, y: net.loss(params, X, y),
    "gradient": lambda net, params, X, y: net.gradient(params, X, y),
    "hvp": _with_v(hvp),
    "polynomial_hvp": _with_v(polynomial_hvp),
    "hessian": hessian,
    "Curvature": Curvature,
}
V_ROUTES = {
    "hvp": hvp,
    "polynomial_hvp": polynomial_hvp,
    "Curvature.hvp": lambda net, params, X, y, v: Curvature(net, params, X, y).hvp(v),
}
entry_points = pytest.mark.parametrize("entry", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
v_routes = pytest.mark.parametrize("route", V_ROUTES.values(), ids=V_ROUTES.keys())


@pytest.fixture
def softmax_problem():
    # depth 3, width 3, batch 2, 3 classes: P = 12 + 12 + 12 = 36
    return random_problem(3, 3, 2, seed=1)


@pytest.fixture
def mse_problem():
    return random_problem(2, 3, 2, head="mse", n_classes=2, seed=2)


# -- X -------------------------------------------------------------------------------


@entry_points
@pytest.mark.parametrize(
    "shape, match",
    [((6,), r"X: expected shape \(B, 3\) with B >= 1, got \(6,\)"),
     ((2, 4), r"X: expected shape \(B, 3\) with B >= 1, got \(2, 4\)"),
     ((2, 3, 1), r"X: expected shape \(B, 3\) .*got \(2, 3, 1\)"),
     ((0, 3), r"X: expected shape \(B, 3\) with B >= 1, got \(0, 3\)")],
)
def test_wrong_X_shape(entry, softmax_problem, shape, match):
    net, params, _, y = softmax_problem
    with pytest.raises(ValueError, match=match):
        entry(net, params, np.zeros(shape), y[: shape[0]] if len(shape) == 2 else y)


@entry_points
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X(entry, softmax_problem, bad):
    net, params, X, y = softmax_problem
    X = X.copy()
    X[1, 2] = bad
    with pytest.raises(ValueError, match="X: expected finite values, got NaN or inf"):
        entry(net, params, X, y)


def test_complex_or_non_numeric_X(softmax_problem):
    net, params, X, y = softmax_problem
    for bad in (X.astype(complex), X.astype(str)):
        with pytest.raises(TypeError, match=f"X: expected a real array, got dtype {bad.dtype}"):
            net.loss(params, bad, y)


# -- y -------------------------------------------------------------------------------


@entry_points
def test_wrong_label_shape(entry, softmax_problem):
    net, params, X, y = softmax_problem
    with pytest.raises(ValueError, match=r"y: expected integer labels of shape \(2,\), got shape \(3,\)"):
        entry(net, params, X, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y: expected integer labels of shape \(2,\), got shape \(2, 1\)"):
        entry(net, params, X, y[:, None])


@entry_points
@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_labels_out_of_range(entry, softmax_problem, bad):
    net, params, X, _ = softmax_problem
    with pytest.raises(ValueError, match=rf"y: labels must lie in \[0, 3\), got {bad}"):
        entry(net, params, X, np.array([0, bad]))


@entry_points
@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([0.5, 1.0]), np.array([True, False])])
def test_non_integer_labels(entry, softmax_problem, labels):
    net, params, X, _ = softmax_problem
    with pytest.raises(TypeError, match=f"y: expected integer class labels, got dtype {labels.dtype}"):
        entry(net, params, X, labels)


@entry_points
def test_wrong_target_shape(entry, mse_problem):
    net, params, X, y = mse_problem
    for bad in (y.ravel(), y[:, :1], np.zeros((3, 2))):
        with pytest.raises(ValueError, match=r"y: expected float targets of shape \(2, 2\), got shape " + re.escape(str(bad.shape))):
            entry(net, params, X, bad)


@entry_points
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_targets(entry, mse_problem, bad):
    net, params, X, y = mse_problem
    y = y.copy()
    y[0, 1] = bad
    with pytest.raises(ValueError, match="y: targets must be finite"):
        entry(net, params, X, y)


def test_integer_targets_for_squared_error(mse_problem):
    net, params, X, y = mse_problem
    with pytest.raises(TypeError, match="y: expected floating-point targets, got dtype int"):
        net.loss(params, X, np.zeros((2, 2), dtype=int))


# -- params ----------------------------------------------------------------------------


@entry_points
def test_wrong_theta_shape(entry, softmax_problem):
    net, params, X, y = softmax_problem
    for theta in (np.zeros(35), np.zeros((36, 1))):
        with pytest.raises(ValueError, match=r"params: expected a flat vector of shape \(36,\) .*got an array of shape " + re.escape(str(theta.shape))):
            entry(net, theta, X, y)


@entry_points
def test_non_finite_theta(entry, softmax_problem):
    net, params, X, y = softmax_problem
    theta = net.flatten(params)
    theta[7] = np.nan
    with pytest.raises(ValueError, match="params: expected finite values"):
        entry(net, theta, X, y)


def test_integer_theta(softmax_problem):
    net, _, X, y = softmax_problem
    with pytest.raises(TypeError, match="params: expected a floating-point array, got dtype int"):
        net.loss(np.zeros(36, dtype=int), X, y)


@entry_points
def test_wrong_number_of_layer_dicts(entry, softmax_problem):
    net, params, X, y = softmax_problem
    with pytest.raises(ValueError, match="params: expected 3 per-layer dicts, got 2"):
        entry(net, params[:2], X, y)


def _edited(params, layer, **changes):
    """A deep copy of ``params`` with ``changes`` applied to one layer's dict
    (a value of ``None`` deletes the key)."""
    out = copy.deepcopy(params)
    for key, value in changes.items():
        if value is None:
            del out[layer][key]
        else:
            out[layer][key] = value
    return out


@entry_points
@pytest.mark.parametrize(
    "layer, changes, error, match",
    [
        (1, {"weight": np.zeros((3, 4))}, ValueError, r"params\[1\].*weight: expected shape \(3, 3\), got \(3, 4\)"),
        (2, {"bias": np.zeros(2)}, ValueError, r"params\[2\].*bias: expected shape \(3,\), got \(2,\)"),
        (0, {"bias": None}, ValueError, r"params\[0\].*bias: expected shape \(3,\), got None"),
        (0, {"weight": None}, TypeError, r"params\[0\]: expected a dict with 'weight'"),
        (2, {"scale": np.ones(3)}, ValueError, r"params\[2\]: unexpected keys \['scale'\]"),
        (1, {"weight": np.full((3, 3), np.inf)}, ValueError, r"params\[1\]: expected finite values"),
        (0, {"bias": np.array([0.0, np.nan, 0.0])}, ValueError, r"params\[0\]: expected finite values"),
        (0, {"weight": np.zeros((3, 3), dtype=int), "bias": np.zeros(3, dtype=int)}, TypeError,
         r"params\[0\]: expected floating-point arrays, got dtype int"),
    ],
    ids=["weight-shape", "bias-shape", "bias-missing", "weight-missing", "extra-key",
         "inf-weight", "nan-bias", "int-dtype"],
)
def test_bad_layer_dicts(entry, softmax_problem, layer, changes, error, match):
    net, params, X, y = softmax_problem
    with pytest.raises(error, match=match):
        entry(net, _edited(params, layer, **changes), X, y)


def test_bias_given_to_a_layer_without_one():
    net, params, X, y = random_problem(2, 3, 2, bias=False)
    params[0]["bias"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"params\[0\].*bias: .* has no bias"):
        net.loss(params, X, y)


def test_params_of_wrong_type(softmax_problem):
    net, _, X, y = softmax_problem
    with pytest.raises(TypeError, match="params: expected a list of per-layer dicts or a flat array, got str"):
        net.loss("theta", X, y)
    with pytest.raises(TypeError, match=r"params\[0\]: expected a dict with 'weight'.*got ndarray"):
        net.loss([np.zeros(12)] * 3, X, y)


# -- v -------------------------------------------------------------------------------


@v_routes
@pytest.mark.parametrize("shape", [(35,), (37,), (36, 2, 1), (2, 36), ()])
def test_wrong_v_shape(route, softmax_problem, shape):
    net, params, X, y = softmax_problem
    expected = r"v: expected shape \(36,\) or \(36, k\), got " + re.escape(str(shape))
    with pytest.raises(ValueError, match=expected):
        route(net, params, X, y, np.zeros(shape))


@v_routes
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_v(route, softmax_problem, bad):
    net, params, X, y = softmax_problem
    v = np.zeros(36)
    v[3] = bad
    with pytest.raises(ValueError, match="v: expected finite values"):
        route(net, params, X, y, v)


@v_routes
def test_complex_v(route, softmax_problem):
    net, params, X, y = softmax_problem
    with pytest.raises(TypeError, match="v: expected a real array, got dtype complex"):
        route(net, params, X, y, np.zeros(36, dtype=complex))


# -- net ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [hvp, polynomial_hvp, hessian, Curvature], ids=lambda f: f.__name__)
def test_net_that_is_not_a_network_is_named(entry, softmax_problem):
    net, params, X, y = softmax_problem
    args = (X, y, np.ones(net.n_params)) if entry in (hvp, polynomial_hvp) else (X, y)
    with pytest.raises(TypeError, match=r"^net: expected a hessinv_ref.Network, got list; build one with Network"):
        entry(list(net.layers), params, *args)
    with pytest.raises(TypeError, match=r"^net: expected a hessinv_ref.Network, got str$"):
        entry("net", params, *args)


def test_solve_names_a_net_that_is_not_a_network(softmax_problem):
    from hessinv_ref import factorize, solve

    net, params, X, y = softmax_problem
    g = np.ones(net.n_params)
    with pytest.raises(TypeError, match="^net: expected a hessinv_ref.Network, got list"):
        solve(list(net.layers), params, X, y, g, damping=1.0)
    with pytest.raises(TypeError, match="^net: expected a hessinv_ref.Network, got dict"):
        factorize({}, params, X, y, damping=1.0)


# -- ragged nested lists ---------------------------------------------------------------------


RAGGED = "expected an array or a rectangular nested list (every row of one length), got a ragged nested list: "


@entry_points
def test_ragged_X_is_named(entry, softmax_problem):
    net, params, X, y = softmax_problem
    ragged = [[1.0, 2.0, 3.0], [1.0, 2.0]]
    with pytest.raises(ValueError, match=re.escape("X: " + RAGGED + "X[1] has length 2 but X[0] has length 3")):
        entry(net, params, ragged, y)
    mixed = [[1.0, 2.0, 3.0], 4.0]
    with pytest.raises(ValueError, match=re.escape("X: " + RAGGED + "X[0] is a list but X[1] is float 4.0")):
        entry(net, params, mixed, y)


@entry_points
def test_ragged_targets_are_named(entry, mse_problem):
    net, params, X, y = mse_problem
    with pytest.raises(ValueError, match=re.escape("y: " + RAGGED + "y[1] has length 1 but y[0] has length 2")):
        entry(net, params, X, [[0.0, 1.0], [2.0]])


@v_routes
def test_ragged_v_is_named(route, softmax_problem):
    net, params, X, y = softmax_problem
    ragged = [[0.0] * 2] * 35 + [[0.0]]
    with pytest.raises(ValueError, match=re.escape("v: " + RAGGED + "v[35] has length 1 but v[0] has length 2")):
        route(net, params, X, y, ragged)


def test_ragged_rhs_is_named(softmax_problem):
    from hessinv_ref import factorize, solve

    net, params, X, y = softmax_problem
    ragged = [[0.0] * 2] * 35 + [[0.0, 1.0, 2.0]]
    with pytest.raises(ValueError, match=re.escape("g: " + RAGGED + "g[35] has length 3")):
        solve(net, params, X, y, ragged, damping=1.0)
    with pytest.raises(ValueError, match=re.escape("rhs: " + RAGGED + "rhs[35] has length 3")):
        factorize(net, params, X, y, damping=1.0).solve(ragged)


@pytest.mark.parametrize("key, value, where", [
    ("weight", [[0.1, 0.2, 0.3], [0.1, 0.2], [0.1, 0.2, 0.3]], "params[0]['weight'][1] has length 2 but params[0]['weight'][0] has length 3"),
    ("weight", [[0.1, 0.2, 0.3], [[0.1], 0.2, 0.3], [0.1, 0.2, 0.3]], "params[0]['weight'][1][0] is a list but params[0]['weight'][1][1] is float 0.2"),
    ("bias", [0.1, [0.2], 0.3], "params[0]['bias'][1] is a list but params[0]['bias'][0] is float 0.1"),
])
def test_ragged_parameters_are_named(softmax_problem, key, value, where):
    net, params, X, y = softmax_problem
    params = copy.deepcopy(params)
    params[0][key] = value
    with pytest.raises(ValueError, match=re.escape(f"params[0][{key!r}]: " + RAGGED + where)):
        net.loss(params, X, y)


def test_rectangular_lists_are_accepted(softmax_problem):
    net, params, X, y = softmax_problem
    as_lists = [{k: a.tolist() for k, a in d.items()} for d in params]
    assert net.loss(as_lists, X.tolist(), y.tolist()) == net.loss(params, X, y)
    v = np.arange(net.n_params, dtype=float)
    np.testing.assert_array_equal(hvp(net, params, X, y, v.tolist()), hvp(net, params, X, y, v))


# -- construction ------------------------------------------------------------------------


def test_mismatched_widths():
    with pytest.raises(ValueError, match=r"layers\[1\].*expects input width 3.*layers\[0\].*output width 4"):
        Network([Dense(2, 4), SquaredError(3, 1)])


def test_unknown_activation():
    with pytest.raises(ValueError, match="activation: expected one of .* got 'swish'"):
        Dense(2, 2, activation="swish")
    with pytest.raises(ValueError, match="activation: expected one of .* got 'swish'"):
        random_problem(2, 2, 1, activation="swish")


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Dense(0, 2), ValueError, "n_in: expected a positive int, got 0"),
        (lambda: Dense(2, 2.0), TypeError, "n_out: expected a positive int, got 2.0"),
        (lambda: Dense(2, 2, bias=1), TypeError, "bias: expected a bool, got 1"),
        (lambda: SoftmaxCrossEntropy(2, True), TypeError, "n_out: expected a positive int, got True"),
    ],
)
def test_bad_layer_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


# -- the caller's arrays are never modified -------------------------------------------------


def _snapshot(*objs):
    return copy.deepcopy(objs)


def _assert_unchanged(before, after):
    for b, a in zip(before, after):
        if isinstance(b, list):
            _assert_unchanged(b, a)
        elif isinstance(b, dict):
            assert b.keys() == a.keys()
            _assert_unchanged(list(b.values()), list(a.values()))
        else:
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


@pytest.mark.parametrize("head", ["softmax", "mse"])
@pytest.mark.parametrize("as_theta", [False, True], ids=["dicts", "theta"])
def test_inputs_are_never_modified(head, as_theta):
    net, params, X, y = random_problem(4, 3, 3, layers="mixed", head=head, seed=5)
    params = net.flatten(params) if as_theta else params
    v, V = np.linspace(-1, 1, net.n_params), np.ones((net.n_params, 2))
    before = _snapshot(params, X, y, v, V)

    net.forward(params, X, y)
    net.loss(params, X, y)
    net.gradient(params, X, y)
    hvp(net, params, X, y, v)
    hvp(net, params, X, y, V)
    polynomial_hvp(net, params, X, y, v)
    polynomial_hvp(net, params, X, y, V)
    hessian(net, params, X, y)

    curv = Curvature(net, params, X, y)
    curv.loss(), curv.gradient(), curv.blocks, curv.sizes(), curv.hvp(v), curv.hvp(V), curv.hessian()
    poly = curv.polynomial()
    poly.M, poly.Dx, poly.P_down, poly.Hxx, poly.Hxz, poly.Hzz
    poly.terms(v), poly.matvec(V), poly.to_dense(), poly.tangent(v)
    A = poly.M.shape[0]
    u, r = np.linspace(0, 1, A), np.linspace(1, 2, A)
    u_before, r_before = u.copy(), r.copy()
    poly.solve_M(u), poly.solve_MT(r)

    _assert_unchanged(before, (params, X, y, v, V))
    np.testing.assert_array_equal(u, u_before)
    np.testing.assert_array_equal(r, r_before)


def test_results_do_not_alias_the_cache(softmax_problem):
    """Writing into a returned array must not change a later result."""
    net, params, X, y = softmax_problem
    curv = Curvature(net, params, X, y)
    v = np.ones(net.n_params)
    for method in (curv.gradient, curv.hessian, lambda: curv.hvp(v), lambda: curv.polynomial().matvec(v)):
        first = method()
        expected = first.copy()
        first[...] = 123.0
        np.testing.assert_array_equal(method(), expected)


def test_cached_blocks_and_passes_are_read_only(softmax_problem):
    net, params, X, y = softmax_problem
    curv = Curvature(net, params, X, y)
    for arr in [*curv.z, *curv.b, *curv.xs, *(m for blk in curv.blocks for m in blk)]:
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0.0


@pytest.mark.parametrize("as_theta", [False, True], ids=["dicts", "theta"])
def test_curvature_is_a_snapshot_of_its_inputs(as_theta):
    """Changing the caller's arrays after building a Curvature must not change
    it: the cache holds copies, not views of the caller's memory."""
    net, params, X, y = random_problem(3, 3, 2, head="mse", seed=6)
    params = net.flatten(params) if as_theta else params
    v = np.linspace(-1, 1, net.n_params)
    reference = Curvature(net, copy.deepcopy(params), X.copy(), y.copy())
    curv = Curvature(net, params, X, y)
    for a in ([params] if as_theta else [p[k] for p in params for k in p]) + [X, y]:
        a += 1.0
    # every lazy result (the blocks, the R-passes) is first computed after the change
    for method in ("loss", "gradient", "hessian"):
        np.testing.assert_array_equal(getattr(curv, method)(), getattr(reference, method)())
    np.testing.assert_array_equal(curv.hvp(v), reference.hvp(v))
