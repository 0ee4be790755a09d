"""Checks of the CLI's option values: argparse types for its numbers, and what stops a path given
for an output from being written. A bad value is a usage error (exit 2) naming the option and the
value, found before anything is asked of the API, never a traceback, a raw `OSError` or a request
the API must refuse."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path

from sentinel_client import FieldViolation, InvalidArgumentError

#: The shortest wait between two refreshes of a watching command: faster only loads the API.
MIN_INTERVAL_S = 0.2


def _at_least(text: str, least: int) -> int:
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, got {value}")
    return value


def count(text: str) -> int:
    """A whole number, 0 or more."""
    return _at_least(text, 0)


def positive(text: str) -> int:
    """A whole number, 1 or more (an attempt: the first is 1)."""
    return _at_least(text, 1)


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


def file_problem(path: Path) -> str | None:
    """What stops `path` from being written as a file (a report), or None: said after the path."""
    if path.is_dir():
        return "is a directory; name the file to write in it"
    if path.exists() and not path.is_file():  # a device or a pipe (/dev/stdout): written to where it is
        return None if os.access(path, os.W_OK) else "cannot be written: no permission"
    return _folder_problem(Path(os.path.realpath(path)).parent)  # through a link, where the file it names is


def folder_problem(path: Path) -> str | None:
    """What stops files from being written below `path` (a download's `--out`, made when missing),
    or None: said after the path. Checked before a download, whose own error would name a
    temporary file the user never chose."""
    if path.exists() and not path.is_dir():
        return "is not a directory"
    return _folder_problem(path)


def _folder_problem(folder: Path) -> str | None:
    """What stops `folder` from being made (when missing) and written in, or None."""
    absolute = folder.absolute()
    nearest = next(p for p in (absolute, *absolute.parents) if p.exists())
    if not nearest.is_dir():
        return f"cannot be made: {str(nearest)!r} is not a directory"
    if not os.access(nearest, os.W_OK | os.X_OK):
        return f"cannot be written: no permission to write in {str(nearest)!r}"
    return None


_INDEX = re.compile(r"\[\d+\]")


def flag_errors(exc: InvalidArgumentError, flags: Mapping[str, str]) -> InvalidArgumentError:
    """`exc` with each field a command's option sets named by that option, as the user gave it:
    `flags` maps a field path, indexes written `[]` (`schedule.notifications[].events`), to its
    option; a path names the field and everything below it, the longest path that fits wins."""
    renamed = [FieldViolation(_flag_of(v.field, flags), v.description) for v in exc.violations]
    return InvalidArgumentError.listing(renamed, code=exc.code) if renamed else exc


def _flag_of(field: str, flags: Mapping[str, str]) -> str:
    general = _INDEX.sub("[]", field)
    fitting = [path for path in flags if general == path or general.startswith((f"{path}.", f"{path}["))]
    return flags[max(fitting, key=len)] if fitting else field
