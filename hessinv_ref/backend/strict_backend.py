"""The ``"array_api_strict"`` backend: the ``array-api-strict`` package's
minimal namespace, arrays on its virtual device ``"device1"``.

Such arrays refuse conversion to NumPy and refuse to mix with arrays on
another device, exactly as CuPy arrays do, so the CI's run of the core tests
on this backend catches, on a CPU-only machine, a stray ``np.`` call, an
implicit host round-trip, an unsupported in-place write or a missing
``device=``.  Everything it computes is the generic
:class:`~hessinv_ref.backend.Backend`: nothing here overrides the math.
"""

from __future__ import annotations

from .base import Backend


class _StrictBackend(Backend):
    name = "array_api_strict"

    def __init__(self):
        import array_api_strict

        # "device1" behaves like a GPU: no conversion to NumPy, no mixing
        # with arrays on the default CPU device.
        device = array_api_strict.Device("device1")
        super().__init__(array_api_strict, device, type(array_api_strict.asarray(0.0)))
