"""Exercise 3: Hxz returned as (B n_in × p): the transpose of the reference."""

EXERCISE = 3

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'return Hxx, Hxz, Hzz',
        'return Hxx, Hxz.T, Hzz',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'Hxz': 'transpose of the reference',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['Hxx', 'Hzz', 'so_Hxz_t']
