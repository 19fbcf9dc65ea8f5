"""Exercise 8: Negative eigenvalues counted as pivots with a negative determinant."""

EXERCISE = 8

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    w = np.concatenate([np.linalg.eigvalsh(Q) for Q in pivots])\n',
        '    n_neg = sum(1 for Q in pivots if np.linalg.det(Q) < 0)\n    return sum(Q.shape[0] for Q in pivots) - n_neg, n_neg, 0\n',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'inertia': 'negative determinant',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['pivots_indefinite', 'logdet']
