"""Exercise 6: The block test checks scalar tridiagonality instead of block tridiagonality."""

EXERCISE = 6

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    o = np.concatenate([[0], np.cumsum(sizes)]).astype(int)\n    L = len(sizes)\n    for i',
        '    return not np.any(np.triu(A, 2)) and not np.any(np.tril(A, -2))\n    o = np.concatenate([[0], np.cumsum(sizes)]).astype(int)\n    L = len(sizes)\n    for i',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'tri_true': 'single entries',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['tri_false', 'perm']
