"""Chromium's `--disable-features`: Playwright's list, plus the features Sentinel turns off.

Chromium honours only the *last* `--disable-features` on its command line, and Playwright puts its
own (features that break automation, and several that phone home) before the caller's arguments. A
second flag of Sentinel's would silently switch all of Playwright's back on. So the flag Sentinel
passes carries Playwright's features too, read from the driver's own source, and Sentinel's after
them.

Sentinel's own: `AutofillServerCommunication`. Without it Chromium asks Google's autofill servers
about every form a test's page shows — two or three `CONNECT content-autofill.googleapis.com:443`
per browser context through the egress proxy, measured — traffic no test asked for, describing the
pages under test to a third party.

When Playwright's list cannot be read (a driver whose source is laid out differently), the
arguments are left as they are and a warning says what is lost; `tests/executor_service/
test_chromium_flags.py` reads the command line of a real Chromium and fails on such a driver.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import playwright

__all__ = ["SENTINEL_DISABLED_FEATURES", "launch_args", "playwright_disabled_features"]

log = logging.getLogger(__name__)

FLAG = "--disable-features="
#: Features Sentinel turns off on top of Playwright's.
SENTINEL_DISABLED_FEATURES: tuple[str, ...] = ("AutofillServerCommunication",)

#: `disabledFeatures = [...]` (or `= (options) => [...]`) in the driver's Chromium launcher.
_LIST = re.compile(r"disabledFeatures\s*=\s*(?:\([^)]*\)\s*=>\s*)?\[(.*?)\]", re.S)
_NAME = re.compile(r"""["']([A-Za-z0-9_]+)["']""")
_COMMENT = re.compile(r"//[^\n]*")
#: Where Playwright's drivers have kept the list: one bundle, or the launcher's own module.
_SOURCES = ("coreBundle.js", "server/chromium/chromiumSwitches.js", "server/chromium/chromium.js")


@functools.cache
def playwright_disabled_features() -> tuple[str, ...] | None:
    """The features the installed Playwright driver disables in Chromium; None when not found."""
    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for name in _SOURCES:
        path = lib / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = _LIST.search(text)
        if match is not None:
            names = tuple(_NAME.findall(_COMMENT.sub("", match.group(1))))
            if names:
                return names
    return None


def launch_args(args: Sequence[str]) -> list[str]:
    """`args` with one `--disable-features` last, carrying Playwright's features, those of any
    `--disable-features` in `args`, and Sentinel's, each once in that order."""
    own = [arg for arg in args if not arg.startswith(FLAG)]
    theirs = playwright_disabled_features()
    if theirs is None:
        log.warning(
            "could not read Playwright's disabled Chromium features from its driver; Chromium keeps "
            "them, and also %s, on",
            ", ".join(SENTINEL_DISABLED_FEATURES),
        )
        return list(args)
    asked = [name for arg in args if arg.startswith(FLAG) for name in arg[len(FLAG) :].split(",") if name]
    features = list(dict.fromkeys([*theirs, *asked, *SENTINEL_DISABLED_FEATURES]))
    return [*own, FLAG + ",".join(features)]
