"""Exercise 1: softplus_d2 differentiates the sigmoid twice: s(1 - s)(1 - 2s) is f''', not f''."""

EXERCISE = 1

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    s = _logistic(u)\n    return s * (1.0 - s)\n',
        '    s = _logistic(u)\n    return s * (1.0 - s) * (1.0 - 2.0 * s)\n',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'softplus_d2': 'one derivative too many',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['softplus', 'softplus_d1', 'custom_d2f']
