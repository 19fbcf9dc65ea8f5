"""Shared pytest configuration: the hypothesis profiles and the backend banner.

``ci`` (the default) is derandomized, so every run of the suite draws the
same examples and a failure reproduces exactly; ``dev`` draws fresh random
examples, more of them, for hunting bugs locally::

    HYPOTHESIS_PROFILE=dev python -m pytest

The array backend of the run (``HESSINV_REF_BACKEND``, default NumPy; see
``tests/_backend.py``) is printed in the session header and again in the
final summary, so a CI log says which of its two passes it is.  An unknown
name or a backend whose package is missing fails at startup, never by
silently running on NumPy.
"""

import os

from hypothesis import HealthCheck, settings

from hessinv_ref.backend import ENV_VAR, get_backend


def _backend_line():
    be = get_backend()  # raises for an unknown name or a missing package
    source = f"{ENV_VAR}={os.environ[ENV_VAR]!r}" if os.environ.get(ENV_VAR) else "the default"
    device = f", device {be.device!r}" if be.device is not None else ""
    return f"hessinv_ref backend: {be.name}{device} (from {source})"


def pytest_report_header(config):
    return _backend_line()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # the header is hidden under -q; the summary line is not
    terminalreporter.write_line(_backend_line())

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
