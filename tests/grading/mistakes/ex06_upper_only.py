"""Exercise 6: The block test only looks above the diagonal."""

EXERCISE = 6

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'if abs(i - j) > 1 and',
        'if j - i > 1 and',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'tri_false': 'only look above the diagonal',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['tri_true', 'perm']
