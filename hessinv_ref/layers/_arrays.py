"""Array helpers of the layers, written with the Array API standard alone.

The standard has no ``kron`` and no ``block_diag``, and NumPy runs its
``stack`` as a Python loop; these three build what the layers' blocks need
from identity matrices (Kronecker deltas) broadcast against the values and
from ``concat``, never by integer-array indexing or by writing through a
view.
"""

from __future__ import annotations

from ..backend import namespace_of


def _eye(n, like):
    """The identity of size ``n`` in the dtype and on the device (and the
    backend) of ``like``."""
    return namespace_of(like).xp.eye(n, dtype=like.dtype, device=like.device)


def _stack(arrays):
    """``xp.stack(arrays)`` for a long list of same-shape arrays: NumPy's
    ``stack`` loops over them in Python, ``concat`` in C, and the reshape
    back to (R, ...) is the same array."""
    xp = namespace_of(arrays[0]).xp
    return xp.reshape(xp.concat(arrays, axis=0), (len(arrays),) + tuple(arrays[0].shape))


def _block_diag(blocks):
    r"""Block-diagonal matrix from a stack of blocks of shape (B, r, c):
    shape (B r, B c), entry :math:`[(i,a),(j,b)] = δ_{ij}\, \mathrm{blocks}[i,a,b]`.

    The Kronecker delta is the identity :math:`I_B` broadcast against the
    blocks (the Array API has no ``block_diag``)."""
    B, r, c = blocks.shape
    delta = _eye(B, blocks)[:, None, :, None]           # (B, 1, B, 1): δ_ij
    return namespace_of(blocks).xp.reshape(delta * blocks[:, :, None, :], (B * r, B * c))
