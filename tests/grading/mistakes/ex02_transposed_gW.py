"""Exercise 2: The weight gradient as Zᵀ D, the transpose of W's shape."""

EXERCISE = 2

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'return D @ W, D.T @ Z, D.sum(axis=0)',
        'return D @ W, Z.T @ D, D.sum(axis=0)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'vjp_g_W': 'transpose',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['vjp_b_in', 'vjp_g_c', 'jvp_full']
