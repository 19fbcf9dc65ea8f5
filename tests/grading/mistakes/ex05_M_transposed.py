"""Exercise 5: -Jz_lᵀ placed above the diagonal: Mᵀ instead of M."""

EXERCISE = 5

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'M[o[l - 1]:o[l], o[l - 2]:o[l - 1]] = -blocks[l - 1].Jz',
        'M[o[l - 2]:o[l - 1], o[l - 1]:o[l]] = -blocks[l - 1].Jz.T',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'M': 'your M is the transpose',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['Dx']
