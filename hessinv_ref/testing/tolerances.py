r"""The scales and the safety factor that the oracle kit's tolerances are made of.

One place for them, so the assert helpers (:mod:`hessinv_ref.testing.asserts`),
their diagnosis (:mod:`hessinv_ref.testing.diagnose`), the layer check's
rounding rows (:mod:`hessinv_ref.testing.check`) and the golden files
(:mod:`hessinv_ref.golden`) judge with the same numbers.  The machine
epsilon they multiply is :data:`hessinv_ref.backend.constants.EPS`.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..backend.constants import EPS

__all__ = ["C_TOL", "gradient_scale", "zero_band"]

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


def zero_band(w):
    r"""The band :math:`n\, ε \max_j |λ_j|` around zero in which an eigenvalue
    of a symmetric :math:`n \times n` matrix counts as zero.

    Rounding the matrix's entries moves every eigenvalue by about
    :math:`ε \|A\|_2` per term of the :math:`n`-term sums that form it, so an
    eigenvalue inside the band has no determined sign and the matrix is
    numerically singular: the oracle then refuses to solve with it
    (:func:`~hessinv_ref.testing.assert_inverse_hvp_close`,
    :func:`hessinv_ref.golden.verify`, the diagnosis) and counts the
    eigenvalue as zero in an inertia.

    Parameters
    ----------
    w : numpy.ndarray, shape (n,)
        The eigenvalues (``numpy.linalg.eigvalsh``).

    Returns
    -------
    float
    """
    return w.shape[0] * EPS * float(np.max(np.abs(w)))
