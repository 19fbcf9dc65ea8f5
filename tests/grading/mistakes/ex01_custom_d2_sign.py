"""Exercise 1: A sign slip in the student's own activation: d/du (1 + u²)⁻¹ = -2u/(1 + u²)², not +2u/(1 + u²)²."""

EXERCISE = 1

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'return -2.0 * u / (d * d)',
        'return 2.0 * u / (d * d)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'custom_d2f': 'negative of the expected',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['custom_df']
