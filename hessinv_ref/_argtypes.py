"""Value types for the command line's ``argparse`` options, shared by every
subcommand so that a bad value gets the same clear message everywhere."""

from __future__ import annotations

import argparse
import math

__all__ = ["depth_list", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "seed"]


def _int(text, ok, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def _float(text, ok, what):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_int(text):
    """An integer ``>= 1``."""
    return _int(text, lambda n: n >= 1, "a positive integer")


def nonnegative_int(text):
    """An integer ``>= 0``."""
    return _int(text, lambda n: n >= 0, "a non-negative integer")


def positive_float(text):
    """A finite number ``> 0``."""
    return _float(text, lambda x: x > 0, "a positive number")


def nonnegative_float(text):
    """A finite number ``>= 0``."""
    return _float(text, lambda x: x >= 0, "a non-negative number")


def depth_list(text):
    """Comma-separated positive depths (``"16,32,64"``), or ``"none"`` / empty for none."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        depths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated depths or 'none', got {text!r}") from None
    if any(d < 1 for d in depths):
        raise argparse.ArgumentTypeError(f"expected positive depths, got {text!r}")
    return depths


def seed(text):
    """A seed of ``numpy.random.default_rng``: an integer ``>= 0`` (as
    :meth:`hessinv_ref.Network.init` takes; ``None`` and generators have no
    spelling on a command line)."""
    return _int(text, lambda n: n >= 0, "a non-negative integer seed")
