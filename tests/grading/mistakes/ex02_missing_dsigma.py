"""Exercise 2: Backprop skips the activation: D = b_out instead of b_out ⊙ σ'(u)."""

EXERCISE = 2

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    D = b_out * act.df(U)\n    return D @ W',
        '    D = b_out\n    return D @ W',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'vjp_b_in': "missing σ'(u)",
    'vjp_g_W': "missing σ'(u)",
    'vjp_g_c': "missing σ'(u)",
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['jvp_full']
