"""Exercise 8: Qxx without the cost-to-go term Jxᵀ S Jx."""

EXERCISE = 8

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'Qxx = blk.Hxx + damping * np.eye(blk.Hxx.shape[0]) + blk.Jx.T @ S @ blk.Jx',
        'Qxx = blk.Hxx + damping * np.eye(blk.Hxx.shape[0])',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'pivots_damped': 'misses the cost-to-go',
    'solve_indefinite': 'misses the cost-to-go',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['inertia', 'logdet']
