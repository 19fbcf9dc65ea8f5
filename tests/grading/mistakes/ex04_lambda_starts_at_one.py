"""Exercise 4: λ_L initialised to b_L = 1 instead of 0."""

EXERCISE = 4

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'lam = np.zeros(1)',
        'lam = np.ones(1)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'r_backward': 'Hv + g',
    'chain_hvp': 'Hv + g',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['r_forward']
