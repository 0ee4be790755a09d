"""classify() decides by exception type, and reads net error codes from real Playwright errors."""

from __future__ import annotations

import asyncio

import pytest
from playwright._impl._errors import TargetClosedError
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from executor_service.browser import BrowserManager
from executor_service.classify import call_log, classify, net_error_code
from shared.errors import (
    AssertionFailure,
    BrowserUnavailable,
    FieldViolation,
    NavigationRefused,
    NotFoundError,
    ValidationError,
)
from shared.model import ErrorCategory
from tests.support import CHROMIUM_ARGS, chromium_path, closed_port


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (TimeoutError("slow"), ErrorCategory.TIMEOUT),  # asyncio.TimeoutError is this class since 3.11
        # A locator action that never found an element to act on: the page is not what the test expects.
        (PlaywrightTimeoutError("Locator.click: Timeout 500ms exceeded."), ErrorCategory.ASSERTION),
        (PlaywrightError("Locator.check: Error: Not a checkbox or radio button"), ErrorCategory.ASSERTION),
        (PlaywrightError("Locator.select_option: Error: Element is not a <select> element"), ErrorCategory.ASSERTION),
        # A navigation that timed out: the site was slow to answer.
        (PlaywrightTimeoutError("Page.goto: Timeout 500ms exceeded."), ErrorCategory.TIMEOUT),
        # A timed-out navigation still says "timeout" first, even with a net code in its log.
        (
            PlaywrightTimeoutError("Page.goto: Timeout 100ms exceeded. net::ERR_ABORTED"),
            ErrorCategory.TIMEOUT,
        ),
        (AssertionFailure("expected '#msg' to contain 'a', got 'b'"), ErrorCategory.ASSERTION),
        (
            PlaywrightError("Page.goto: net::ERR_NAME_NOT_RESOLVED at http://x.invalid/"),
            ErrorCategory.NETWORK,
        ),
        (
            PlaywrightError("Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/"),
            ErrorCategory.NETWORK,
        ),
        (TargetClosedError(), ErrorCategory.BROWSER),
        (PlaywrightError("Page.click: Target crashed"), ErrorCategory.BROWSER),
        (PlaywrightError("Protocol error (Page.navigate): Cannot navigate"), ErrorCategory.BROWSER),
        (BrowserUnavailable("no Chromium"), ErrorCategory.BROWSER),
        (OSError("disk full"), ErrorCategory.SYSTEM),
        (ConnectionResetError(), ErrorCategory.SYSTEM),
        (MemoryError(), ErrorCategory.SYSTEM),
        (NavigationRefused("http://10.0.0.1/ is a private address"), ErrorCategory.POLICY),
        (ValidationError([FieldViolation("definition.steps[0]", "has no action")]), ErrorCategory.VALIDATION),
        (NotFoundError("job"), ErrorCategory.UNKNOWN),
        (ValueError("bad"), ErrorCategory.UNKNOWN),
        (asyncio.CancelledError(), ErrorCategory.UNKNOWN),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_categories_follow_exception_types(exc: BaseException, category: ErrorCategory) -> None:
    assert classify(exc) is category


@pytest.mark.parametrize(
    "message",
    [
        'Locator.click: Unexpected token "" while parsing css selector "div[". Did you mean to CSS.escape it?',
        "Locator.click: SyntaxError: Failed to execute 'evaluate' on 'Document': The string '//*[' is not a valid "
        "XPath expression.",
        "Locator.click: InvalidSelectorError: Unexpected end of selector while parsing selector `nosuchrole[name=`",
        'Locator.click: Unknown engine "internal:foo" while parsing selector internal:foo=bar',
        'Locator.press: Unknown key: "NotAKey"',
        "Locator.fill: Error: Malformed value",  # a date input filled with what is no date
    ],
)
def test_a_step_input_playwright_refuses_is_a_validation_error(message: str) -> None:
    assert classify(PlaywrightError(message)) is ErrorCategory.VALIDATION


def test_a_page_saying_the_same_words_is_not() -> None:
    # Only Playwright's own refusal, right after the call's name, is the definition's fault.
    assert classify(PlaywrightError('Page.evaluate: Error: Unknown key: "x"')) is ErrorCategory.BROWSER


@pytest.mark.parametrize(
    "text",
    [
        "Timeout 500ms exceeded",
        "net::ERR_CONNECTION_REFUSED",
        "Target page, context or browser has been closed",
    ],
)
def test_text_alone_decides_nothing(text: str) -> None:
    # What a page or a library happens to print must not pick a retry policy.
    assert classify(RuntimeError(text)) is ErrorCategory.UNKNOWN
    assert net_error_code(RuntimeError(text)) is None


def test_a_page_saying_an_element_is_not_a_field_is_not_a_verdict() -> None:
    assert classify(PlaywrightError("Page.evaluate: Error: Element is not a <select> element")) is ErrorCategory.BROWSER


def test_the_call_log_keeps_what_playwright_found_each_once() -> None:
    message = (
        "Locator.click: Timeout 1500ms exceeded.\nCall log:\n"
        '  - waiting for locator("#b").first\n'
        '    - locator resolved to <button id="b">Click me</button>\n'
        "  - attempting click action\n"
        "    2 × waiting for element to be visible, enabled and stable\n"
        "      - element is visible, enabled and stable\n"
        "      - scrolling into view if needed\n"
        "      - done scrolling\n"
        '      - <div id="overlay"></div> intercepts pointer events\n'
        "    - retrying click action\n"
        "    - waiting 20ms\n"
        "    2 × waiting for element to be visible, enabled and stable\n"
        '      - <div id="overlay"></div> intercepts pointer events\n'
        '    - fill("what was typed")\n'
    )
    assert call_log(message) == [
        'waiting for locator("#b")',
        'locator resolved to <button id="b">Click me</button>',
        '<div id="overlay"></div> intercepts pointer events',
    ]
    assert call_log("Locator.click: Timeout 1500ms exceeded.") == []


def test_a_long_call_log_keeps_what_the_locator_waited_for_and_its_last_words() -> None:
    reasons = ["element is not visible", "element is not stable", "element is outside of the viewport"]
    lines = ['  - waiting for locator("#buy").first', "    - locator resolved to <button>Buy</button>"]
    lines += [f"      - {reason}" for reason in reasons]
    lines += ["      - element is visible, enabled and stable", "    - performing click action"]
    lines += [
        "    - retrying select option action, attempt #2",
        '      - <div id="cookie">…</div> intercepts pointer events',
    ]
    lines += ["    - click action done"]
    said = call_log("Locator.click: Timeout 1500ms exceeded.\nCall log:\n" + "\n".join(lines) + "\n")
    assert said == [
        'waiting for locator("#buy")',
        *reasons,
        '<div id="cookie">…</div> intercepts pointer events',
        "click action done",
    ]


def test_a_typed_value_over_several_lines_is_left_out_whole() -> None:
    message = (
        "Locator.fill: Timeout 500ms exceeded.\nCall log:\n"
        '  - waiting for locator("#ta").first\n'
        '    - fill("line-one\nline-two")\n'
        "      - element is not enabled\n"
    )
    assert call_log(message) == ['waiting for locator("#ta")', "element is not enabled"]


def test_a_click_that_was_done_and_waited_for_a_slow_page_is_a_timeout() -> None:
    message = (
        "Locator.click: Timeout 1500ms exceeded.\nCall log:\n"
        '  - waiting for locator("#slow").first\n'
        '    - locator resolved to <a id="slow" href="/x">go slow</a>\n'
        "  - click action done\n"
        "  - waiting for scheduled navigations to finish\n"
    )
    assert classify(PlaywrightTimeoutError(message)) is ErrorCategory.TIMEOUT
    assert (
        classify(PlaywrightError("Locator.click: Error: Element is not attached to the DOM")) is ErrorCategory.BROWSER
    )


def test_a_key_press_that_was_sent_and_waited_for_a_slow_page_is_a_timeout() -> None:
    # Playwright's own log of an Enter that submitted a form to a server answering late.
    message = (
        "Locator.press: Timeout 1500ms exceeded.\nCall log:\n"
        '  - waiting for locator("#t").first\n'
        '    - locator resolved to <input id="t" name="q"/>\n'
        '  - elementHandle.press("Enter")\n'
    )
    assert classify(PlaywrightTimeoutError(message)) is ErrorCategory.TIMEOUT
    assert call_log(message) == ['waiting for locator("#t")', 'locator resolved to <input id="t" name="q"/>']


def test_an_unknown_wrapper_falls_back_to_its_cause() -> None:
    try:
        try:
            raise PlaywrightError("Page.goto: net::ERR_CONNECTION_RESET at http://a/")
        except PlaywrightError as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        assert classify(outer) is ErrorCategory.NETWORK


def test_a_known_wrapper_wins_over_its_cause() -> None:
    outer = AssertionFailure("expected visible")
    outer.__cause__ = PlaywrightTimeoutError("Timeout 5ms exceeded.")
    assert classify(outer) is ErrorCategory.ASSERTION


def test_a_cause_cycle_ends() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a) is ErrorCategory.UNKNOWN


def test_net_error_code_parses_the_code() -> None:
    exc = PlaywrightError('Page.goto: net::ERR_NAME_NOT_RESOLVED at http://x.invalid/\nCall log:\n  - "load"')
    assert net_error_code(exc) == "ERR_NAME_NOT_RESOLVED"
    assert net_error_code(PlaywrightError("Page.click: Target crashed")) is None
    assert net_error_code(PlaywrightTimeoutError("Timeout; net::ERR_ABORTED")) is None


async def test_a_real_refused_connection() -> None:
    """What Chromium actually raises for a closed port on 127.0.0.1."""
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    await manager.start()
    try:
        session = await manager.new_context(viewport=None)
        page = await session.context.new_page()
        with pytest.raises(PlaywrightError) as info:
            await page.goto(f"http://127.0.0.1:{closed_port()}/", timeout=10_000)
        await session.close()
    finally:
        await manager.stop()
    assert type(info.value) is PlaywrightError
    assert net_error_code(info.value) == "ERR_CONNECTION_REFUSED"
    assert classify(info.value) is ErrorCategory.NETWORK
