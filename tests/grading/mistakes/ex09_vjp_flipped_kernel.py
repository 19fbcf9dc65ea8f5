"""Exercise 9: The transposed convolution scatters with the kernel flipped: vjp disagrees with jvp."""

EXERCISE = 9

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '            out[:, :, j:j + self.T_out] += G[:, :, :, j]',
        '            out[:, :, j:j + self.T_out] += G[:, :, :, self.k - 1 - j]',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'vjp': 'vjp and jvp disagree',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['jvp', 'jacobians']
