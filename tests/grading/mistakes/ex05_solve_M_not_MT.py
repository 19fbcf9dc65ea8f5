"""Exercise 5: The row-vector system b M = e_L solved as M u = e_L."""

EXERCISE = 5

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'e_L, trans="T", lower=True',
        'e_L, lower=True',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'gradient': 'you solved M u = e_L',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['M', 'Dx']
