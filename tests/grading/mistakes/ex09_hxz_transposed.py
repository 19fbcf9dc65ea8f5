"""Exercise 9: The convolution's Hxz returned transposed."""

EXERCISE = 9

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '        return Hxx, Hxz, Hzz',
        '        return Hxx, Hxz.T, Hzz',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'curvature': 'transpose of the reference',
    'network_solve': 'the shapes are in the table',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['second_order', 'network_hvp']
