"""Sort an exception raised while running a job into an `ErrorCategory`.

Each category has its own retry policy elsewhere, so the decision here must rest on what the
exception *is* (its type, and for Playwright's catch-all `Error` the Chromium net error code it
carries), never on loose substring matching over arbitrary text: a page that prints
"timeout" or "net::ERR_FAILED" must not turn an assertion into an infrastructure failure.

The runner's own failures come from `shared.errors`: `AssertionFailure` → ASSERTION,
`NavigationRefused` → POLICY, `ValidationError` → VALIDATION, `BrowserUnavailable` → BROWSER,
`RequestFailed` (a request step's HTTP request got no answer) → NETWORK. Playwright refusing a
step's own input (a selector it cannot parse, a key it does not know) → VALIDATION: never retried.
A locator action that found no element it could act on within the step's timeout (missing, hidden,
covered, disabled), or an element of the wrong kind for it (`fill` of a `<div>`), → ASSERTION: the
page is not what the test expects — a verdict on the site, as Playwright Test counts it, retried only
when the job asks (a navigation's timeout stays TIMEOUT: the site was slow to answer).

`call_log` reads the "Call log:" Playwright appends to an error into the lines that say what went
on (which element the locator resolved to, what intercepts the click), for the failure's message.

It must never import Redis or grpc, and never raise.
"""

from __future__ import annotations

import re

from playwright._impl._errors import TargetClosedError
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shared.errors import AssertionFailure, BrowserUnavailable, NavigationRefused, RequestFailed, ValidationError
from shared.model import ErrorCategory

__all__ = ["call_log", "classify", "net_error_code"]

# Chromium writes its net errors as `net::ERR_CONNECTION_REFUSED` (see net/base/net_error_list.h).
_NET_ERROR = re.compile(r"\bnet::(ERR_[A-Z_]+)\b")

# Playwright refusing what a step asked of it before touching the page: a selector it cannot parse,
# a key it does not know. Its own words, at the start of its message after the call's name
# (`Locator.click: `), where nothing a page says can appear: the definition is wrong, and running
# it again cannot help.
_BAD_STEP_INPUT = re.compile(
    r"^[A-Za-z]+\.[A-Za-z]+: (?:"
    r"Unexpected token .* while parsing (?:css )?selector"
    r"|Unknown engine \".*\" while parsing selector"
    r"|InvalidSelectorError: "
    r"|SyntaxError: .* is not a valid XPath expression"
    r"|Unknown key: \""
    r"|Error: Malformed value"
    r")"
)

# A locator action (`Locator.click: `) that timed out waiting for an element it could act on, or was
# refused by the element itself: Playwright's own words after the call's name, where no page text
# can appear.
_ELEMENT_VERDICT = re.compile(
    r"^Locator\.[A-Za-z_]+: (?:"
    r"Timeout \d+ms exceeded"
    r"|Error: Element is not an? <"
    r"|Error: Not a checkbox or radio button"
    r"|Error: Clicking the checkbox did not change its state"
    r"|Error: Cannot type text into "
    r"|Error: Input of type \"[^\"]*\" cannot be filled"
    r"|Error: Selector \".*\" resolved to .*, <iframe> was expected"  # a step's frame that is no frame
    r")"
)

# A locator action that did act (a click done, a key sent: press waits for nothing before it) and
# then waited for the navigation it started: its timeout is the site being slow to answer.
_ACTED = re.compile(
    r"^\s*- (?:[\w ]+ action done|waiting for scheduled navigations to finish|elementHandle\.press\(.*)\s*$",
    re.MULTILINE,
)

# Call-log entries that only say Playwright is going on (waiting, retrying, scrolling, an element
# that is ready); what is left says what it found.
_PROGRESS = re.compile(
    r"(?:retrying [\w ]+ action(?:, attempt #\d+)?|waiting \d+ms|scrolling into view if needed|done scrolling"
    r"|attempting [\w ]+ action|performing [\w ]+ action|waiting for element to be [a-z, ]+"
    r"|element is (?:visible|enabled|stable|editable)[a-z, ]*)"
)
# The action's own call (`fill("…")`), which quotes what was typed, over as many lines as it has.
_CALL = re.compile(r"[\w.]+\(", re.ASCII)
# How many entries of a call log a message keeps at most: the first (what the locator waited for)
# and the last ones, which say why the action could not be done.
_CALL_LOG_LINES = 6

# How far down a `raise ... from ...` chain to look before giving up; chains are short in practice
# and a cycle must not loop forever.
_MAX_CAUSE_DEPTH = 5


def net_error_code(exc: BaseException) -> str | None:
    """The Chromium net error code a Playwright error carries, if any.

    Args:
        exc: Any exception; only Playwright errors are looked at.

    Returns:
        The code without its `net::` prefix (e.g. `"ERR_CONNECTION_REFUSED"`), or None.
    """
    if not isinstance(exc, PlaywrightError) or isinstance(exc, PlaywrightTimeoutError):
        return None
    match = _NET_ERROR.search(exc.message)
    return match.group(1) if match else None


def classify(exc: BaseException) -> ErrorCategory:
    """Decide which category an exception belongs to.

    An exception that is not recognised falls back to its explicit cause (`raise X from Y`), so a
    wrapper does not hide a known failure.

    Args:
        exc: The exception a step (or the run around it) raised.

    Returns:
        The category; `ErrorCategory.UNKNOWN` when nothing matches.
    """
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSE_DEPTH):
        if current is None:
            break
        category = _classify_one(current)
        if category is not ErrorCategory.UNKNOWN:
            return category
        current = current.__cause__
    return ErrorCategory.UNKNOWN


def _classify_one(exc: BaseException) -> ErrorCategory:
    # Our own errors first: they are explicit decisions made by the runner or a guard.
    if isinstance(exc, NavigationRefused):
        return ErrorCategory.POLICY
    if isinstance(exc, AssertionFailure):
        return ErrorCategory.ASSERTION
    if isinstance(exc, ValidationError):
        return ErrorCategory.VALIDATION
    if isinstance(exc, BrowserUnavailable):
        return ErrorCategory.BROWSER
    if isinstance(exc, RequestFailed):
        return ErrorCategory.NETWORK
    # Playwright's TimeoutError subclasses its Error, and the builtin TimeoutError (which
    # asyncio.TimeoutError is, since 3.11) subclasses OSError: both must be decided before those.
    if isinstance(exc, PlaywrightError) and _ELEMENT_VERDICT.match(exc.message) and not _ACTED.search(exc.message):
        return ErrorCategory.ASSERTION
    if isinstance(exc, PlaywrightTimeoutError | TimeoutError):
        return ErrorCategory.TIMEOUT
    if isinstance(exc, TargetClosedError):
        return ErrorCategory.BROWSER
    if isinstance(exc, PlaywrightError):
        if net_error_code(exc) is not None:
            return ErrorCategory.NETWORK
        if _BAD_STEP_INPUT.match(exc.message):
            return ErrorCategory.VALIDATION
        # Everything else Playwright raises (a crashed page, a detached frame, a protocol error)
        # is the browser's fault, not the test's.
        return ErrorCategory.BROWSER
    if isinstance(exc, OSError | MemoryError):
        return ErrorCategory.SYSTEM
    return ErrorCategory.UNKNOWN


def call_log(message: str) -> list[str]:
    """What the "Call log:" of a Playwright error's `message` says went on, an entry a line, in order,
    each once: the first entry (what the locator waited for) and the last ones (why the action could
    not be done), at most `_CALL_LOG_LINES`; the progress entries (waiting, retrying, an element that
    is ready) and the action's own call (which quotes what was typed, over as many lines as it has)
    left out, and the `.first` Sentinel's locators add taken off. Empty without a call log."""
    _, found, log = message.partition("\nCall log:\n")
    if not found:
        return []
    entries: list[str] = []
    for raw in log.splitlines():
        line = raw.strip()
        entry = re.sub(r"^(?:- |\d+ × )", "", line)
        if entry == line and entries:  # no marker: the entry before goes on (a typed value's line break)
            entries[-1] += "\n" + line
        else:
            entries.append(entry.strip())
    kept: dict[str, None] = {}
    for entry in entries:
        entry = re.sub(r'(locator\(".*?"\))\.first\b', r"\1", entry)
        if entry and not _PROGRESS.fullmatch(entry) and not _CALL.match(entry):
            kept.setdefault(entry.replace("\n", " "), None)
    said = list(kept)
    return said if len(said) <= _CALL_LOG_LINES else [said[0], *said[-(_CALL_LOG_LINES - 1) :]]
