"""Exercise 8: qx = +g + Jxᵀ s: the linear term with the wrong sign, so x = -(H + εI)⁻¹ g."""

EXERCISE = 8

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'qx = -g_l[l - 1] + blk.Jx.T @ s',
        'qx = g_l[l - 1] + blk.Jx.T @ s',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'solve_damped': 'your x is -(H + εI)⁻¹ g',
    'solve_indefinite': 'your x is -(H + εI)⁻¹ g',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['pivots_damped', 'inertia']
