"""Exercise 4: R-backward that just calls the library's R-operator."""

EXERCISE = 4

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        '    return np.concatenate(Hv)',
        '    return curv.hvp(v)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'r_backward': 'the reference this exercise is graded against',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['r_forward']
