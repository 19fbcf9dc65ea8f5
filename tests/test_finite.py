"""No silent NaN: a quantity that is not finite although every input is
raises :class:`~hessinv_ref.NonFiniteError` naming the quantity, the layer
and the likely cause, before any route sees it.

Runs on every backend (the problems are drawn there; the few hand-built
inputs move with ``B``).
"""

import math

import numpy as np
import pytest

from _backend import ON_NUMPY, B, N
from hessinv_ref import (
    Curvature,
    Dense,
    Network,
    NonFiniteError,
    SoftmaxCrossEntropy,
    SquaredError,
    hessian,
    hvp,
    polynomial_hvp,
    solve,
)
from hessinv_ref.backend import xp
from hessinv_ref.finite import check_finite, first_non_finite, overflow_cause
from hessinv_ref.testing import random_problem

# NumPy's own RuntimeWarnings for the overflows these tests provoke
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

ROUTES = ("riccati", "ldu", "dense") + (("banded",) if ON_NUMPY else ())

# z_0 of magnitude ~1e155: its square 1e310 is past float64's 1.8e308
HUGE = 1e155
OVERFLOW_OF_X = r"overflow: the layer input z_0 of magnitude ~\de\+155 .*; rescale X"


def test_non_finite_error_is_a_floating_point_error_with_its_parts():
    err = NonFiniteError("block Hzz", 3, "overflow: something")
    assert isinstance(err, FloatingPointError) and isinstance(err, ArithmeticError)
    assert (err.name, err.layer, err.cause) == ("block Hzz", 3, "overflow: something")
    assert str(err) == ("block Hzz of layer 3 is not finite (inf or NaN) although every input is "
                        "finite; likely cause: overflow: something")


def test_check_finite_passes_finite_arrays_and_names_the_rest():
    good = B(np.arange(4.0))
    calls = []
    assert check_finite("x", good, cause=lambda: calls.append(1) or "never") is good
    assert calls == []  # the cause is only worked out on failure
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(NonFiniteError, match=r"^hvp result of layer 2 is not finite .*likely cause: because") as info:
            check_finite("hvp result", B(np.array([1.0, bad])), layer=2, cause=lambda: "because")
        assert info.value.layer == 2


def test_first_non_finite_finds_the_first_bad_array():
    arrays = [B(np.ones(3)), B(np.ones((2, 2))), B(np.array([[1.0, np.nan]])), B(np.array([np.inf]))]
    assert first_non_finite(arrays[:2]) is None and first_non_finite([]) is None
    assert first_non_finite(arrays) == 2 and first_non_finite(arrays[3:]) == 0


def test_overflow_cause_tells_large_from_moderate_inputs():
    f64 = xp.float64
    large = overflow_cause(f64, [("the layer input z_0", 2e155, "rescale X"), ("x", 1.0, "")], "the blocks")
    assert large.startswith("overflow: the layer input z_0 of magnitude ~2e+155") and large.endswith("rescale X")
    moderate = overflow_cause(f64, [("the layer input z_0", 3.0, "rescale X")], "the blocks")
    assert moderate.startswith("not an overflow of large inputs (the layer input z_0 up to 3.0e+00)")
    # float32's threshold: sqrt(3.4e38) / 1e3 ~ 1.8e16
    assert overflow_cause(xp.float32, [("v", 1e17, "rescale v")], "w").startswith("overflow")


# -- the blocks: large X --------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_problem():
    # A squared-error head alone: its weight block Hxx = Σ_i Λ ⊗ z_0 z_0ᵀ,
    # with Λ = I/B whatever the input, genuinely overflows for z_0 ~ 1e155
    # (z_0 z_0ᵀ ~ 1e310).  The weights scaled by 1e-12 keep the forward
    # pass finite: outputs ~ 1e143 and the loss ~ 1e286.
    net, params, X, y = random_problem(1, 3, 2, head="mse", seed=1)
    theta = net.flatten(params) * 1e-12
    return net, theta, X * (HUGE / float(xp.max(xp.abs(X)))), y


@pytest.mark.parametrize("fast", [True, False])
def test_a_saturated_unit_keeps_its_zero_curvature(fast):
    """tanh at u ~ 1e155 is saturated, tanh'' = 0 and its curvature is 0.
    Both block builders multiply by Λ before the second Z (as A_x^T Λ A_x
    does), so the Hessian is finite there, not NaN from inf * 0 in Z Z^T."""
    path, other = ("fast", "reference") if fast else ("reference", "fast")
    net, params, X, y = random_problem(3, 3, 2, seed=1)
    H = N(Curvature(net, params, X * HUGE, y, path=path).hessian())
    assert np.all(np.isfinite(H))
    # the two builders agree to rounding (a few eps of the largest entry)
    eps = np.finfo(np.float64).eps
    H_other = N(Curvature(net, params, X * HUGE, y, path=other).hessian())
    np.testing.assert_allclose(H_other, H, rtol=0, atol=64 * eps * np.max(np.abs(H)))


def test_blocks_that_overflow_are_named_with_layer_and_cause(huge_problem):
    with pytest.raises(NonFiniteError, match=r"^block Hxx of layer 1 is not finite .*" + OVERFLOW_OF_X) as info:
        Curvature(*huge_problem).blocks
    assert info.value.name == "block Hxx" and info.value.layer == 1


@pytest.mark.parametrize("fast", [True, False])
def test_both_block_builders_check(huge_problem, fast):
    with pytest.raises(NonFiniteError, match="block Hxx of layer 1"):
        Curvature(*huge_problem, path="fast" if fast else "reference").blocks


def test_hessian_of_large_inputs_raises_instead_of_returning_nan(huge_problem):
    with pytest.raises(NonFiniteError, match=OVERFLOW_OF_X):
        hessian(*huge_problem)


@pytest.mark.parametrize("method", ROUTES)
def test_solve_reports_the_overflow_not_a_singular_pivot(huge_problem, method):
    g = B(np.ones(huge_problem[0].n_params))
    with pytest.raises(NonFiniteError, match=OVERFLOW_OF_X):
        solve(*huge_problem, g, damping=0.1, method=method)


def test_polynomial_hvp_sees_the_blocks_overflow(huge_problem):
    with pytest.raises(NonFiniteError, match="block Hxx of layer 1"):
        polynomial_hvp(*huge_problem, B(np.ones(huge_problem[0].n_params)))


def test_dense_hessian_assembly_is_checked(monkeypatch):
    """Finite blocks can still overflow in the assembly (T^T Hzz T): the
    dense Hessian is checked where Curvature returns it."""
    import hessinv_ref.dense as dense

    curv = Curvature(*random_problem(2, 2, 2, seed=3))
    monkeypatch.setattr(dense, "hessian_from_blocks", lambda blocks, layout=None: xp.full((curv.P, curv.P), math.inf))
    with pytest.raises(NonFiniteError, match=r"^dense Hessian is not finite .*the dense Hessian's assembly"):
        curv.hessian()


# -- the R-operator's result -----------------------------------------------------------


def test_hvp_that_overflows_is_named(huge_problem):
    # the R-operator's weight product (Λ t_1) z_0ᵀ, with t_1 = v_W z_0: of
    # the size of z_0², it overflows although the blocks are never formed
    net, theta, X, y = huge_problem
    v = B(np.ones(net.n_params))
    with pytest.raises(NonFiniteError, match=r"^hvp result of layer 1 is not finite .*" + OVERFLOW_OF_X):
        hvp(net, theta, X, y, v)
    with pytest.raises(NonFiniteError, match="hvp result"):
        Curvature(net, theta, X, y).hvp(B(np.ones((net.n_params, 2))))
    np.testing.assert_array_equal(np.isfinite(N(hvp(net, theta, X * 1e-150, y, v))), True)


# -- forward and backward passes -------------------------------------------------------


def _squared_error_problem(scale_X):
    net = Network([SquaredError(3, 1)])
    params = net.init(seed=0)
    X = B(np.full((2, 3), scale_X))
    y = B(np.zeros((2, 1)))
    return net, params, X, y


def test_a_forward_activation_that_overflows_is_named():
    # the squared error of outputs ~1e200 is 1e400: z_1, the loss, is inf
    problem = _squared_error_problem(1e200)
    match = r"^forward activation z_1 of layer 1 is not finite .*overflow: the layer input z_0 of magnitude ~1e\+200"
    for call in (lambda: problem[0].loss(*problem[1:]), lambda: problem[0].forward(*problem[1:]),
                 lambda: Curvature(*problem)):
        with pytest.raises(NonFiniteError, match=match):
            call()
    assert math.isfinite(_squared_error_problem(1e100)[0].loss(*_squared_error_problem(1e100)[1:]))


def test_a_backprop_vector_that_overflows_is_named():
    """Linear layers with weights 1e150 on X = 1e-300: the activations are
    1e-150, 1 and 1e150 (loss ~1e300, finite), but the backprop vectors are
    b_2 ~ 2 u W ~ 1e300 and b_1 = b_2 W_2 ~ 1e450: inf."""
    net = Network([Dense(1, 1, activation="identity", bias=False), Dense(1, 1, activation="identity", bias=False),
                   SquaredError(1, 1, bias=False)])
    theta, X, y = B(np.full(3, 1e150)), B(np.full((1, 1), 1e-300)), B(np.zeros((1, 1)))
    assert math.isfinite(net.loss(theta, X, y))
    with pytest.raises(NonFiniteError, match=r"^backprop vector b_1 of layer 2 is not finite .*overflow: the "
                                             r"backprop vector b_2 of magnitude ~2e\+300") as info:
        Curvature(net, theta, X, y)
    assert info.value.layer == 2


class _NaNCurvature(Dense):
    """A user layer whose curvature formula is broken: NaN at moderate inputs."""

    def stack_key(self):
        return None

    def curvature(self, x, z_in, b_out):
        Hxx, Hxz, Hzz = super().curvature(x, z_in, b_out)
        return Hxx, Hxz, Hzz * math.nan


def test_a_broken_user_layer_is_not_blamed_on_overflow():
    net = Network([_NaNCurvature(2, 2), SoftmaxCrossEntropy(2, 2)])
    X, y = B(np.ones((2, 2))), B(np.array([0, 1]))
    with pytest.raises(NonFiniteError, match=r"^block Hzz of layer 1 is not finite .*not an overflow of large inputs"):
        Curvature(net, net.init(seed=0), X, y).blocks
