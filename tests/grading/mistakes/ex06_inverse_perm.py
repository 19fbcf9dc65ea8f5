"""Exercise 6: The index array of Π⁻¹ (the argsort of the right one)."""

EXERCISE = 6

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    return np.array(perm)',
        '    return np.argsort(np.array(perm))',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'perm': 'you built Π⁻¹',
    'matrix': 'you built Πᵀ',
    'pivot_K': 'that is Πᵀ K Π',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['perm_valid', 'tri_true', 'tri_false']
