"""Cases and helpers several exercises share."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ...activations import ACTIVATIONS
from ...layers import Dense
from ...testing import random_problem
from ..harness import Cases, CheckFailure, format_array

SMOOTH = ("tanh", "softplus", "sigmoid", "gelu", "silu")
"""Activations with a second derivative everywhere (relu's is taken as 0)."""

# -- a single Dense layer with all its inputs -------------------------------------------------


def dense_case(params):
    """A Dense layer at a random point, plus directions: every input of exercises 2 and 3.

    Arrays are in matrix form: ``Z, T`` (B, n_in), ``W, V_W`` (n_out, n_in),
    ``c, v_c`` (n_out,), ``b_out`` (B, n_out).
    """
    n_in, n_out, B = params["n_in"], params["n_out"], params["batch"]
    rng = np.random.default_rng(params["seed"])
    bound = 1.5 / np.sqrt(n_in)
    case = SimpleNamespace(
        n_in=n_in, n_out=n_out, B=B,
        act=ACTIVATIONS[params["activation"]],
        W=rng.uniform(-bound, bound, (n_out, n_in)),
        c=rng.uniform(-bound, bound, n_out),
        Z=rng.standard_normal((B, n_in)),
        b_out=rng.standard_normal((B, n_out)),
        T=rng.standard_normal((B, n_in)),
        V_W=rng.standard_normal((n_out, n_in)),
        v_c=rng.standard_normal(n_out),
    )
    case.layer = Dense(n_in, n_out, params["activation"])
    case.x = case.layer.pack(case.W, case.c)
    return case


def describe_dense(params, names=("W", "c", "Z", "b_out")):
    case = dense_case(params)
    head = (f"Dense(n_in={params['n_in']}, n_out={params['n_out']}, activation={params['activation']!r}), "
            f"batch B={params['batch']}, seed {params['seed']}")
    parts = [head]
    for name in names:
        parts.append(format_array(getattr(case, name), prefix=f"{name} = "))
    return "\n".join(parts)


def dense_cases(names=("W", "c", "Z", "b_out")):
    """Seeded cases include a square W (so a transposed answer has the right
    shape and must be caught by value) and a batch of more than one sample
    (so a batch mean differs from a batch sum)."""
    return Cases(
        seeded=[
            {"n_in": 3, "n_out": 2, "batch": 2, "activation": "tanh", "seed": 0},
            {"n_in": 2, "n_out": 2, "batch": 3, "activation": "softplus", "seed": 1},
            {"n_in": 1, "n_out": 3, "batch": 1, "activation": "gelu", "seed": 2},
        ],
        space={"n_in": range(1, 5), "n_out": range(1, 5), "batch": range(1, 4),
               "activation": SMOOTH, "seed": range(0, 2**16)},
        build=dense_case,
        describe=lambda p: describe_dense(p, names),
    )


# -- whole networks ---------------------------------------------------------------------


PROBLEM_SPACE = {
    "depth": range(1, 5),
    "width": range(1, 4),
    "batch": range(1, 4),
    "layers": ["dense", "residual", "mixed"],
    "activation": list(SMOOTH),
    "head": ["softmax", "mse"],
    "scale": [1.0, 1.5],
    "seed": range(0, 2**16),
}


def problem(params):
    """``(net, params, X, y)`` from :func:`~hessinv_ref.testing.random_problem`."""
    keys = ("layers", "activation", "head", "scale", "seed", "n_classes")
    return random_problem(params["depth"], params["width"], params["batch"],
                          **{k: params[k] for k in keys if k in params})


def describe_problem(params):
    """The call that rebuilds the problem, for the student to paste."""
    args = ", ".join(f"{k}={params[k]!r}" for k in ("depth", "width", "batch"))
    kw = ", ".join(f"{k}={params[k]!r}" for k in ("layers", "activation", "head", "scale", "n_classes", "seed")
                   if k in params)
    return f"random_problem({args}, {kw})  (from hessinv_ref.testing)"


def problem_cases(seeded, build=problem, space=None):
    return Cases(seeded=seeded, space=dict(space or PROBLEM_SPACE), build=build, describe=describe_problem)


# -- results -------------------------------------------------------------------------


def unpack(value, n, fn, names):
    """Check that a student's function returned an ``n``-tuple; return it."""
    if value is None:
        raise CheckFailure(f"`{fn}` returned None, expected a tuple ({', '.join(names)})",
                           hint="a function without a `return` statement returns None: did you forget "
                           f"`return {', '.join(names)}`?")
    if not isinstance(value, (tuple, list)) or len(value) != n:
        got = f"a {type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        raise CheckFailure(f"`{fn}` must return a tuple ({', '.join(names)}), got {got}",
                           hint=f"end with `return {', '.join(names)}`")
    return tuple(value)


def direction(rng, n):
    return rng.standard_normal(n)
