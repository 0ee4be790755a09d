"""The file names of a run's screenshots, in one place: the executor makes them
(`executor_service.actions.screenshot`, `executor_service.runner`) and validation refuses a
definition whose steps would make one twice (`shared.validation`)."""

from __future__ import annotations

import re

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: The files a run makes itself (`FINAL`, every step's `failure_name`), whatever the case.
_FAILURE = re.compile(r"step-\d+-failure\.png", re.IGNORECASE)
_THE_RUNS = re.compile(rf"final\.png|{_FAILURE.pattern}", re.IGNORECASE)
#: The run's last screenshot (artifact policy ALWAYS).
FINAL = "final"


def file_of(name: str) -> str:
    """The PNG file a screenshot named `name` is kept as: one plain file name (the name comes from
    the test definition), `.png` once."""
    return (_UNSAFE_NAME.sub("-", name.removesuffix(".png")).strip(".-") or "screenshot") + ".png"


def step_name(name: str, index: int) -> str:
    """The name of step `index`'s screenshot: its own, or `step-NN` (0-based)."""
    return name or f"step-{index:02d}"


def failure_name(index: int) -> str:
    """The name of the screenshot taken when step `index` fails."""
    return f"step-{index:02d}-failure"


def made_by_the_run(file: str) -> bool:
    """Whether `file` (as `file_of` gives it) is one the run makes itself, not a step's own."""
    return _THE_RUNS.fullmatch(file) is not None


def is_failure_shot(file: str) -> bool:
    """Whether `file` (as `file_of` gives it) is the screenshot taken when a step failed."""
    return _FAILURE.fullmatch(file) is not None
