"""Exercise 7: The solve stops after the forward sweep."""

EXERCISE = 7

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '        u[l] = c[l] - U[l] @ u[l + 1]',
        '        u[l] = c[l]',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'equal_blocks': 'stopped after the forward sweep',
    'network': 'stopped after the forward sweep',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['one_block']
