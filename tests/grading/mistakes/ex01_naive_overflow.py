"""Exercise 1: softplus written as log(1 + exp(u)): right for moderate u, inf for u > 709."""

EXERCISE = 1

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    return np.logaddexp(0.0, u)',
        '    return np.log(1.0 + np.exp(u))',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'softplus_stable': 'overflows',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['softplus', 'softplus_d1', 'softplus_d2']
