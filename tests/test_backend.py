"""The array backends (:mod:`hessinv_ref.backend`): selection, the guard
against mixing arrays of different libraries or devices, explicit moves,
:func:`~hessinv_ref.backend.namespace_of`, a point keeping the backend it was
built with, and the fallbacks for what the Array API standard lacks.

Every test selects the backends it needs explicitly (``use_backend``), so the
module means the same whichever backend the run started with (CI runs it
under NumPy and under ``HESSINV_REF_BACKEND=array_api_strict``).  The strict
backend is ``array-api-strict`` (a test dependency) on its virtual device
``"device1"``, which refuses conversion to NumPy as a GPU would.
"""

import math
import os
import subprocess
import sys

import array_api_strict
import numpy as np
import pytest
import scipy.special

import hessinv_ref
from hessinv_ref import Curvature, factorize, hvp, solve
from hessinv_ref.backend import (
    BACKENDS,
    ENV_VAR,
    BackendNotSupportedError,
    DenseLU,
    _erfc_array_api,
    check_dtype,
    from_numpy,
    get_backend,
    namespace_of,
    set_backend,
    to_numpy,
    use_backend,
    xp,
)
from hessinv_ref.testing import random_problem

STRICT = "array_api_strict"
CHOICES = r"\['numpy', 'cupy', 'array_api_strict'\]"
EPS = float(np.finfo(np.float64).eps)


# -- selection ----------------------------------------------------------------------


def test_set_backend_returns_the_previous_name_and_switches():
    start = get_backend().name
    try:
        assert set_backend(STRICT) == start
        assert get_backend().name == STRICT
        # the namespace proxy follows the switch
        assert isinstance(xp.ones(2, device=get_backend().device), get_backend().array_type)
        assert set_backend("numpy") == STRICT
        assert get_backend().name == "numpy" and get_backend().xp is np
    finally:
        set_backend(start)
    assert get_backend().name == start


def test_use_backend_restores_on_normal_exit_after_an_exception_and_when_nested():
    start = get_backend().name
    with use_backend(STRICT) as be:
        assert be is get_backend() and be.name == STRICT
        with use_backend("numpy") as inner:
            assert inner.name == get_backend().name == "numpy"
        assert get_backend().name == STRICT
    assert get_backend().name == start

    with pytest.raises(RuntimeError, match="boom"):
        with use_backend(STRICT):
            with use_backend("numpy"):
                raise RuntimeError("boom")
    assert get_backend().name == start

    with pytest.raises(RuntimeError, match="inner"):
        with use_backend("numpy"):
            try:
                with use_backend(STRICT):
                    raise RuntimeError("inner")
            finally:
                assert get_backend().name == "numpy"  # restored before the outer block sees it
    assert get_backend().name == start


def test_set_backend_inside_use_backend_is_undone_on_exit():
    start = get_backend().name
    with use_backend(STRICT):
        set_backend("numpy")
        assert get_backend().name == "numpy"
    assert get_backend().name == start


@pytest.mark.parametrize("bad", ["torch", "NumPy", "", None, 3])
def test_unknown_backend_names_are_refused_naming_the_choices(bad):
    start = get_backend().name
    with pytest.raises(ValueError, match=rf"backend: expected one of {CHOICES}, got {bad!r}"):
        set_backend(bad)
    with pytest.raises(ValueError, match=CHOICES):
        with use_backend(bad):
            pass  # pragma: no cover - never entered
    if bad is not None:  # from_numpy(a, backend=None) means the active backend
        with pytest.raises(ValueError, match=CHOICES):
            from_numpy(np.ones(2), backend=bad)
    assert get_backend().name == start  # nothing changed


def _start_backend(value):
    """``get_backend().name`` in a fresh interpreter with ``ENV_VAR=value``."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if value is not None:
        env[ENV_VAR] = value
    code = "import hessinv_ref; print(hessinv_ref.get_backend().name)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_environment_variable_picks_the_starting_backend():
    assert ENV_VAR == "HESSINV_REF_BACKEND"
    for value, expected in ((STRICT, STRICT), ("numpy", "numpy"), (None, "numpy"), ("", "numpy")):
        run = _start_backend(value)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == expected, (value, run.stdout, run.stderr)


def test_an_unknown_name_in_the_environment_variable_is_a_clear_error():
    run = _start_backend("tensorflow")
    assert run.returncode != 0
    assert f"ValueError: {ENV_VAR}: expected one of ['numpy', 'cupy', 'array_api_strict'], got 'tensorflow'" in run.stderr


def test_backend_names_and_dtypes():
    assert BACKENDS == ("numpy", "cupy", STRICT)
    assert check_dtype("float64") == "float64" and check_dtype(np.float32) == "float32"
    assert check_dtype(np.dtype("float64")) == "float64"
    with pytest.raises(ValueError, match=r"dtype: expected one of \['float64', 'float32'\], got 'float16'"):
        check_dtype("float16")


# -- moving data ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", STRICT])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_from_numpy_and_to_numpy_round_trip_as_copies(backend, dtype):
    a = np.arange(12, dtype=dtype).reshape(3, 4) - 5
    b = from_numpy(a, backend=backend)
    be = hessinv_ref.backend._make(backend)
    assert be.is_array(b) and tuple(b.shape) == a.shape
    if be.device is not None:
        assert b.device == be.device
    back = to_numpy(b)
    assert isinstance(back, np.ndarray) and back.dtype == a.dtype
    np.testing.assert_array_equal(back, a)
    # from_numpy is an explicit copy: writing to the source never shows on
    # the device; to_numpy copies off a device (a NumPy array it may return
    # as is, as documented)
    a[0, 1] = 77
    assert to_numpy(b)[0, 1] == -4
    if backend != "numpy":
        back[0, 0] = 99
        assert to_numpy(b)[0, 0] == -5


def test_from_numpy_defaults_to_the_active_backend_and_accepts_array_likes():
    with use_backend(STRICT) as be:
        b = from_numpy([[1.0, 2.0]])
        assert be.is_array(b) and b.device == be.device
    with use_backend("numpy"):
        assert isinstance(from_numpy([1, 2]), np.ndarray)
    assert to_numpy(3.5) == 3.5


def test_strict_arrays_really_refuse_implicit_conversion():
    """The premise of the strict CI pass: a stray ``np.`` call on a device
    array fails instead of copying it to the host."""
    b = from_numpy(np.ones(3), backend=STRICT)
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        np.asarray(b)
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        np.sin(b)


# -- the guard against mixing -------------------------------------------------------------


def _strict_problem():
    with use_backend(STRICT):
        net, params, X, y = random_problem(3, 2, 2, seed=0)
        v = from_numpy(np.ones(net.n_params))
    return net, params, X, y, v


def test_backend_asarray_names_the_argument():
    with use_backend(STRICT) as be:
        with pytest.raises(TypeError, match=r"^v: expected a array_api_strict array .*from_numpy"):
            be.asarray(np.ones(3), "v")
        with pytest.raises(ValueError, match=r"^v: expected an array on .*device1.*mixing devices"):
            be.asarray(array_api_strict.asarray([1.0, 2.0]), "v")
        a = be.asarray([1.0, 2.0], "v", dtype=be.dtype("float32"))  # lists are converted
        assert a.dtype == be.dtype("float32") and a.device == be.device
    with use_backend("numpy") as be:
        with pytest.raises(TypeError, match=r"^v: expected a numpy array .*to_numpy"):
            be.asarray(from_numpy(np.ones(3), backend=STRICT), "v")


@pytest.mark.parametrize("arg", ["params", "param dicts", "X", "y", "v"])
def test_numpy_arrays_under_the_strict_backend_are_refused_naming_the_argument(arg):
    net, params, X, y, v = _strict_problem()
    args = dict(params=params, X=X, y=y, v=v)
    with use_backend(STRICT):
        if arg == "param dicts":  # the list of {"weight", "bias"} dicts, in NumPy
            arg, args["params"] = "params", [{k: to_numpy(a) for k, a in d.items()} for d in params]
        else:
            args[arg] = to_numpy(net.flatten(params) if arg == "params" else args[arg])
        with pytest.raises(TypeError, match=rf"{arg}\b.*numpy"):
            hvp(net, args["params"], args["X"], args["y"], args["v"])
        if arg != "v":
            with pytest.raises(TypeError, match=rf"{arg}\b.*numpy"):
                Curvature(net, args["params"], args["X"], args["y"])


def test_numpy_right_hand_sides_under_the_strict_backend_are_refused():
    net, params, X, y, v = _strict_problem()
    g = np.ones(net.n_params)
    with use_backend(STRICT):
        with pytest.raises(TypeError, match=r"\bg\b.*numpy"):
            solve(net, params, X, y, g, damping=0.1, method="riccati")
        with pytest.raises(TypeError, match=r"\bX\b.*numpy"):
            solve(net, params, to_numpy(X), y, v, damping=0.1, method="riccati")
        fact = factorize(net, params, X, y, damping=0.1, method="ldu")
        with pytest.raises(TypeError, match=r"\brhs\b.*numpy"):
            fact.solve(g)
        # the same data on the backend is fine
        assert fact.solve(v).shape == (net.n_params,)


def test_strict_arrays_under_the_numpy_backend_are_refused():
    with use_backend("numpy"):
        net, params, X, y = random_problem(3, 2, 2, seed=0)
        v = np.ones(net.n_params)
        Xs = from_numpy(X, backend=STRICT)
        with pytest.raises(TypeError, match=r"\bX\b.*array_api_strict"):
            hvp(net, params, Xs, y, v)
        with pytest.raises(TypeError, match=r"\bv\b.*array_api_strict"):
            hvp(net, params, X, y, from_numpy(v, backend=STRICT))
        fact = factorize(net, params, X, y, damping=0.1, method="riccati")
        with pytest.raises(TypeError, match=r"\brhs\b.*array_api_strict"):
            fact.solve(from_numpy(v, backend=STRICT))


def test_strict_arrays_on_another_device_are_refused():
    """An array of the right library on the CPU device, not device1: a
    ValueError about devices, never an implicit transfer."""
    net, params, X, y, v = _strict_problem()
    X_cpu = array_api_strict.asarray(to_numpy(X))  # the default device
    v_cpu = array_api_strict.asarray(to_numpy(v))
    assert X_cpu.device != X.device
    with use_backend(STRICT):
        with pytest.raises(ValueError, match=r"\bX\b.*device"):
            hvp(net, params, X_cpu, y, v)
        with pytest.raises(ValueError, match=r"\bv\b.*device"):
            hvp(net, params, X, y, v_cpu)
        with pytest.raises(ValueError, match=r"\bX\b.*device"):
            Curvature(net, params, X_cpu, y)


def test_results_stay_on_the_device_of_the_inputs():
    net, params, X, y, v = _strict_problem()
    with use_backend(STRICT) as be:
        for out in (hvp(net, params, X, y, v), solve(net, params, X, y, v, damping=0.1, method="riccati")):
            assert be.is_array(out) and out.device == be.device


# -- fallbacks for what the standard lacks ---------------------------------------------------


def test_erfc_fallback_against_scipy():
    """The series / continued fraction of ``_erfc_array_api`` against SciPy on
    ``[-6, 26]`` (beyond 26, erfc underflows double precision), on NumPy's
    namespace and through the strict backend's ``erfc``."""
    u = np.concatenate([np.linspace(-6.0, 26.0, 64001), [-1.5, 1.5, -1e-300, 0.0, 1e-300]])
    ref = scipy.special.erfc(u)
    assert np.all(ref > 0)
    rel = np.abs(_erfc_array_api(np, u) - ref) / ref
    assert rel.max() < 1e-13, rel.max()
    with use_backend(STRICT) as be:
        got = to_numpy(be.erfc(from_numpy(u)))
    assert np.max(np.abs(got - ref) / ref) < 1e-13


def test_expit_fallback_against_scipy_without_overflow():
    u = np.concatenate([np.linspace(-700.0, 700.0, 14001), [-709.0, 709.0, 0.0, -1e-300, 1e-300, -40.0, 40.0]])
    ref = scipy.special.expit(u)
    with use_backend(STRICT) as be:
        assert type(be).expit is hessinv_ref.backend.Backend.expit  # the generic form
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            got = to_numpy(be.expit(from_numpy(u)))
    assert np.all(np.isfinite(got))
    # 1/(1+e) and e/(1+e) with e = exp(-|u|): a few roundings, relative
    # accuracy in both tails (measured: 1.5 eps)
    np.testing.assert_allclose(got, ref, rtol=4 * EPS, atol=0)
    assert got[np.argmax(u == 700.0)] == 1.0 and 0 < got[np.argmax(u == -700.0)] < 1e-300


def _matrices(n, seeds=range(4)):
    return [np.random.default_rng([n, s]).standard_normal((n, n)) for s in seeds]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_generic_dense_lu_against_lapack(n):
    """The generic :class:`DenseLU` (``xp.linalg``; exact condition number)
    against the NumPy backend's LAPACK ``getrf``/``getrs``/``gecon``."""
    rng = np.random.default_rng(n)
    R = rng.standard_normal((n, 3))
    for A in _matrices(n):
        with use_backend("numpy") as be:
            lapack = be.lu(A)
            ref, ref_T = lapack.solve(R), lapack.solve(R, trans=True)
            ref_det = lapack.slogdet()
        with use_backend(STRICT) as be:
            lu = be.lu(from_numpy(A))
            assert type(lu) is DenseLU
            got, got_T = to_numpy(lu.solve(from_numpy(R))), to_numpy(lu.solve(from_numpy(R), trans=True))
            sign, logabs = lu.slogdet()
        kappa = np.linalg.cond(A, 1)
        tol = 10 * n * EPS * kappa
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.abs(ref).max())
        np.testing.assert_allclose(got_T, ref_T, rtol=0, atol=tol * np.abs(ref_T).max())
        np.testing.assert_allclose(A.T @ got_T, R, rtol=0, atol=tol * np.abs(R).max())
        assert sign == ref_det[0] and logabs == pytest.approx(ref_det[1], rel=0, abs=10 * n * EPS * kappa)
        # the generic rcond is exact; LAPACK's is an estimate from below of
        # ||A^-1||_1, so its rcond is larger, in practice by less than 3x
        exact = 1.0 / (np.linalg.norm(A, 1) * np.linalg.norm(np.linalg.inv(A), 1))
        assert lu.rcond == pytest.approx(exact, rel=1e-10)
        assert exact * (1 - 1e-10) <= lapack.rcond <= 3 * exact


def test_generic_dense_lu_of_a_singular_matrix_has_rcond_zero():
    with use_backend(STRICT) as be:
        assert be.lu(from_numpy(np.array([[1.0, 2.0], [2.0, 4.0]]))).rcond == 0.0


@pytest.mark.parametrize("backend", ["numpy", STRICT])
def test_cholesky_solves_and_refuses_indefinite_matrices(backend):
    M = np.random.default_rng(0).standard_normal((4, 4))
    A = M @ M.T + 0.5 * np.eye(4)
    indefinite = A - 2 * np.linalg.eigvalsh(A)[1] * np.eye(4)  # two negative eigenvalues
    R = np.arange(8.0).reshape(4, 2)
    with use_backend(backend) as be:
        C = be.cholesky(from_numpy(A))
        assert C is not None
        Cn = to_numpy(C)
        np.testing.assert_allclose(np.tril(Cn), Cn, rtol=0, atol=0)  # lower triangular
        np.testing.assert_allclose(Cn @ Cn.T, A, rtol=0, atol=10 * EPS * np.abs(A).max())
        X = to_numpy(be.cho_solve(C, from_numpy(R)))
        rcond = be.cho_rcond(C, from_numpy(A))
        assert be.cholesky(from_numpy(indefinite)) is None
        assert be.cholesky(from_numpy(np.diag([1.0, 0.0, 1.0, 1.0]) - 1e-3 * np.eye(4))) is None
    np.testing.assert_allclose(X, np.linalg.solve(A, R), rtol=1e-12)
    exact = 1.0 / (np.linalg.norm(A, 1) * np.linalg.norm(np.linalg.inv(A), 1))
    assert exact * (1 - 1e-10) <= rcond <= 3 * exact


@pytest.mark.parametrize("backend", ["numpy", STRICT])
def test_symmetric_eigenvalues(backend):
    M = np.random.default_rng(1).standard_normal((5, 5))
    A = M + M.T
    with use_backend(backend) as be:
        w = to_numpy(be.eigvalsh(from_numpy(A)))
    ref = np.linalg.eigvalsh(A)
    scale = 10 * 5 * EPS * np.abs(ref).max()
    np.testing.assert_allclose(w, ref, rtol=0, atol=scale)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 10])
def test_generic_onenormest_is_hagers_estimate(n):
    """Hager's algorithm: a lower bound of ``‖A‖_1`` attained by some column
    (so at least ``‖A‖_1 / n``, the largest column being the norm), and exact
    for a matrix with nonnegative entries (the sign vector is then all ones,
    and the next step picks the largest column)."""
    with use_backend(STRICT) as be:
        f64 = be.dtype("float64")
        for s in range(5):
            M = np.random.default_rng([n, s]).standard_normal((n, n))
            for A in (M @ M.T + 0.1 * np.eye(n), np.abs(M) @ np.abs(M).T + np.eye(n)):
                Ab = from_numpy(A)
                est = be.onenormest(lambda x: Ab @ x, n, f64)
                exact = np.linalg.norm(A, 1)
                assert isinstance(est, float)
                assert exact / n <= est <= exact * (1 + 1e-12)
                if np.all(A >= 0):
                    assert est == pytest.approx(exact, rel=1e-14)


def test_numpy_only_operations_refuse_elsewhere_naming_the_backend():
    with use_backend(STRICT) as be:
        with pytest.raises(BackendNotSupportedError, match=r"banded LU.*'array_api_strict' backend"):
            be.solve_banded()
        with pytest.raises(BackendNotSupportedError, match=r"'cg'.*'array_api_strict' backend"):
            be.krylov("cg")
        with pytest.raises(BackendNotSupportedError, match=r"LinearOperator.*'array_api_strict' backend"):
            be.linear_operator((2, 2), lambda x: x, be.dtype("float64"))
    assert issubclass(BackendNotSupportedError, NotImplementedError)
    with use_backend("numpy") as be:
        assert callable(be.krylov("minres")) and hasattr(be.solve_banded(), "dgbtrf")


def test_read_only_marks_numpy_arrays_only():
    with use_backend("numpy") as be:
        a = be.read_only(np.ones(2))
        assert not a.flags.writeable
    with use_backend(STRICT) as be:
        b = from_numpy(np.ones(2))
        assert be.read_only(b) is b


def test_the_namespace_proxy_names_the_active_backend():
    with use_backend(STRICT):
        assert STRICT in repr(xp)
        assert xp.linalg is array_api_strict.linalg
    assert math.isfinite(float(xp.sum(xp.ones(3, device=get_backend().device))))


# -- the namespace of the data, and a point that keeps its backend -----------------------


def test_namespace_of_names_the_backend_of_the_arrays_whichever_is_active():
    a, b = np.ones(3), from_numpy(np.ones(3), backend=STRICT)
    for active in ("numpy", STRICT):
        with use_backend(active):
            assert namespace_of(a).name == "numpy" and namespace_of(a, a[:1]).xp is np
            assert namespace_of(b).name == STRICT and namespace_of(b, b) is namespace_of(b)
    with use_backend(STRICT) as be:
        assert namespace_of(b) is be  # the registry's one instance per backend


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((), r"at least one array"),
        (([1.0, 2.0],), r"got builtins\.list"),
        ((2.5,), r"got builtins\.float"),
        ((np.ones(2), "device1"), r"got builtins\.str"),
    ],
)
def test_namespace_of_refuses_what_is_no_backends_array(args, match):
    with pytest.raises(TypeError, match=match):
        namespace_of(*args)


def test_namespace_of_refuses_arrays_of_two_backends():
    with pytest.raises(TypeError, match=r"one backend, got a numpy array and a array_api_strict array"):
        namespace_of(np.ones(2), from_numpy(np.ones(2), backend=STRICT))


def _what_a_point_computes(curv, v, g):
    """Everything a curvature computes from its cached passes, as arrays of
    its backend (and the default route's name)."""
    out = {"hvp": curv.hvp(v), "hessian": curv.hessian(), "gradient": curv.gradient(),
           "default method": curv.factorize(0.1).method}
    methods = ("riccati", "ldu", "dense") + (("banded",) if curv.backend.name == "numpy" else ())
    for method in methods:
        fact = curv.factorize(0.1, method)
        out[method] = fact.solve(g)
        out[f"{method} matvec"] = fact.matvec(g)
        out[f"{method} logdet"] = fact.logdet()
    return out


@pytest.mark.parametrize(("built_on", "then"), [("numpy", STRICT), (STRICT, "numpy")])
def test_a_curvature_keeps_computing_on_the_backend_it_was_built_on(built_on, then):
    """The explicit idiom: a point reads the active backend once, and its
    routes use the point's backend, so switching the active backend
    afterwards changes nothing it computes: the same arrays, of its own
    backend, equal to the last bit to what it computed before the switch."""
    with use_backend(built_on) as be:
        net, params, X, y = random_problem(4, 3, 2, seed=0)
        v, g = from_numpy(np.linspace(-1.0, 1.0, net.n_params)), from_numpy(np.ones(net.n_params))
        curv = Curvature(net, params, X, y)
        before = _what_a_point_computes(curv, v, g)
    with use_backend(then):
        after = _what_a_point_computes(curv, v, g)
    assert after["default method"] == before["default method"] == ("banded" if built_on == "numpy" else "riccati")
    for what, value in after.items():
        if what.endswith(("logdet", "method")):
            assert value == before[what], what
            continue
        assert be.is_array(value) and value.device == before[what].device, what
        np.testing.assert_array_equal(to_numpy(value), to_numpy(before[what]), err_msg=what)
    if built_on == "numpy":  # the display-only sparse factors follow the data too
        assert curv.polynomial().M.shape == (curv.layout.t_offsets[-1],) * 2


def test_after_a_switch_new_inputs_follow_the_active_backend_and_old_points_their_own():
    with use_backend("numpy"):
        net, params, X, y = random_problem(3, 2, 2, seed=0)
        curv = Curvature(net, params, X, y)
    with use_backend(STRICT):
        # new inputs are checked against the active backend, as before
        with pytest.raises(TypeError, match=r"^params\[0\].*weight: expected a array_api_strict array \(the active "
                                            r"backend is 'array_api_strict'\)"):
            Curvature(net, params, X, y)
        # a vector for the old point must belong to the point's backend
        v = from_numpy(np.ones(net.n_params))
        with pytest.raises(TypeError, match=r"^v: expected a numpy array \(the point it goes with was built "
                                            r"on the 'numpy' backend\).*to_numpy"):
            curv.hvp(v)
        with pytest.raises(TypeError, match=r"^rhs: expected a numpy array \(the point it goes with"):
            curv.factorize(0.1, "riccati").solve(v)
