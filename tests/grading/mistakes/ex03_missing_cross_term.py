"""Exercise 3: The bilinear cross term of u = Z Wᵀ forgotten everywhere."""

EXERCISE = 3

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '        Hxz[: n_out * n_in, cols] += np.kron(D[i][:, None], np.eye(n_in))  # the cross term\n',
        '',
    ),
    (
        'r_z = RD @ W + D @ V_W',
        'r_z = RD @ W',
    ),
    (
        'r_W = RD.T @ Z + D.T @ T',
        'r_W = RD.T @ Z',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'Hxz': 'missing the cross term',
    'so_Hxz_t': 'missing the cross term',
    'so_HxzT_v': 'missing the cross term',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['Hxx', 'Hzz', 'so_Hzz_t', 'so_Hxx_v']
