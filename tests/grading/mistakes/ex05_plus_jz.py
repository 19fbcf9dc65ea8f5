"""Exercise 5: M assembled with +Jz_l below the diagonal."""

EXERCISE = 5

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '= -blocks[l - 1].Jz',
        '= blocks[l - 1].Jz',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'M': 'sign of the -Jz block',
    'gradient': 'sign of the -Jz block',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['Dx']
