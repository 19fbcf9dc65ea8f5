"""The block layout: sizes, offsets, split and concat of a chain's vectors.

The layout is bookkeeping every algorithm relies on, so it is checked
against what it describes: the shapes of a point's actual blocks and
passes, and the parameter slices of ``Network.flatten``.
"""

import numpy as np
import pytest

from _backend import B, N
from hessinv_ref import Curvature
from hessinv_ref.layout import BlockLayout, offsets
from hessinv_ref.testing import random_problem


def test_offsets_are_the_running_sums():
    assert offsets([3, 1, 4]) == (0, 3, 4, 8)
    assert offsets([]) == (0,)


@pytest.mark.parametrize("seed", range(4))
def test_a_points_layout_is_the_shape_of_its_blocks_and_passes(seed):
    rng = np.random.default_rng(seed)
    problem = random_problem(depth=int(rng.integers(1, 6)), width=int(rng.integers(1, 4)),
                             batch=int(rng.integers(1, 4)), layers="mixed", seed=seed)
    curv = Curvature(*problem)
    lay = curv.layout
    assert lay.p == tuple(int(x.shape[0]) for x in curv.xs)
    assert lay.a == tuple(int(z.shape[0]) for z in curv.z)
    assert lay == BlockLayout.of_blocks(curv.blocks) and hash(lay) == hash(BlockLayout.of_blocks(curv.blocks))
    assert lay.P == curv.P and lay.L == curv.depth
    assert lay.x_offsets == curv.net.offsets()
    assert lay.t_offsets[-1] == sum(lay.a[1:]) and lay.in_offsets[-1] == sum(lay.a[:-1])
    for l, blk in enumerate(curv.blocks, start=1):
        assert blk.Jx.shape[1] == lay.block(l).stop - lay.block(l).start


def test_split_and_concat_are_inverse_and_cut_where_the_parameters_are():
    net, params, X, y = random_problem(depth=4, width=3, batch=2, seed=1)
    lay = net.layout()
    theta = net.flatten(params)
    parts = lay.split(theta)
    assert [int(p.shape[0]) for p in parts] == list(lay.p)
    for l, (part, x) in enumerate(zip(parts, net.layer_vectors(params)), start=1):
        np.testing.assert_array_equal(N(part), N(x), err_msg=f"layer {l}")
    np.testing.assert_array_equal(N(lay.concat(parts)), N(theta))
    V = B(np.arange(2.0 * lay.P).reshape(lay.P, 2))
    np.testing.assert_array_equal(N(lay.concat(lay.split(V))), N(V))


def test_a_parameter_layout_has_no_activation_offsets():
    lay = BlockLayout([2, 3])
    assert lay.a is None and lay.t_offsets is None and lay.in_offsets is None
    assert lay.x_offsets == (0, 2, 5)


def test_bad_sizes_and_parts_are_named():
    with pytest.raises(ValueError, match=r"^a: expected 3 sizes \(a_0..a_L\), got 2"):
        BlockLayout([2, 3], [4, 1])
    with pytest.raises(ValueError, match=r"^parts: expected 2 blocks, got 1"):
        BlockLayout([2, 3]).concat([B(np.zeros(2))])
