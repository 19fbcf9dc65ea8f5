"""Exercise 3: σ'' not weighted by b_out: missing the b-contraction."""

EXERCISE = 3

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'RD = b_out * act.d2f(U)',
        'RD = act.d2f(U)',
    ),
    (
        'Lam = b_out * act.d2f(U)',
        'Lam = act.d2f(U)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'Hxx': 'missing the b-contraction',
    'so_Hxx_v': 'missing the b-contraction',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = []
