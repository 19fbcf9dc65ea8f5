"""Exercise 1: an activation's first and second derivatives.

Part 1 grades ``softplus``, ``softplus_d1`` and ``softplus_d2`` against the
library's :class:`~hessinv_ref.activations.Softplus`.  Part 2 grades the
student's own activation class ``MyActivation`` against central differences
of its own ``f``: any smooth, curved function will do.
"""

from __future__ import annotations

import numpy as np

from ...activations import ACTIVATIONS, Softplus
from ...testing.finite_differences import EPS
from ..harness import Cases, Check, CheckFailure, Variant, compare, expect, format_array

NUMBER = 1
TITLE = "An activation's f' and f'' (softplus, then one of your choice)"
FILE = "ex01_activation.md"
NAMES = ("softplus", "softplus_d1", "softplus_d2", "MyActivation")

_REF = ACTIVATIONS["softplus"]


def forbidden():
    """The library's softplus is the reference: the answer must not call it."""
    return [(Softplus.f, "hessinv_ref's Softplus.f"), (Softplus.df, "hessinv_ref's Softplus.df"),
            (Softplus.d2f, "hessinv_ref's Softplus.d2f")]


def _sig(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def _points(params):
    rng = np.random.default_rng(params["seed"])
    return params["scale"] * rng.standard_normal(params["shape"])


def _describe(params):
    u = _points(params)
    return (f"u = {params['scale']} * standard normal of shape {params['shape']} (seed {params['seed']}):\n"
            f"{format_array(u)}")


POINTS = Cases(
    seeded=[
        {"shape": (7,), "scale": 2.0, "seed": 0},
        {"shape": (2, 3), "scale": 1.0, "seed": 1},
        {"shape": (4,), "scale": 8.0, "seed": 2},
    ],
    space={"shape": [(1,), (5,), (2, 3), (3, 1, 2)], "scale": [0.5, 1.0, 3.0, 10.0], "seed": range(0, 2**16)},
    build=_points,
    describe=_describe,
)

# -- part 1: softplus ------------------------------------------------------------------


def check_softplus(student, u):
    compare("softplus(u)", student.call("softplus", u.copy()), _REF.f(u), rtol=1e-9, variants=[
        Variant("that is log(1 + e^(-u)) = softplus(-u): the sign inside the exponential is off", np.logaddexp(0, -u)),
        Variant("that is relu, max(u, 0); softplus is its smooth version log(1 + e^u)", np.maximum(u, 0)),
    ])


def check_softplus_d1(student, u):
    s = _sig(u)
    compare("softplus_d1(u)", student.call("softplus_d1", u.copy()), _REF.df(u), rtol=1e-9, variants=[
        Variant("you returned the second derivative s(u)(1 - s(u)); f'(u) is the logistic sigmoid "
                "s(u) = 1 / (1 + e^(-u))", s * (1 - s)),
        Variant("1 / (1 + e^u) is s(-u): the sign in the exponential is off; f'(u) = 1 / (1 + e^(-u))", _sig(-u)),
        Variant("e^u is missing the denominator: d/du log(1 + e^u) = e^u / (1 + e^u)", np.exp(np.minimum(u, 700))),
        Variant("you returned f itself, log(1 + e^u), not its derivative", np.logaddexp(0, u)),
    ])


def check_softplus_d2(student, u):
    s = _sig(u)
    compare("softplus_d2(u)", student.call("softplus_d2", u.copy()), _REF.d2f(u), rtol=1e-9, variants=[
        Variant("you used σ' where σ'' belongs: s(u) is f'(u); f''(u) = s(u)(1 - s(u))", s),
        Variant("one derivative too many: s(1 - s)(1 - 2s) is the sigmoid's second derivative, i.e. "
                "softplus's f'''; f'' = s(1 - s)", s * (1 - s) * (1 - 2 * s)),
        Variant("s(1 + s) has the wrong sign inside: d/du s(u) = s(u)(1 - s(u))", s * (1 + s)),
    ])


_EXTREME = np.array([-1000.0, -745.0, -100.0, -30.0, 0.0, 30.0, 100.0, 709.5, 710.0, 1000.0])
_OVERFLOW_HINTS = {
    "softplus": "log(1 + exp(u)) overflows once exp(u) does (u > 709): write it as np.logaddexp(0, u), "
    "or max(u, 0) + log1p(exp(-|u|))",
    "softplus_d1": "exp(u) / (1 + exp(u)) is inf/inf = nan for large u: use 1 / (1 + exp(-u)), "
    "or 0.5 * (1 + tanh(u / 2)), which cannot overflow",
    "softplus_d2": "a formula with exp(u) in a numerator and a denominator is inf/inf for large u: "
    "write f'' through s(u) = f'(u) as s (1 - s)",
}


def check_stable(student, _case):
    u = _EXTREME
    for name, ref in (("softplus", _REF.f), ("softplus_d1", _REF.df), ("softplus_d2", _REF.d2f)):
        with np.errstate(all="ignore"):
            got = np.asarray(student.call(name, u.copy()), dtype=np.float64)
        if got.shape == u.shape and not np.all(np.isfinite(got)):
            bad = u[~np.isfinite(got)]
            raise CheckFailure(
                f"{name}(u) is not finite at u = {format_array(bad)}",
                case=f"u = {format_array(u)}",
                expected=format_array(ref(u)),
                actual=format_array(got),
                hint=_OVERFLOW_HINTS[name],
            )
        compare(f"{name}(u)", got, ref(u), rtol=1e-9, hint=_OVERFLOW_HINTS[name])


# -- part 2: the student's own activation ---------------------------------------------------


def _activation(student):
    obj = student.get("MyActivation")
    if isinstance(obj, type):
        obj = student.invoke("MyActivation()", obj)
    for method in ("f", "df", "d2f"):
        if not callable(getattr(obj, method, None)):
            raise CheckFailure(f"MyActivation has no method `{method}`",
                               hint="define f, df and d2f, each taking an array u and returning an array like it")
    return obj


def _call(student, act, method, u):
    with np.errstate(all="ignore"):
        return np.asarray(student.invoke(f"MyActivation.{method}", getattr(act, method), u.copy()), dtype=np.float64)


def check_interface(student, _case):
    act = _activation(student)
    u = np.linspace(-3.0, 3.0, 13).reshape(13) + 0.0137
    U = u.reshape(13, 1) * np.array([1.0, -0.5])
    for method in ("f", "df", "d2f"):
        got = _call(student, act, method, U)
        expect(got.shape == U.shape, f"MyActivation.{method} maps an array of shape {U.shape} to shape {got.shape}",
               hint="an activation works elementwise: return an array of the shape of u")
        expect(bool(np.all(np.isfinite(got))), f"MyActivation.{method} is not finite on [-3, 3]",
               actual=format_array(got), hint="look for a division by zero or the log of a number <= 0 at "
               "some u in [-3, 3] (u = 0 is among them)")
        flat = _call(student, act, method, U.ravel())
        expect(np.allclose(flat.reshape(U.shape), got, rtol=1e-12, atol=1e-14),
               f"MyActivation.{method} gives different values for the same u in a 2-D array",
               hint="act elementwise: do not sum or reduce over an axis")
    expect(bool(np.any(np.abs(_call(student, act, "d2f", u)) > 1e-8)),
           "MyActivation.d2f is zero everywhere on [-3, 3]",
           hint="choose an activation with curvature (σ'' ≠ 0): the Hessian exercises need it. "
           "Ideas: arctan, softsign u/(1+|u|), ELU, mish, a scaled swish")


def _fd_d1(fn, u):
    """Central difference of an elementwise ``fn`` with a step scaled to each |u|."""
    h = np.cbrt(EPS) * np.maximum(1.0, np.abs(u))
    up, um = u + h, u - h
    return (fn(up) - fn(um)) / (up - um)


def _fd_d2(fn, u):
    """Second central difference, step ``eps^(1/4)`` (balances h^2 truncation and eps/h^2 rounding)."""
    h = EPS ** 0.25 * np.maximum(1.0, np.abs(u))
    return (fn(u + h) - 2.0 * fn(u) + fn(u - h)) / (h * h)


def check_custom_df(student, u):
    act = _activation(student)
    got = _call(student, act, "df", u)
    fd = _fd_d1(lambda w: _call(student, act, "f", w), u)
    scale = max(1.0, float(np.max(np.abs(_call(student, act, "f", u)))))
    compare("MyActivation.df(u)", got, fd, rtol=1e-6, atol=1e-6 * scale, variants=[
        Variant("your df returns f itself, not its derivative", lambda: _call(student, act, "f", u)),
        Variant("your df returns what d2f should: are the two swapped?", lambda: _call(student, act, "d2f", u)),
    ], hint="df must be the derivative of your f: compare them by a finite difference, (f(u+h) - f(u-h)) / 2h")


def check_custom_d2f(student, u):
    act = _activation(student)
    got = _call(student, act, "d2f", u)
    fd = _fd_d2(lambda w: _call(student, act, "f", w), u)
    scale = max(1.0, float(np.max(np.abs(_call(student, act, "f", u)))))
    compare("MyActivation.d2f(u)", got, fd, rtol=1e-5, atol=1e-5 * scale, variants=[
        Variant("you used σ' where σ'' belongs: your d2f returns the same values as your df",
                lambda: _call(student, act, "df", u)),
        Variant("your d2f is the derivative of your df, but df itself is not the derivative of f: fix df first",
                lambda: _fd_d1(lambda w: _call(student, act, "df", w), u)),
    ], hint="d2f must be the derivative of f': check it by a finite difference of your df")


CHECKS = [
    Check("softplus", "softplus(u) = log(1 + e^u)", check_softplus, POINTS),
    Check("softplus_d1", "softplus_d1(u) = f'(u)", check_softplus_d1, POINTS),
    Check("softplus_d2", "softplus_d2(u) = f''(u)", check_softplus_d2, POINTS),
    Check("softplus_stable", "softplus and derivatives finite for |u| up to 1000", check_stable),
    Check("custom_interface", "MyActivation: elementwise f, df, d2f with curvature", check_interface),
    Check("custom_df", "MyActivation.df matches central differences of f", check_custom_df, POINTS),
    Check("custom_d2f", "MyActivation.d2f matches second differences of f", check_custom_d2f, POINTS),
]
