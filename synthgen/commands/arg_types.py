"""argparse value types shared by the commands: a bad number is a usage error (exit 2), not a traceback later."""

from __future__ import annotations

import argparse


def at_least_one(text: str) -> int:
    """A whole number >= 1 (epochs, steps): 0 would train nothing and still write a model."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (a loss term's weight): 0 or less would switch the term off or turn it around."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value
