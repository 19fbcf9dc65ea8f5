"""Exercise 3: Λ built from σ' instead of σ''."""

EXERCISE = 3

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'RD = b_out * act.d2f(U)',
        'RD = b_out * act.df(U)',
    ),
    (
        'Lam = b_out * act.d2f(U)',
        'Lam = b_out * act.df(U)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'Hxx': "σ' where σ'' belongs",
    'Hzz': "σ' where σ'' belongs",
    'so_Hzz_t': "σ' where σ'' belongs",
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = []
