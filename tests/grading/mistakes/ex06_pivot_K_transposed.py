"""Exercise 6: Πᵀ K Π instead of Π K Πᵀ."""

EXERCISE = 6

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    return K[np.ix_(perm, perm)]',
        '    inv = np.argsort(perm)\n    return K[np.ix_(inv, inv)]',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'pivot_K': 'that is Πᵀ K Π',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['perm', 'matrix']
