"""Exercise 4: Each tangent restarts from zero instead of carrying t_{l-1} forward."""

EXERCISE = 4

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        't.append(layer.jvp(x, z_in, t[l - 1], vs[l - 1]))',
        't.append(layer.jvp(x, z_in, np.zeros_like(z_in), vs[l - 1]))',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'r_forward': 'carry t_{l-1} forward',
    'chain_hvp': 'carry t_{l-1} forward',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['r_backward']
