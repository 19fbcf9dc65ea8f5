"""hessinv_ref: a reference for exact Hessian-inverse-vector products of
deep chains in time linear in depth, on NumPy by default and on CuPy (or
any backend of :mod:`hessinv_ref.backend`) after ``set_backend``.

Docstrings use the notation of the documentation's notation page,
``docs/theory/notation.md``, and cite its sections as "notation §N".
"""

from .activations import ACTIVATIONS, Activation, get_activation
from .backend import BACKENDS, from_numpy, get_backend, set_backend, to_numpy, use_backend
from .curvature import Curvature, LayerBlocks
from .dense import DenseFactorization, hessian
from .factorization import Factorization, IllConditionedPivotWarning, SingularPivotError
from .finite import NonFiniteError
from .inverse import DEFAULT_METHOD, METHODS, factorize, solve
from .operators import hessian_operator, inverse_operator
from .rop import hvp, polynomial_hvp
from .layers import Dense, Layer, LossHead, Residual, SoftmaxCrossEntropy, SquaredError
from .network import Network
from .polynomial import HessianPolynomial

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "DEFAULT_METHOD",
    "DenseFactorization",
    "Factorization",
    "IllConditionedPivotWarning",
    "METHODS",
    "NonFiniteError",
    "SingularPivotError",
    "factorize",
    "from_numpy",
    "get_backend",
    "hessian_operator",
    "inverse_operator",
    "set_backend",
    "solve",
    "to_numpy",
    "use_backend",
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
