"""Exercise 9: The convolution's second-order product only follows the parameter direction."""

EXERCISE = 9

# (text in the reference solution, the student's version of it)
EDITS = [
    (
        'RD = b * self.activation.d2f(U) * self._dU(x, Z, T, v)  # R{D}',
        'RD = b * self.activation.d2f(U) * self._dU(x, Z, 0 * T, v)  # R{D}',
    ),
    (
        'self._corr(RD, Z) + self._corr(D, T)',
        'self._corr(RD, Z)',
    ),
]

# check id -> a phrase the failure's hint must contain
FAILS = {
    'second_order': 'only follows the parameter direction',
}

# checks the mistake must not break (the diagnosis is targeted)
PASSES = ['vjp', 'jvp', 'curvature', 'network_hessian']
