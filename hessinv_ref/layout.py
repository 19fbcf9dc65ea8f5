r"""The block layout of a chain: where each layer's slice of a vector lives.

Every vector of the method is a stack of per-layer blocks.  A parameter
vector :math:`x = (x_1, \dots, x_L)` has blocks of sizes :math:`p_l`, in the
order of ``torch.nn.Linear`` (each layer's weight, row-major, then its
bias); a tangent :math:`t = (t_1, \dots, t_L)` or a multiplier
:math:`λ` has blocks of the activation sizes :math:`a_l` (batch included);
a vector over the layers' *inputs* :math:`(z_0, \dots, z_{L-1})` has blocks
:math:`a_{l-1}`.  :class:`BlockLayout` computes those boundaries once, and
every module that cuts a vector into layers (the network's flatten, the
curvature's split, the polynomial, the lifted system, the dense oracle)
asks it, instead of adding up sizes again.
"""

from __future__ import annotations

from itertools import accumulate

from .backend import namespace_of

__all__ = ["BlockLayout", "offsets"]


def offsets(sizes):
    """``(0, s_1, s_1 + s_2, ...)``: block boundaries as Python ints (the
    one place they are added up; the lifted system's blocks use it too)."""
    return tuple(accumulate(sizes, initial=0))


class BlockLayout:
    r"""Per-layer block sizes and offsets of a chain of ``L`` layers.

    Parameters
    ----------
    p : sequence of int
        Parameter counts ``(p_1, ..., p_L)``.
    a : sequence of int, optional
        Activation sizes ``(a_0, a_1, ..., a_L)``, batch included
        (``a_L = 1``: the loss).  Needed for the tangent and input offsets
        only; a layout of the parameters alone (``a=None``) serves
        ``flatten``, ``split`` and ``concat``.

    Attributes
    ----------
    L : int
        Number of layers.
    P : int
        :math:`P = \sum_l p_l`.
    x_offsets : tuple of int, length ``L + 1``
        Layer ``l``'s parameters are ``x[x_offsets[l-1]:x_offsets[l]]``.
    t_offsets, in_offsets : tuple of int, length ``L + 1``
        The same for a vector over the outputs :math:`t_1..t_L` (sizes
        ``a_1..a_L``) and over the inputs :math:`z_0..z_{L-1}` (sizes
        ``a_0..a_{L-1}``); ``None`` without ``a``.
    """

    def __init__(self, p, a=None):
        self.p = tuple(int(n) for n in p)
        self.a = None if a is None else tuple(int(n) for n in a)
        if self.a is not None and len(self.a) != len(self.p) + 1:
            raise ValueError(f"a: expected {len(self.p) + 1} sizes (a_0..a_L), got {len(self.a)}")
        self.L = len(self.p)
        self.x_offsets = offsets(self.p)
        self.P = self.x_offsets[-1]
        self.t_offsets = None if self.a is None else offsets(self.a[1:])
        self.in_offsets = None if self.a is None else offsets(self.a[:-1])

    @classmethod
    def of_blocks(cls, blocks):
        """The layout of per-layer :class:`~hessinv_ref.curvature.LayerBlocks`,
        read from their shapes: ``Jx`` is ``(a_l, p_l)``, ``Jz`` is
        ``(a_l, a_{l-1})``."""
        blocks = tuple(blocks)
        p = [blk.Jx.shape[1] for blk in blocks]
        a = [blocks[0].Jz.shape[1]] + [blk.Jz.shape[0] for blk in blocks]
        return cls(p, a)

    def __eq__(self, other):
        return isinstance(other, BlockLayout) and (self.p, self.a) == (other.p, other.a)

    def __hash__(self):
        return hash((self.p, self.a))

    def __repr__(self):
        return f"BlockLayout(p={self.p}, a={self.a})"

    def block(self, l):
        """The slice of layer ``l`` (1-based) in a parameter vector."""
        return slice(self.x_offsets[l - 1], self.x_offsets[l])

    def split(self, v):
        """Per-layer blocks ``[v_1, ..., v_L]`` of a (P,) vector or (P, k)
        matrix, each (p_l,) or (p_l, k) (views where the library has them)."""
        o = self.x_offsets
        # the trailing ``...``: the Array API wants an index for every axis
        return [v[o[l]:o[l + 1], ...] for l in range(self.L)]

    def concat(self, parts):
        """The inverse of :meth:`split`: ``L`` blocks stacked along axis 0."""
        if len(parts) != self.L:
            raise ValueError(f"parts: expected {self.L} blocks, got {len(parts)}")
        parts = list(parts)
        return namespace_of(parts[0]).xp.concat(parts, axis=0)
