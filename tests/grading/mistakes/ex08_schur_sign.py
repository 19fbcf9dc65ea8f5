"""Exercise 8: S_{l-1} = Qzz - Qxzᵀ K_l, a minus too many (K_l = -Qxx⁻¹ Qxz already has one).

Before the hint search skipped variants that fail, this answer got "internal
grader error: LinAlgError('Singular matrix')" on the damped checks: the
"no damping" variant's pivot is singular there.
"""

EXERCISE = 8

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '        S = Qzz + Qxz.T @ K\n',
        '        S = Qzz - Qxz.T @ K\n',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'pivots_damped': 'sign of the Schur complement',
    'pivots_indefinite': 'sign of the Schur complement',
    'solve_damped': 'sign of the Schur complement',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['inertia', 'logdet']
