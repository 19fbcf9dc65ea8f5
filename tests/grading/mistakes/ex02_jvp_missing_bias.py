"""Exercise 2: The tangent forgets that the bias moves too."""

EXERCISE = 2

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'dU = T @ W.T + Z @ V_W.T + v_c',
        'dU = T @ W.T + Z @ V_W.T',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'jvp_x': 'missing the bias direction',
    'jvp_full': 'missing the bias direction',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['jvp_z', 'vjp_b_in']
