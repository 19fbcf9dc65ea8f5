"""Exercise 1: The student's arctan returns σ' from d2f."""

EXERCISE = 1

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '        d = 1.0 + u * u\n        return -2.0 * u / (d * d)',
        '        return 1.0 / (1.0 + u * u)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'custom_d2f': "σ' where σ'' belongs",
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['custom_df', 'custom_interface']
