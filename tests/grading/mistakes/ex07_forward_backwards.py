"""Exercise 7: Forward substitution run from the last block up, reading blocks not computed yet (zeros)."""

EXERCISE = 7

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    c = []\n    for l in range(L):\n        y = r[o[l]:o[l + 1]]',
        '    c = [np.zeros_like(r[o[l]:o[l + 1]]) for l in range(L)]\n    for l in reversed(range(L)):\n        y = r[o[l]:o[l + 1]]',
    ),
    (
        '        c.append(scipy.linalg.lu_solve(lus[l], y))',
        '        c[l] = scipy.linalg.lu_solve(lus[l], y)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'unequal_blocks': 'forward substitution run backwards',
    'several_rhs': 'forward substitution run backwards',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['one_block']
