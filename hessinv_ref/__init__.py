"""hessinv_ref: a pure-NumPy reference for exact Hessian-inverse-vector
products of deep chains in time linear in depth.

See ``math.md`` in the design notes and the documentation for the notation.
"""

from .activations import ACTIVATIONS, Activation, get_activation
from .curvature import Curvature, LayerBlocks
from .dense import DenseFactorization, hessian
from .factorization import Factorization, IllConditionedPivotWarning, SingularPivotError
from .inverse import DEFAULT_METHOD, METHODS, factorize, solve
from .operators import hessian_operator, inverse_operator
from .rop import hvp, polynomial_hvp
from .layers import Dense, Layer, LossHead, Residual, SoftmaxCrossEntropy, SquaredError
from .network import Network
from .polynomial import HessianPolynomial

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_METHOD",
    "DenseFactorization",
    "Factorization",
    "IllConditionedPivotWarning",
    "METHODS",
    "SingularPivotError",
    "factorize",
    "hessian_operator",
    "inverse_operator",
    "solve",
    "Activation",
    "Curvature",
    "Dense",
    "HessianPolynomial",
    "Layer",
    "LayerBlocks",
    "LossHead",
    "Network",
    "Residual",
    "SoftmaxCrossEntropy",
    "SquaredError",
    "get_activation",
    "hessian",
    "hvp",
    "polynomial_hvp",
]
