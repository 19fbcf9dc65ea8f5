"""Exercise 4: The adjoint is backpropagated without the layer's curvature term."""

EXERCISE = 4

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'lam = jz_lam + so_z ',
        'lam = jz_lam ',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'r_backward': "λ misses the layer's curvature",
    'chain_hvp': "λ misses the layer's curvature",
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['r_forward']
