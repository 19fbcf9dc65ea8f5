"""Shared pytest configuration: the hypothesis profiles.

``ci`` (the default) is derandomized, so every run of the suite draws the
same examples and a failure reproduces exactly; ``dev`` draws fresh random
examples, more of them, for hunting bugs locally::

    HYPOTHESIS_PROFILE=dev python -m pytest
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,  # timings on shared CI machines are too noisy for a per-example deadline
    derandomize=True,
    database=None,  # derandomized runs gain nothing from the example database
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
