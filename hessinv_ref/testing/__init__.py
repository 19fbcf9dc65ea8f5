"""The oracle kit: reproducible problems, layer and result checkers, and
finite-difference helpers.  Every checker returns a
:class:`~hessinv_ref.testing.report.Report` of
:class:`~hessinv_ref.testing.report.Check` rows.

Other test suites (this package's, and those of PyTorch, JAX or C++
implementations that use hessinv_ref as a correctness oracle) build on these.
The hypothesis strategies live in :mod:`hessinv_ref.testing.strategies`,
which is imported only on demand because it needs ``hypothesis``.
"""

from .asserts import (
    OracleProblem,
    assert_gradient_close,
    assert_hvp_close,
    assert_inverse_hvp_close,
    default_problems,
)
from .check import CheckResult, LayerCheckReport, check_layer
from .finite_differences import (
    central_directional,
    central_error_bound,
    central_jacobian,
    central_step,
)
from .problems import random_problem
from .report import Check, Report

__all__ = [
    "Check",
    "Report",
    "CheckResult",
    "LayerCheckReport",
    "OracleProblem",
    "assert_gradient_close",
    "assert_hvp_close",
    "assert_inverse_hvp_close",
    "check_layer",
    "default_problems",
    "central_directional",
    "central_error_bound",
    "central_jacobian",
    "central_step",
    "random_problem",
]
