"""Exercise 7: S_l = B_ll + B_l,l-1 S⁻¹ B_l-1,l: the Schur complement with the wrong sign."""

EXERCISE = 7

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'S = diag[l + 1] - lower[l] @ U[l]',
        'S = diag[l + 1] + lower[l] @ U[l]',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'equal_blocks': 'sign of the Schur-complement update',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['one_block']
