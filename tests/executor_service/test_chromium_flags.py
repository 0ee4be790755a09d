"""Chromium is launched with Playwright's disabled features and Sentinel's, in one flag."""

from __future__ import annotations

import os
from pathlib import Path

from bench.browser import descendants
from executor_service.browser import BrowserManager
from executor_service.chromium_flags import (
    FLAG,
    SENTINEL_DISABLED_FEATURES,
    launch_args,
    playwright_disabled_features,
)
from tests.support import CHROMIUM_ARGS, chromium_path


def features(arg: str) -> list[str]:
    return arg[len(FLAG) :].split(",")


def test_one_flag_carries_playwrights_features_the_callers_and_sentinels() -> None:
    theirs = playwright_disabled_features()
    assert theirs is not None and len(theirs) >= 3, "Playwright's list was not found in its driver"

    args = launch_args(["--no-sandbox", f"{FLAG}Foo,{theirs[0]}", "--disable-gpu"])

    assert args[:2] == ["--no-sandbox", "--disable-gpu"]
    assert [a for a in args if a.startswith(FLAG)] == [args[-1]]
    assert features(args[-1]) == [*theirs, "Foo", *SENTINEL_DISABLED_FEATURES]


def browser_command_lines(besides: set[int]) -> list[list[str]]:
    """The command lines of the Chromium browser processes (not their helpers) this process started,
    but for the processes in `besides` (started before: another test's browser may still be ending).
    A child the browser has forked but not yet exec'd shows the browser's own command line: one
    command line is one browser."""
    found: list[list[str]] = []
    for pid in set(descendants(os.getpid())) - besides:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        browser = "--remote-debugging-pipe" in argv and not any(a.startswith("--type=") for a in argv)
        if browser and argv not in found:
            found.append(argv)
    return found


async def test_the_launched_chromium_keeps_playwrights_features_off_and_autofill_too() -> None:
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    before = set(descendants(os.getpid()))
    await manager.start()
    try:
        (argv,) = browser_command_lines(before)
    finally:
        await manager.stop()
    flags = [features(a) for a in argv if a.startswith(FLAG)]
    last = flags[-1]  # the one Chromium honours
    assert set(flags[0]) <= set(last), "Playwright's own list is switched back on"
    assert "AutofillServerCommunication" in last
