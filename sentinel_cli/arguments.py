"""argparse types for the CLI's numbers: a bad one is a usage error (exit 2) naming the value, never
a traceback or a request the API must refuse."""

from __future__ import annotations

import argparse

#: The shortest wait between two refreshes of a watching command: faster only loads the API.
MIN_INTERVAL_S = 0.2


def count(text: str) -> int:
    """A whole number, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def interval(text: str) -> float:
    """Seconds between refreshes: at least `MIN_INTERVAL_S`."""
    value = float(text)
    if not value >= MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_INTERVAL_S:g} seconds, got {text}")
    return value
