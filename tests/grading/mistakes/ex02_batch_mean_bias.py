"""Exercise 2: The bias gradient averaged over the batch instead of summed."""

EXERCISE = 2

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'return D @ W, D.T @ Z, D.sum(axis=0)',
        'return D @ W, D.T @ Z, D.mean(axis=0)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'vjp_g_c': 'off by the batch mean',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['vjp_b_in', 'vjp_g_W']
