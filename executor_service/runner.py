"""Run one test definition's steps in a browser context and report progress.

The runner turns each `shared.model` action into Playwright calls with explicit timeouts, records a
`StepResult` per step, writes screenshots under the artifacts root, and stops at the first
failing step. It knows nothing of Redis, grpc, retries or job state: the caller reports the
0/5/10/95/100 % milestones, decides what a failure means, and closes the context.

It must never swallow `asyncio.CancelledError` (a job timeout or cancel has to stop the run at
once), and never put a secret fill value into a step name, error message or log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from playwright.async_api import BrowserContext, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from executor_service.classify import classify
from executor_service.guard import Guard, guard_of
from shared.errors import AssertionFailure, FieldViolation, NavigationRefused, ValidationError
from shared.model import (
    Action,
    ArtifactPolicy,
    Check,
    Click,
    ErrorCategory,
    ExpectText,
    ExpectTitle,
    ExpectUrl,
    ExpectVisible,
    Fill,
    Hover,
    JobError,
    Navigate,
    Press,
    Screenshot,
    SelectOption,
    StepResult,
    TestDefinition,
    Wait,
    WaitFor,
)
from shared.sealed import SEALED_PREFIX, Sealer, sealer_for
from shared.telemetry import record_step
from shared.validation import resolve_url

__all__ = ["Reporter", "RunOutcome", "run_steps"]

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000
#: How often expect_* steps look again while they wait for their condition.
POLL_INTERVAL_S = 0.1
#: A failure screenshot is a courtesy; it must not hold a dying job up for a full step timeout.
FAILURE_SCREENSHOT_TIMEOUT_MS = 5_000
_MIN_PROBE_MS = 100.0

_WaitState = Literal["attached", "detached", "hidden", "visible"]
_WAIT_STATES: dict[str, _WaitState] = {
    "attached": "attached",
    "detached": "detached",
    "hidden": "hidden",
    "visible": "visible",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Reporter(Protocol):
    """Receives progress before each step; errors it raises end the run."""

    async def __call__(
        self, *, percentage: int, current_step: int, total_steps: int, step_name: str, message: str
    ) -> None: ...


@dataclass(frozen=True)
class RunOutcome:
    """What running a definition produced.

    Attributes:
        steps: One result per step; steps after a failure have `skipped=True, success=False`.
        error: None when every step passed; otherwise the failure, with `retryable=False` (the
            retry policy decides elsewhere).
        artifacts: Every artifact written, relative to the artifacts root.
    """

    steps: tuple[StepResult, ...]
    error: JobError | None
    artifacts: tuple[str, ...]

    @property
    def success(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Run:
    """What every step needs besides its own action."""

    page: Page
    base_url: str
    artifacts_root: Path
    artifact_prefix: str
    sealer: Sealer | None = None


async def run_steps(
    context: BrowserContext,
    definition: TestDefinition,
    *,
    report: Reporter,
    artifacts_root: Path,
    artifact_prefix: str,
    step_timeout_ms: int,
    artifact_policy: ArtifactPolicy,
    secret_key: str = "",
) -> RunOutcome:
    """Run every step of `definition` in one new page of `context`, stopping at the first failure.

    Args:
        context: A fresh context; the caller closes it (also on cancellation).
        definition: The test to run.
        report: Called before each step with 10-90 % progress.
        artifacts_root: Directory artifact paths are relative to.
        artifact_prefix: Sub-path for this attempt's files, e.g. "<job_id>/<attempt>".
        step_timeout_ms: Timeout of a step that sets none itself.
        artifact_policy: NEVER: no failure screenshot; ALWAYS: also a final one after success.
            Files are `<prefix>/step-NN-failure.png`, `<prefix>/<name or step-NN>.png` and
            `<prefix>/final.png`, NN being the 0-based step index as in `StepResult.index`.
        secret_key: SENTINEL_SECRET_KEY, to open sealed secret fill values right before typing.

    Returns:
        The per-step results, the failure (if any) and the artifacts written. Failing steps are
        a result, not an exception.

    Raises:
        asyncio.CancelledError: The surrounding task was cancelled; propagated untouched.
        ValueError: `step_timeout_ms` is not positive (Playwright would read 0 as "no timeout").
    """
    if step_timeout_ms <= 0:
        raise ValueError(f"step_timeout_ms must be >= 1, got {step_timeout_ms}")
    steps = definition.steps
    n = len(steps)
    sealer = sealer_for(secret_key)
    secrets = _open_secrets(definition, sealer)
    guard = guard_of(context)
    results: list[StepResult] = []
    artifacts: list[str] = []

    def skip_from(start: int) -> None:
        for j in range(start, n):
            results.append(StepResult(index=j, name=steps[j].display_name, success=False, skipped=True))

    try:
        page = await context.new_page()
    except Exception as exc:  # a dead browser or context: no step ran, so none is to blame
        skip_from(0)
        failure = JobError(category=classify(exc), message=_error_text(exc, secrets), step_index=-1)
        return RunOutcome(steps=tuple(results), error=failure, artifacts=())
    run = _Run(page, definition.base_url, artifacts_root, artifact_prefix, sealer)

    for i, step in enumerate(steps):
        await report(
            percentage=10 + 80 * i // n,
            current_step=i + 1,
            total_steps=n,
            step_name=step.display_name,
            message=f"Step {i + 1}/{n}: {step.display_name}",
        )
        started = time.monotonic()
        written: tuple[str, ...] = ()
        error: JobError | None = None
        try:
            if step.action is None:
                raise ValidationError([FieldViolation(f"definition.steps[{i}]", "has no action")])
            timeout_ms = step.timeout_ms or step_timeout_ms
            written = await _perform(run, step.action, index=i, timeout_ms=timeout_ms)
            _raise_refused(guard)
        except Exception as exc:  # CancelledError is a BaseException and passes through
            # A refused request explains whatever the step saw (a failed load, a missing element).
            cause = _refused(guard) or exc
            error = JobError(category=classify(cause), message=_error_text(cause, secrets), step_index=i)
        unreached = guard.take_failures() if guard is not None else []
        if error is not None and error.category is ErrorCategory.NETWORK and unreached:
            # Behind the egress proxy Chromium only says the request failed; the proxy knows why.
            error = dataclasses.replace(error, message=_masked(f"{error.message} ({unreached[-1]})", secrets))
        duration_ms = _elapsed_ms(started)
        record_step(i, step.display_name, duration_ms=duration_ms, error=error.message if error else "")
        if error is not None and artifact_policy is not ArtifactPolicy.NEVER:
            written = await _try_screenshot(run, f"step-{i:02d}-failure")
        artifacts.extend(written)
        results.append(
            StepResult(
                index=i,
                name=step.display_name,
                success=error is None,
                duration_ms=duration_ms,
                error=error.message if error else "",
                artifacts=written,
            )
        )
        if error is not None:
            skip_from(i + 1)
            return RunOutcome(steps=tuple(results), error=error, artifacts=tuple(artifacts))

    if artifact_policy is ArtifactPolicy.ALWAYS:
        artifacts.extend(await _try_screenshot(run, "final"))
    return RunOutcome(steps=tuple(results), error=None, artifacts=tuple(artifacts))


async def _perform(run: _Run, action: Action, *, index: int, timeout_ms: int) -> tuple[str, ...]:
    """Carry out one action; returns the artifacts it wrote."""
    page = run.page
    t = float(timeout_ms)
    match action:
        case Navigate(url=url):
            # An HTTP error status is a page like any other; only a failed load raises.
            await page.goto(resolve_url(run.base_url, url), timeout=t)
        case Click(selector=sel):
            await page.locator(sel).first.click(timeout=t)
        case Fill(selector=sel, value=value, secret=secret):
            if secret:
                value = _open(run.sealer, value, index=index)
            await page.locator(sel).first.fill(value, timeout=t)
        case Press(selector=sel, key=key):
            await page.locator(sel).first.press(key, timeout=t)
        case SelectOption(selector=sel, value=value):
            await page.locator(sel).first.select_option(value=value, timeout=t)
        case Check(selector=sel, checked=checked):
            locator = page.locator(sel).first
            await (locator.check(timeout=t) if checked else locator.uncheck(timeout=t))
        case Hover(selector=sel):
            await page.locator(sel).first.hover(timeout=t)
        case WaitFor(selector=sel, state=state):
            if state not in _WAIT_STATES:
                allowed = "|".join(_WAIT_STATES)
                field = f"definition.steps[{index}].wait_for.state"
                raise ValidationError([FieldViolation(field, f"must be one of {allowed}, got {state!r}")])
            await page.locator(sel).first.wait_for(state=_WAIT_STATES[state], timeout=t)
        case ExpectText():
            await _expect_text(page, action, timeout_ms)
        case ExpectVisible(selector=sel):
            try:
                await page.locator(sel).first.wait_for(state="visible", timeout=t)
            except PlaywrightTimeoutError:
                raise AssertionFailure(f"expected {sel!r} to be visible within {timeout_ms} ms") from None
        case ExpectTitle(text=text):
            await _expect_title(page, text, timeout_ms)
        case ExpectUrl(pattern=pattern):
            await _expect_url(page, pattern, index=index, timeout_ms=timeout_ms)
        case Screenshot(name=name, full_page=full_page):
            return (await _screenshot(run, name or f"step-{index:02d}", full_page=full_page, timeout_ms=t),)
        case Wait(ms=ms):
            await asyncio.sleep(ms / 1000)
    return ()


async def _expect_text(page: Page, action: ExpectText, timeout_ms: int) -> None:
    locator = page.locator(action.selector).first
    expected = f'expected "{action.selector}" to contain {action.text!r}'
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
        if got is not None and action.text in got:
            return
        if time.monotonic() >= deadline:
            raise AssertionFailure(f"{expected}, got {got!r}")
        await asyncio.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0.0)))


async def _expect_title(page: Page, text: str, timeout_ms: int) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        title = await page.title()
        if text in title:
            return
        if time.monotonic() >= deadline:
            raise AssertionFailure(f"expected the title to contain {text!r}, got {title!r}")
        await asyncio.sleep(POLL_INTERVAL_S)


async def _expect_url(page: Page, pattern: str, *, index: int, timeout_ms: int) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        field = f"definition.steps[{index}].expect_url.pattern"
        raise ValidationError([FieldViolation(field, f"is not a valid regular expression: {exc}")]) from exc
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        # page.url is tracked on our side of the connection: reading it cannot fail or block.
        if compiled.search(page.url):
            return
        if time.monotonic() >= deadline:
            raise AssertionFailure(f"expected the url to match {pattern!r}, got {page.url!r}")
        await asyncio.sleep(POLL_INTERVAL_S)


async def _screenshot(run: _Run, name: str, *, full_page: bool = False, timeout_ms: float) -> str:
    """Save a PNG under the attempt's prefix; returns its path relative to the artifacts root."""
    # The name comes from the test definition: keep it to one plain file name inside the prefix.
    safe = _UNSAFE_NAME.sub("-", name.removesuffix(".png")).strip(".-") or "screenshot"
    relative = f"{run.artifact_prefix}/{safe}.png" if run.artifact_prefix else f"{safe}.png"
    path = run.artifacts_root / relative
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    await run.page.screenshot(path=path, full_page=full_page, timeout=timeout_ms)
    return relative


async def _try_screenshot(run: _Run, name: str) -> tuple[str, ...]:
    """A best-effort screenshot: a dead page must not turn into a second error."""
    try:
        return (await _screenshot(run, name, timeout_ms=FAILURE_SCREENSHOT_TIMEOUT_MS),)
    except Exception:
        log.info("could not take screenshot %r", name, exc_info=True)
        return ()


def _error_text(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """The first line of the error, trimmed, with every secret fill value masked."""
    text = str(exc).strip() or type(exc).__name__
    return _masked(text.splitlines()[0].strip(), secrets)


def _masked(line: str, secrets: tuple[str, ...]) -> str:
    """`line` trimmed, with every secret fill value masked."""
    # A page may echo what was typed into it, so an assertion's "got ..." could carry a secret.
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line[:MAX_ERROR_CHARS]


def _open(sealer: Sealer | None, value: str, *, index: int) -> str:
    """A secret fill value in the clear. Jobs from the API always carry it sealed; a value that is
    not (a definition handed to the runner directly) is typed as given."""
    if not value.startswith(SEALED_PREFIX):
        return value
    field = f"definition.steps[{index}].fill.value"
    if sealer is None:
        raise ValidationError([FieldViolation(field, "is secret but this executor has no SENTINEL_SECRET_KEY")])
    return sealer.open(value, field=field)


def _open_secrets(definition: TestDefinition, sealer: Sealer | None) -> tuple[str, ...]:
    """Every secret fill value in the clear, to mask it wherever a page might echo it."""
    found: list[str] = []
    for i, step in enumerate(definition.steps):
        if isinstance(step.action, Fill) and step.action.secret:
            # One that cannot be opened fails its own step when it runs.
            with contextlib.suppress(ValidationError):
                found.append(_open(sealer, step.action.value, index=i))
    return tuple(found)


def _refused(guard: Guard | None) -> NavigationRefused | None:
    refusals = guard.take_refusals() if guard is not None else []
    if not refusals:
        return None
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    return NavigationRefused(refusals[0].describe() + more)


def _raise_refused(guard: Guard | None) -> None:
    refused = _refused(guard)
    if refused is not None:
        raise refused


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
