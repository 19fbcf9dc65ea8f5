"""Exercise 7: Right answers, wrong algorithm: the whole matrix assembled and solved at once."""

EXERCISE = 7

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    L = len(diag)\n    sizes = [d.shape[0] for d in diag]\n',
        '    L = len(diag)\n    sizes = [d.shape[0] for d in diag]\n    o = np.concatenate([[0], np.cumsum(sizes)]).astype(int)\n    K = np.zeros((o[-1], o[-1]))\n    for l in range(L):\n        K[o[l]:o[l + 1], o[l]:o[l + 1]] = diag[l]\n        if l + 1 < L:\n            K[o[l + 1]:o[l + 2], o[l]:o[l + 1]] = lower[l]\n            K[o[l]:o[l + 1], o[l + 1]:o[l + 2]] = upper[l]\n    return np.linalg.solve(K, r)\n',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'block_by_block': 'block by block',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['equal_blocks', 'unequal_blocks', 'network']
