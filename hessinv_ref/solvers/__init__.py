"""The inverse routes: lifted system, block LDU, banded LU, Riccati, Krylov."""

from .banded import BandedFactorization
from .krylov import KrylovBreakdownWarning, KrylovConvergenceWarning, KrylovSolver
from .ldu import LDUFactorization
from .lifted import BlockTridiagonal, LiftedSystem, Pivot, pivoted_blocks
from .riccati import RiccatiFactorization, SymmetricPivot

__all__ = [
    "BandedFactorization",
    "BlockTridiagonal",
    "KrylovBreakdownWarning",
    "KrylovConvergenceWarning",
    "KrylovSolver",
    "LDUFactorization",
    "LiftedSystem",
    "Pivot",
    "RiccatiFactorization",
    "SymmetricPivot",
    "pivoted_blocks",
]
