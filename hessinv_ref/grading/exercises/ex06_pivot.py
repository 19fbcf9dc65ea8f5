"""Exercise 6: the pivot Π that makes the lifted system block-tridiagonal.

The student builds Π (as an index array and as a matrix), applies it to the
lifted ``K`` (:ref:`notation §5 <notation-5>`), and writes a test for block-tridiagonality.
Graded against :class:`~hessinv_ref.solvers.lifted.Pivot` and
:class:`~hessinv_ref.solvers.lifted.LiftedSystem`.  The block test is a
boolean, so its diagnosis runs the student's test on a fixed set of probe
matrices and compares the pattern of answers with known wrong tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ...curvature import Curvature
from ...solvers.lifted import LiftedSystem, Pivot, pivoted_blocks
from ..harness import Cases, Check, CheckFailure, Variant, as_array, block_locator, compare, expect
from ._common import problem

NUMBER = 6
TITLE = "The pivot Π, and why Π K Πᵀ is block-tridiagonal"
FILE = "ex06_pivot.md"
NAMES = ("pivot_permutation", "pivot_matrix", "pivot_K", "is_block_tridiagonal")


def forbidden():
    return [(Pivot, "hessinv_ref's Pivot"), (Pivot.apply, "Pivot.apply"), (Pivot.matrix, "Pivot.matrix"),
            (LiftedSystem, "hessinv_ref's LiftedSystem"), (pivoted_blocks, "hessinv_ref's pivoted_blocks")]


# -- sizes ----------------------------------------------------------------------------------


def _sizes(params):
    rng = np.random.default_rng(params["seed"])
    L = params["L"]
    return [int(s) for s in rng.integers(1, 4, L)], [int(s) for s in rng.integers(1, 4, L)]


SIZES = Cases(
    # Unequal sizes first: with p_l = a_l and L = 3, Π is its own inverse and
    # a transposed Π cannot be told from the right one.
    seeded=[{"p": [2, 3], "a": [1, 2]}, {"p": [3, 1, 2, 2], "a": [2, 2, 1, 1]}, {"p": [2], "a": [3]},
            {"p": [1, 2, 1], "a": [2, 1, 1]}],
    space={"L": range(1, 6), "seed": range(0, 2**16)},
    build=lambda params: (list(params["p"]), list(params["a"])) if "p" in params else _sizes(params),
    describe=lambda params: "p = {}, a = {}".format(*((params["p"], params["a"]) if "p" in params else _sizes(params))),
)


def _perm_variants(p, a):
    P, A = sum(p), sum(a)
    xo, to = np.concatenate([[0], np.cumsum(p)]), np.concatenate([[0], np.cumsum(a)])

    def order(*parts):
        pieces = []
        for l in range(len(p)):
            chunks = {"x": np.arange(xo[l], xo[l + 1]), "t": P + np.arange(to[l], to[l + 1]),
                      "λ": P + A + np.arange(to[l], to[l + 1])}
            pieces += [chunks[k] for k in parts]
        return np.concatenate(pieces)

    right = Pivot(p, a).perm
    return [
        Variant("you built Π⁻¹ = Πᵀ: perm[i] must be the position in (x, t, λ) order of the i-th unknown in "
                "layer order, so that (Π u)[i] = u[perm[i]]. (With equal sizes and L = 3, Π is its own "
                "inverse, so a small example with those sizes cannot tell the two apart)", np.argsort(right)),
        Variant("within layer l the order is x_l, t_l, λ_l (you have x_l, λ_l, t_l)", order("x", "λ", "t")),
        Variant("within layer l the order is x_l, t_l, λ_l (you have t_l, x_l, λ_l)", order("t", "x", "λ")),
        Variant("that is the identity: the unknowns are still in (x, t, λ) order; Π interleaves them layer "
                "by layer", np.arange(P + 2 * A)),
    ]


def check_perm_valid(student, sizes):
    p, a = sizes
    N = sum(p) + 2 * sum(a)
    got = as_array("perm", student.call("pivot_permutation", list(p), list(a)))
    expect(got.shape == (N,), f"perm has shape {got.shape}, expected ({N},): N = P + 2A = {sum(p)} + 2·{sum(a)}",
           hint="perm lists every unknown once: in each layer p_l entries for x_l, then a_l for t_l and a_l for "
           "λ_l; check where each range starts and ends")
    expect(bool(np.all(got == np.round(got))), "perm has non-integer entries", actual=str(got),
           hint="perm holds positions: build it from integer ranges (range, np.arange)")
    expect(bool(np.array_equal(np.sort(got), np.arange(N))), "perm is not a permutation of 0..N-1",
           actual=str(got.astype(int)), hint="every index of (x, t, λ) must appear exactly once")


def check_perm(student, sizes):
    p, a = sizes
    got = student.call("pivot_permutation", list(p), list(a))
    compare("perm", got, Pivot(p, a).perm, variants=_perm_variants(p, a),
            hint="layer order is (x_1, t_1, λ_1, x_2, t_2, λ_2, ...); x_l starts at sum(p[:l-1]) in (x, t, λ) "
            "order, t_l at P + sum(a[:l-1]), λ_l at P + A + sum(a[:l-1])")


def check_matrix(student, sizes):
    p, a = sizes
    ref = Pivot(p, a).to_dense()
    compare("Π", student.call("pivot_matrix", list(p), list(a)), ref, variants=[
        Variant("you built Πᵀ: (Π u)[i] = u[perm[i]] means row i of Π has its 1 in column perm[i]", ref.T),
    ])


# -- Π K Πᵀ on a network's lifted system ------------------------------------------------------------


def _lifted_case(params):
    curv = Curvature(*problem(params))
    lifted = LiftedSystem(curv.blocks, params["damping"])
    return SimpleNamespace(lifted=lifted, K=lifted.K.toarray(), p=list(lifted.p), a=list(lifted.a))


def _describe_lifted(params):
    from ._common import describe_problem

    return describe_problem(params) + f"; K = LiftedSystem(Curvature(...).blocks, damping={params['damping']}).K"


LIFTED = Cases(
    seeded=[
        {"depth": 3, "width": 2, "batch": 1, "layers": "dense", "activation": "tanh", "head": "softmax",
         "scale": 1.5, "seed": 0, "damping": 0.1},
        {"depth": 2, "width": 1, "batch": 2, "layers": "dense", "activation": "softplus", "head": "mse",
         "scale": 1.0, "seed": 1, "damping": 0.5},
    ],
    space={"depth": range(1, 5), "width": range(1, 3), "batch": range(1, 3), "layers": ["dense", "mixed"],
           "activation": ["tanh", "softplus", "gelu"], "head": ["softmax", "mse"], "scale": [1.0, 1.5],
           "seed": range(0, 2**16), "damping": [0.1, 1.0]},
    build=_lifted_case,
    describe=_describe_lifted,
)


def check_pivot_K(student, c):
    ref = c.lifted.K_pivoted.to_dense()
    perm = c.lifted.Pi.perm
    inv = np.argsort(perm)
    compare("Π K Πᵀ", student.call("pivot_K", c.K.copy(), c.p, c.a), ref, variants=[
        Variant("that is Πᵀ K Π: with (Π u)[i] = u[perm[i]], Π K Πᵀ is K[perm][:, perm]", c.K[inv][:, inv]),
        Variant("only the rows are permuted: K' = Π K Πᵀ permutes the columns the same way", c.K[perm]),
        Variant("only the columns are permuted: K' = Π K Πᵀ permutes the rows the same way", c.K[:, perm]),
    ], hint="if pivot_permutation passes, K' is K[perm][:, perm]",
       locate=block_locator(_layer_sizes(c), "block", _layer_sizes(c)))


def _layer_sizes(c):
    """K' is partitioned by layer: block l has n_l = p_l + 2 a_l rows and columns."""
    return [pl + 2 * al for pl, al in zip(c.p, c.a)]


# -- the block-tridiagonal test -------------------------------------------------------------------


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(int)


def _random_blocks(sizes, pattern, rng):
    """A matrix whose block (i, j) is dense random where pattern[i][j], else zero."""
    o = _offsets(sizes)
    A = np.zeros((o[-1], o[-1]))
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            if pattern[i][j]:
                A[o[i]:o[i + 1], o[j]:o[j + 1]] = rng.uniform(0.5, 1.5, (sizes[i], sizes[j])) * rng.choice([-1, 1])
    return A


def _tridiagonal_pattern(L):
    return [[abs(i - j) <= 1 for j in range(L)] for i in range(L)]


def _tri_case(params):
    """True cases: a full-block tridiagonal matrix, or a network's K'."""
    if params.get("kind") == "network":
        c = _lifted_case(params)
        return SimpleNamespace(A=c.lifted.K_pivoted.to_dense(), sizes=list(c.lifted.K_pivoted.sizes), expected=True)
    rng = np.random.default_rng(params["seed"])
    L = params["L"]
    sizes = [int(s) for s in rng.integers(1, 4, L)]
    return SimpleNamespace(A=_random_blocks(sizes, _tridiagonal_pattern(L), rng), sizes=sizes, expected=True)


def _far_case(params):
    """False cases: block-tridiagonal plus one far block, above or below."""
    rng = np.random.default_rng(params["seed"])
    L = params["L"]
    sizes = [int(s) for s in rng.integers(1, 4, L)]
    pattern = _tridiagonal_pattern(L)
    i, j = params.get("block") or (
        (int(rng.integers(0, L - 2)), None) if params["side"] == "upper" else (None, int(rng.integers(0, L - 2))))
    if j is None:
        j = int(rng.integers(i + 2, L))
    if i is None:
        i = int(rng.integers(j + 2, L))
    pattern[i][j] = True
    return SimpleNamespace(A=_random_blocks(sizes, pattern, rng), sizes=sizes, expected=False, block=(i, j))


def _pattern_text(A, sizes):
    o = _offsets(sizes)
    rows = []
    for i in range(len(sizes)):
        rows.append(" ".join("X" if np.any(A[o[i]:o[i + 1], o[j]:o[j + 1]]) else "." for j in range(len(sizes))))
    return "\n".join(rows)


def _describe_tri(build):
    def describe(params):
        c = build(params)
        return f"block sizes {c.sizes}, nonzero blocks (X):\n{_pattern_text(c.A, c.sizes)}"
    return describe


TRUE_CASES = Cases(
    seeded=[{"L": 3, "seed": 0}, {"kind": "network", **LIFTED.seeded[0]}, {"L": 1, "seed": 1}, {"L": 5, "seed": 2}],
    space={"L": range(1, 7), "seed": range(0, 2**16)},
    build=_tri_case,
    describe=_describe_tri(_tri_case),
)
FALSE_CASES = Cases(
    seeded=[{"L": 3, "seed": 0, "block": (0, 2)}, {"L": 4, "seed": 1, "block": (3, 1)},
            {"L": 4, "seed": 2, "block": (0, 3)}],
    space={"L": range(3, 7), "side": ["upper", "lower"], "seed": range(0, 2**16)},
    build=_far_case,
    describe=_describe_tri(_far_case),
)


def _wrong_tests():
    """Known wrong block tests, each ``test(A, sizes) -> bool``, with their hints."""
    def blocks_zero(A, sizes, far):
        o = _offsets(sizes)
        L = len(sizes)
        return not any(np.any(A[o[i]:o[i + 1], o[j]:o[j + 1]]) for i in range(L) for j in range(L) if far(i, j))

    return [
        ("you only look above the diagonal: blocks (i, j) with i - j > 1 must be zero too",
         lambda A, s: blocks_zero(A, s, lambda i, j: j - i > 1)),
        ("you only look below the diagonal: blocks (i, j) with j - i > 1 must be zero too",
         lambda A, s: blocks_zero(A, s, lambda i, j: i - j > 1)),
        ("you tested single entries (|i - j| > 1 for rows and columns) rather than blocks: the band is "
         "made of blocks, and blocks (l, l±1) may be full",
         lambda A, s: not np.any(np.triu(A, 2)) and not np.any(np.tril(A, -2))),
        ("you required everything outside the diagonal blocks to be zero: block-tridiagonal allows the "
         "blocks next to the diagonal, (l, l-1) and (l, l+1)", lambda A, s: blocks_zero(A, s, lambda i, j: i != j)),
        ("your test lets through blocks two away from the diagonal: only |i - j| <= 1 is allowed",
         lambda A, s: blocks_zero(A, s, lambda i, j: abs(i - j) > 2)),
    ]


def _probes():
    probes = [_tri_case(p) for p in TRUE_CASES.seeded] + [_far_case(p) for p in FALSE_CASES.seeded]
    rng = np.random.default_rng(7)
    sizes = [2, 1, 2, 2]
    probes.append(SimpleNamespace(A=_random_blocks(sizes, [[i == j for j in range(4)] for i in range(4)], rng),
                                  sizes=sizes, expected=True))
    return probes


def _diagnose(student):
    """Run the student's test on every probe; name the wrong test that answers the same."""
    try:
        answers = [bool(student.call("is_block_tridiagonal", pr.A.copy(), list(pr.sizes))) for pr in _probes()]
    except CheckFailure:
        return None
    for hint, test in _wrong_tests():
        if answers == [bool(test(pr.A, pr.sizes)) for pr in _probes()]:
            return hint
    return None


def _check_tri(student, c):
    got = student.call("is_block_tridiagonal", c.A.copy(), list(c.sizes))
    if not isinstance(got, (bool, np.bool_)):
        raise CheckFailure(f"`is_block_tridiagonal` must return True or False, got {got!r}",
                           hint="return a bool, e.g. `return not np.any(...)`")
    if bool(got) != c.expected:
        fallback = ("this matrix has a nonzero block (i, j) with |i - j| > 1 (the pattern above, blocks from 0): "
                    "check that your loops reach every block, and the offsets (cumulative sizes) that cut A"
                    if not c.expected else
                    "every block (i, j) of this matrix with |i - j| > 1 is zero (the pattern above): your test "
                    "rejects a block it should allow; check the condition on |i - j| and the offsets that cut A")
        raise CheckFailure(f"is_block_tridiagonal returned {bool(got)}, expected {c.expected}",
                           expected=str(c.expected), actual=str(bool(got)), hint=_diagnose(student) or fallback)


CHECKS = [
    Check("perm_valid", "pivot_permutation returns a permutation of 0..N-1", check_perm_valid, SIZES),
    Check("perm", "pivot_permutation orders (x_1, t_1, λ_1, x_2, ...)", check_perm, SIZES),
    Check("matrix", "pivot_matrix: Π u = u[perm]", check_matrix, SIZES),
    Check("pivot_K", "pivot_K: Π K Πᵀ matches the library's K'", check_pivot_K, LIFTED),
    Check("tri_true", "is_block_tridiagonal accepts block-tridiagonal matrices", _check_tri, TRUE_CASES),
    Check("tri_false", "is_block_tridiagonal rejects a far block", _check_tri, FALSE_CASES),
]
