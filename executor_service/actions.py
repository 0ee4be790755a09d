"""What each step action does in the browser: one runner function per action, in one table.

`@performs(Navigate)` registers the function that carries out a `Navigate`; `perform` looks the
action's class up in `PERFORMERS`. The actions themselves and what makes one valid are declared
in `shared.actions`; tests/test_action_registry.py checks every action there has a function here.

Every function gets a *validated* action (the executor validates a job before it runs it): none of
them checks its input again. Each uses the step's timeout for everything it waits on, raises
`AssertionFailure` when an expectation does not hold, and returns the names of the artifacts it
kept (None: none). None of them may put a secret value into an error message or log line.

A test of request steps only runs without a page (`Run.page` then raises): its steps need only
`Run.request`, the HTTP client (executor_service/http_check.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar, cast

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, FrameLocator, Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from executor_service.evidence import Evidence
from executor_service.guard import Guard
from executor_service.http_check import check
from executor_service.http_client import HttpClient
from shared import screenshots
from shared.errors import AssertionFailure, FieldViolation, ValidationError
from shared.model import (
    Action,
    Check,
    Click,
    ExpectText,
    ExpectTitle,
    ExpectUrl,
    ExpectVisible,
    Fill,
    Hover,
    Navigate,
    Press,
    Request,
    Screenshot,
    SelectOption,
    Wait,
    WaitFor,
)
from shared.sealed import SEALED_PREFIX, Sealer
from shared.validation import resolve_url

__all__ = ["PERFORMERS", "Run", "open_secret", "perform", "performs", "screenshot"]

#: How long pinning a secret's mask to its frame may take after the fill (a page that stops answering).
_PIN_S = 5.0
#: How often expect_* steps look again while they wait for their condition.
POLL_INTERVAL_S = 0.1
_MIN_PROBE_MS = 100.0
#: What Playwright says when `fill` meets an element that takes no text.
_NOT_FILLABLE = "Element is not an <input>"
_NOT_SELECT = "Element is not a <select> element"
#: The status the page's document was loaded with (Navigation Timing's responseStatus; 0: unknown).
_DOCUMENT_STATUS = "() => performance.getEntriesByType('navigation')[0]?.responseStatus ?? 0"

_WaitState = Literal["attached", "detached", "hidden", "visible"]
Artifacts: TypeAlias = tuple[str, ...]


@dataclass
class Mask:
    """An element a secret was typed into, which every screenshot covers: the field's selector in the
    frame the fill reached. The frame is pinned once the fill is done, so a page that adds or
    replaces iframes later cannot move the mask to another frame; a mask whose frame is gone (its
    iframe removed) covers nothing, as its field is gone too."""

    frames: tuple[str, ...]
    selector: str
    frame: Frame | None = None  # None until pinned: a fill that failed may have typed part of it


@dataclass(frozen=True)
class Run:
    """What every step needs besides its own action.

    Attributes:
        opened: The test's page; None for a test of request steps only, which has no browser context.
        request: The HTTP client of request steps (the page's own when there is a page: shared cookies).
        guard: Checks every request step's URL and redirect hops (None: unguarded, tests only).
        masked: The elements a secret value was typed into; every screenshot covers them.
        statuses: The final status of each request or page load a step made (the runner reads and clears it
            per step).
        frames: The iframe the running step acts in (`Step.frames`; the runner sets it per step).
    """

    opened: Page | None
    request: HttpClient
    base_url: str
    evidence: Evidence
    sealer: Sealer | None = None
    guard: Guard | None = None
    masked: list[Mask] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    frames: tuple[str, ...] = ()

    @property
    def page(self) -> Page:
        """The page. A test runs without one only when all its steps are requests, which never ask."""
        if self.opened is None:
            raise RuntimeError("this test runs without a browser page")
        return self.opened

    def element(self, selector: str) -> Locator:
        """The first element `selector` matches in the step's frame."""
        return locate(self.page, self.frames, selector).first

    def shown(self, selector: str) -> str:
        """`selector` as messages quote it, with the frame it is looked for in."""
        return f'"{selector}"{frames_shown(self.frames)}'

    async def missing_frame(self) -> str | None:
        """The first of the step's frames that matches no <iframe> now (None: all are there)."""
        return (await _walk_frames(self.page, self.frames))[1]


def frames_shown(frames: tuple[str, ...]) -> str:
    """` in frame "#a" » "iframe"`, as messages and step names show a step's frames ("" for none):
    quoted, and joined by what no selector holds."""
    return f" in frame {' » '.join(f'{chr(34)}{f}{chr(34)}' for f in frames)}" if frames else ""


async def frame_of(page: Page, frames: tuple[str, ...]) -> Frame | None:
    """The frame `frames` leads to now, without waiting (None: one of them matches no <iframe>)."""
    return (await _walk_frames(page, frames))[0]


async def _walk_frames(page: Page, frames: tuple[str, ...]) -> tuple[Frame | None, str | None]:
    """Follow `frames` from the page as they are now, without waiting: the frame they lead to, or
    None and the first selector that matched no <iframe>."""
    frame = page.main_frame
    for selector in frames:
        handles = await frame.locator(selector).element_handles()
        try:
            inner = await handles[0].content_frame() if handles else None
        finally:
            for handle in handles:
                await handle.dispose()
        if inner is None:
            return None, selector
        frame = inner
    return frame, None


def locate(page: Page, frames: tuple[str, ...], selector: str) -> Locator:
    """Every element `selector` matches inside `frames`: the first <iframe> the first selector matches
    on the page, then the first the next one matches in that frame's document, and so on (like an
    element, a frame is the first match: nothing here is strict). Playwright follows a frame across
    origins and processes, and waits for it as it waits for an element."""
    scope: Page | FrameLocator = page
    for frame in frames:
        scope = scope.locator(frame).first.content_frame
    return scope.locator(selector)


_A = TypeVar("_A")
#: A runner function: (run, action, step index, step timeout in ms) → the artifacts it wrote.
Performer: TypeAlias = Callable[[Run, _A, int, int], Awaitable[Artifacts | None]]

#: The runner function of every action class.
PERFORMERS: dict[type[Any], Performer[Any]] = {}


def performs(cls: type[_A]) -> Callable[[Performer[_A]], Performer[_A]]:
    """Register the decorated function as what runs an action of class `cls`."""

    def register(fn: Performer[_A]) -> Performer[_A]:
        if cls in PERFORMERS:
            raise TypeError(f"{cls.__name__} already runs with {PERFORMERS[cls].__name__}")
        PERFORMERS[cls] = fn
        return fn

    return register


async def perform(run: Run, action: Action, *, index: int, timeout_ms: int) -> Artifacts:
    """Carry out one validated action; returns the artifacts it wrote."""
    return await PERFORMERS[type(action)](run, action, index, timeout_ms) or ()


# --- the actions -----------------------------------------------------------------------------


@performs(Navigate)
async def _navigate(run: Run, action: Navigate, index: int, timeout_ms: int) -> None:
    # An HTTP error status is a page like any other (only a failed load raises) unless the step
    # expects one; the status is the step's either way. No response: the URL changed only its
    # #fragment, and the document is the one last loaded.
    url = resolve_url(run.base_url, action.url)
    response = await run.page.goto(url, timeout=timeout_ms)
    status = response.status if response is not None else int(await run.page.evaluate(_DOCUMENT_STATUS) or 0)
    run.statuses.append(status)
    if action.expect_status and status != action.expect_status:
        got = f"HTTP {status}" if status else "no HTTP status (a document not loaded over HTTP, or its status unknown)"
        raise AssertionFailure(f"expected {url} to answer HTTP {action.expect_status}, got {got}")


@performs(Click)
async def _click(run: Run, action: Click, index: int, timeout_ms: int) -> None:
    await run.element(action.selector).click(timeout=timeout_ms)


@performs(Fill)
async def _fill(run: Run, action: Fill, index: int, timeout_ms: int) -> None:
    value = (
        open_secret(run.sealer, action.value, field=f"definition.steps[{index}].fill.value")
        if action.secret
        else action.value
    )
    mask = Mask(run.frames, action.selector, None if run.frames else run.page.main_frame) if action.secret else None
    if mask is not None:
        run.masked.append(mask)  # before typing: a failure mid-fill is screenshotted too
    locator = run.element(action.selector)
    try:
        await locator.fill(value, timeout=timeout_ms)
    except PlaywrightError as exc:
        if _NOT_FILLABLE not in exc.message:
            raise
        # A <select>: Chrome's Recorder records choosing an option as a `change` (imported as a
        # fill), so a fill of a <select> chooses the option with that value or label.
        try:
            await locator.select_option(value, timeout=timeout_ms)
        except PlaywrightError as not_select:
            if _NOT_SELECT in not_select.message:
                raise exc from None  # no <select> either: the fill's own error says what the element is not
            raise
    if mask is not None and mask.frame is None:
        # Where the value was just typed. A page that stops answering now leaves the mask unpinned:
        # each screenshot then looks the frame up again, within its own time.
        with contextlib.suppress(TimeoutError):
            mask.frame = await asyncio.wait_for(frame_of(run.page, run.frames), _PIN_S)


@performs(Press)
async def _press(run: Run, action: Press, index: int, timeout_ms: int) -> None:
    await run.element(action.selector).press(action.key, timeout=timeout_ms)


@performs(SelectOption)
async def _select(run: Run, action: SelectOption, index: int, timeout_ms: int) -> None:
    await run.element(action.selector).select_option(value=action.value, timeout=timeout_ms)


@performs(Check)
async def _check(run: Run, action: Check, index: int, timeout_ms: int) -> None:
    locator = run.element(action.selector)
    await (locator.check(timeout=timeout_ms) if action.checked else locator.uncheck(timeout=timeout_ms))


@performs(Hover)
async def _hover(run: Run, action: Hover, index: int, timeout_ms: int) -> None:
    await run.element(action.selector).hover(timeout=timeout_ms)


@performs(WaitFor)
async def _wait_for(run: Run, action: WaitFor, index: int, timeout_ms: int) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    left_ms = timeout_ms
    if run.frames and action.state in ("hidden", "detached"):
        # Playwright counts an element of a frame that is not there as hidden: a misspelt frame would
        # make the wait pass without looking at anything. The frames must be there first.
        scope: Page | FrameLocator = run.page
        for frame in run.frames:
            try:
                await scope.locator(frame).first.wait_for(state="attached", timeout=_left_ms(deadline))
            except PlaywrightTimeoutError:
                why = f"no <iframe> matched {frame!r} within {timeout_ms} ms"
                raise AssertionFailure(f"expected {run.shown(action.selector)} {action.state}, but {why}") from None
            scope = scope.locator(frame).first.content_frame
        left_ms = _left_ms(deadline)
    # Validation allows only the states Playwright knows.
    await run.element(action.selector).wait_for(state=cast(_WaitState, action.state), timeout=left_ms)


def _left_ms(deadline: float) -> int:
    """What is left of a step's time until `deadline`, never 0 (Playwright's "no timeout")."""
    return max(int((deadline - time.monotonic()) * 1000), 1)


@performs(ExpectText)
async def _expect_text(run: Run, action: ExpectText, index: int, timeout_ms: int) -> None:
    locator = run.element(action.selector)
    expected = f"expected {run.shown(action.selector)} to contain {action.text!r}"
    deadline = time.monotonic() + timeout_ms / 1000
    seen = False
    got: str | None = None
    while True:
        remaining_ms = (deadline - time.monotonic()) * 1000
        try:
            # text_content waits for the element to exist, so the first call may use up the rest;
            # the floor keeps a last look from timing out on its own round trip.
            got = await locator.text_content(timeout=max(remaining_ms, _MIN_PROBE_MS))
            seen = True
        except PlaywrightTimeoutError:
            if not seen:
                raise AssertionFailure(f"{expected}, but no element matched within {timeout_ms} ms") from None
        if got is not None and _contains(got, action.text):
            return
        if time.monotonic() >= deadline:
            raise AssertionFailure(f"{expected}, got {got!r}")
        await asyncio.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0.0)))


def _contains(got: str, text: str) -> bool:
    """Whether `got` contains `text` as Playwright's toContainText compares them: every run of white
    space (line breaks and indentation of the HTML, no-break spaces) one space, none at either end,
    zero-width spaces gone. A `text` of white space only is looked for as it is."""
    wanted = _spaced(text)
    return wanted in _spaced(got) if wanted else text in got


def _spaced(text: str) -> str:
    return " ".join(text.replace("\u200b", "").split())


@performs(ExpectVisible)
async def _expect_visible(run: Run, action: ExpectVisible, index: int, timeout_ms: int) -> None:
    try:
        await run.element(action.selector).wait_for(state="visible", timeout=timeout_ms)
    except PlaywrightTimeoutError:
        raise AssertionFailure(f"expected {run.shown(action.selector)} to be visible within {timeout_ms} ms") from None


@performs(ExpectTitle)
async def _expect_title(run: Run, action: ExpectTitle, index: int, timeout_ms: int) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        title = await run.page.title()
        if action.text in title:
            return
        if time.monotonic() >= deadline:
            raise AssertionFailure(f"expected the title to contain {action.text!r}, got {title!r}")
        await asyncio.sleep(POLL_INTERVAL_S)


@performs(ExpectUrl)
async def _expect_url(run: Run, action: ExpectUrl, index: int, timeout_ms: int) -> None:
    compiled = re.compile(action.pattern)  # validation compiled it once already
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        # page.url is tracked on our side of the connection: reading it cannot fail or block.
        if compiled.search(run.page.url):
            return
        if time.monotonic() >= deadline:
            raise AssertionFailure(f"expected the url to match {action.pattern!r}, got {run.page.url!r}")
        await asyncio.sleep(POLL_INTERVAL_S)


@performs(Screenshot)
async def _screenshot(run: Run, action: Screenshot, index: int, timeout_ms: int) -> Artifacts:
    name = await screenshot(
        run, screenshots.step_name(action.name, index), full_page=action.full_page, timeout_ms=timeout_ms
    )
    return (name,) if name else ()


@performs(Wait)
async def _wait(run: Run, action: Wait, index: int, timeout_ms: int) -> None:
    await asyncio.sleep(action.ms / 1000)


@performs(Request)
async def _request(run: Run, action: Request, index: int, timeout_ms: int) -> None:
    headers = {
        name: open_secret(run.sealer, value, field=f"definition.steps[{index}].request.headers[{name}]")
        if action.is_secret(name)
        else value
        for name, value in action.headers.items()
    }
    url = resolve_url(run.base_url, action.url)
    await check(run.request, run.guard, action, url=url, headers=headers, timeout_ms=timeout_ms, statuses=run.statuses)


# --- shared with the runner ------------------------------------------------------------------


async def screenshot(run: Run, name: str, *, full_page: bool = False, timeout_ms: float) -> str | None:
    """Take a PNG with every secret-holding element masked and keep it as `<attempt>/<name>.png`.

    Returns:
        Its artifact name, or None when it could not be stored (the evidence notes why).
    """
    file = screenshots.file_of(name)
    covers = await _mask_locators(run, timeout_ms)
    mask = [locator for _, locator in covers]
    framed = [(frame, locator) for frame, locator in covers if frame.parent_frame is not None]
    try:
        # Playwright draws its masks and captures at once. A frame from another site is drawn by a
        # renderer of its own, which a busy machine may not have repainted by then (a secret field
        # was seen unmasked so); such masks are drawn first and waited for, painted, here.
        await asyncio.wait_for(_painted_masks(framed), timeout_ms / 1000)
        await run.page.screenshot(path=run.evidence.path(file), full_page=full_page, timeout=timeout_ms, mask=mask)
    finally:
        await _remove_painted_masks(framed)
    return await run.evidence.keep(file, content_type="image/png")


#: A frame's own masks, drawn over its secret fields, then two animation frames waited for: the
#: renderer has painted them. Removed with `_UNPAINT`.
_PAINT = """(elements, color) => {
  for (const element of elements) {
    const box = element.getBoundingClientRect();
    const cover = document.createElement("div");
    cover.setAttribute("data-sentinel-mask", "");
    Object.assign(cover.style, {
      position: "fixed", left: `${box.left}px`, top: `${box.top}px`, width: `${box.width}px`,
      height: `${box.height}px`, background: color, zIndex: "2147483647", pointerEvents: "none",
    });
    document.documentElement.appendChild(cover);
  }
  return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(elements.length))));
}"""
_UNPAINT = "() => { for (const cover of document.querySelectorAll('[data-sentinel-mask]')) cover.remove(); }"
_MASK_COLOR = "#FF00FF"  # Playwright's own mask colour


async def _painted_masks(framed: list[tuple[Frame, Locator]]) -> None:
    for _, locator in framed:
        await locator.evaluate_all(_PAINT, _MASK_COLOR)


async def _remove_painted_masks(framed: list[tuple[Frame, Locator]]) -> None:
    for frame in dict.fromkeys(frame for frame, _ in framed):  # each frame's covers at once
        with contextlib.suppress(PlaywrightError, TimeoutError):  # a frame gone takes its covers with it
            await asyncio.wait_for(frame.evaluate(_UNPAINT), 2.0)


async def _mask_locators(run: Run, timeout_ms: float) -> list[tuple[Frame, Locator]]:
    """What the screenshot covers.

    Raises:
        TimeoutError: an unpinned mask's frame could not be looked up within `timeout_ms` (a page
            that no longer answers): no screenshot, since its field could not be covered.
    """
    covered: list[tuple[Frame, Locator]] = []
    for mask in run.masked:
        # Unpinned: a fill that failed; cover its field where the frames lead now, if they lead anywhere
        # (a frame that was not there took nothing typed).
        frame = mask.frame or await asyncio.wait_for(frame_of(run.page, mask.frames), timeout_ms / 1000)
        if frame is not None and not frame.is_detached():
            covered.append((frame, frame.locator(mask.selector)))
    return covered


async def unsettled_screenshot(run: Run, name: str, *, timeout_ms: float) -> str | None:
    """What the browser shows now, straight from Chromium (CDP `Page.captureScreenshot`), kept as
    `screenshot` keeps one. For a page Playwright's screenshot waits on for ever — one whose
    navigation has not committed yet, where it waits for the coming document's fonts — so it masks
    nothing: only for a test that typed no secret (`run.masked` empty).
    """
    file = screenshots.file_of(name)
    # Never detached: on a page still navigating, Chromium does not answer a detach (seen with
    # Chromium 156); the session goes with the context, which the attempt closes next.
    session = await run.page.context.new_cdp_session(run.page)
    shot = await asyncio.wait_for(session.send("Page.captureScreenshot", {"format": "png"}), timeout_ms / 1000)
    run.evidence.path(file).write_bytes(base64.b64decode(shot["data"]))
    return await run.evidence.keep(file, content_type="image/png")


def open_secret(sealer: Sealer | None, value: str, *, field: str) -> str:
    """A secret value (at `field`, for errors) in the clear. Jobs from the API always carry it
    sealed; a value that is not (a definition handed to the runner directly) is used as given.

    Raises:
        ValidationError: the value is sealed and cannot be opened here (no key, or another key).
    """
    if not value.startswith(SEALED_PREFIX):
        return value
    if sealer is None:
        raise ValidationError([FieldViolation(field, "is secret but this executor has no SENTINEL_SECRET_KEY")])
    return sealer.open(value, field=field)
