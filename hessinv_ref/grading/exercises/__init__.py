"""The exercise set: one module per exercise, each with its checks.

Every module defines

* ``NUMBER`` and ``TITLE``;
* ``FILE``: the name of the student file (``tutorials/exercises/FILE``);
* ``NAMES``: what the student's notebook must define;
* ``CHECKS``: a list of :class:`~hessinv_ref.grading.harness.Check`;
* ``forbidden()``: ``(function, label)`` pairs the student's code must not
  call: the reference the answers are graded against.
"""

from __future__ import annotations

import importlib

__all__ = ["EXERCISES", "get_exercise", "solver_functions"]

EXERCISES = {
    1: "ex01_activation",
    2: "ex02_dense_vjp_jvp",
    3: "ex03_dense_curvature",
    4: "ex04_pearlmutter",
    5: "ex05_backprop_matrix",
    6: "ex06_pivot",
    7: "ex07_block_ldu",
    8: "ex08_riccati",
    9: "ex09_new_layer",
}
"""Exercise number to module name (also the stem of the student file)."""


def get_exercise(number):
    """The module of exercise ``number``.

    Raises
    ------
    KeyError
        For a number that is not in the set; the message lists the set.
    """
    try:
        name = EXERCISES[int(number)]
    except (KeyError, ValueError, TypeError):
        raise KeyError(
            f"exercise: expected one of {sorted(EXERCISES)}, got {number!r}"
        ) from None
    return importlib.import_module(f"{__name__}.{name}")


def solver_functions():
    """Dense solvers whose use on a whole system the block exercises rule out."""
    import numpy.linalg
    import scipy.linalg
    import scipy.sparse.linalg

    found = []
    for module, names in (
        (numpy.linalg, ("solve", "inv", "lstsq", "pinv")),
        (scipy.linalg, ("solve", "inv", "lu_factor", "lu", "lstsq", "pinv", "cho_factor", "solve_banded")),
        (scipy.sparse.linalg, ("spsolve", "splu", "factorized")),
    ):
        for name in names:
            obj = getattr(module, name, None)
            if obj is not None:
                found.append((obj, f"{module.__name__}.{name}"))
    return found
