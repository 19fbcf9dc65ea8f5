"""The scales and the safety factor that the oracle kit's tolerances are made of.

One place for them, so the assert helpers (:mod:`hessinv_ref.testing.asserts`),
their diagnosis (:mod:`hessinv_ref.testing.diagnose`) and the golden files
(:mod:`hessinv_ref.golden`) judge with the same numbers.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy

__all__ = ["C_TOL", "gradient_scale"]

C_TOL = 100.0
"""Safety factor of the default tolerances (see the module notes)."""


def gradient_scale(curv):
    r"""The scale of the terms that backprop adds into the gradient,
    :math:`S_g = \max_l \max |b_l|^T |J_{x,l}|` (1 when it is 0): rounding
    in :math:`g_l = b_l J_{x,l}` is relative to it, not to :math:`|g|`,
    which can be small by cancellation."""
    S = max(float(np.max(np.abs(to_numpy(curv.b[l])) @ np.abs(to_numpy(blk.Jx)), initial=0.0))
            for l, blk in enumerate(curv.blocks, start=1))
    return S if S > 0 else 1.0
