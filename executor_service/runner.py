"""Run one test definition's steps in a browser context and report progress.

The runner carries out each step through its action's function (executor_service/actions.py),
with the step's timeout, records a `StepResult` per step (with the console errors and failed
requests the page saw meanwhile), turns what the guard refused into the step's error, takes
failure screenshots (kept through `Evidence`), and stops at the first failing step. It runs validated
definitions only and checks nothing validation has checked. It knows nothing of Redis, grpc,
retries or job state: the caller validates, reports the 0/5/10/95/100 % milestones, decides what a
failure means, and closes the context.

It must never swallow `asyncio.CancelledError` (a job timeout or cancel has to stop the run at
once), and never put a secret value into a step name, error message or log line.

A test whose steps are all requests runs in an `ApiSession` (executor_service/http_check.py): no
browser context, no page, so no page log and no screenshots; `needs_browser` tells the two apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from executor_service.actions import Run, open_secret, perform, screenshot, unsettled_screenshot
from executor_service.classify import call_log, classify
from executor_service.evidence import Evidence
from executor_service.guard import Guard, Session
from executor_service.http_check import ApiSession
from executor_service.http_client import HttpClient, PageClient
from executor_service.recording import PageLog, Recording
from executor_service.redact import masked
from shared import screenshots
from shared.actions import secrets as secrets_of
from shared.errors import FieldViolation, NavigationRefused, ValidationError
from shared.model import ArtifactPolicy, ErrorCategory, JobError, Request, StepResult, TestDefinition
from shared.sealed import Sealer, sealer_for
from shared.telemetry import record_step

__all__ = ["Reporter", "RunOutcome", "needs_browser", "open_secrets", "run_steps"]

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000
#: A failure screenshot is a courtesy; it must not hold a dying job up for a full step timeout.
#: Playwright's waits for the page to settle (fonts loaded) for at most this long, and then the
#: browser is asked for what it shows as it is, for at most as long again.
FAILURE_SCREENSHOT_TIMEOUT_MS = 2_000


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
        artifacts: The names of the artifacts the steps kept (`<attempt>/<file>`).
    """

    steps: tuple[StepResult, ...]
    error: JobError | None
    artifacts: tuple[str, ...]

    @property
    def success(self) -> bool:
        return self.error is None


def needs_browser(definition: TestDefinition) -> bool:
    """Whether a test needs a browser context: any step but a request does."""
    return not all(isinstance(step.action, Request) for step in definition.steps)


async def run_steps(
    session: Session | ApiSession,
    definition: TestDefinition,
    *,
    report: Reporter,
    evidence: Evidence,
    step_timeout_ms: int,
    artifact_policy: ArtifactPolicy,
    secret_key: str = "",
    recording: Recording | None = None,
    results: list[StepResult] | None = None,
    decided: Callable[[JobError | None], None] | None = None,
    timed_out: Callable[[], bool] | None = None,
) -> RunOutcome:
    """Run every step of `definition` in one new page of `session`, stopping at the first failure.

    Args:
        session: A fresh context and its guard, or for a test of request steps only an
            `ApiSession` (no page); the caller closes it (also on cancellation).
        definition: The test to run, validated (`shared.validation`): the steps trust it.
        report: Called before each step with 10-90 % progress.
        evidence: Where screenshots are made and kept: `<attempt>/step-NN-failure.png`,
            `<attempt>/<name or step-NN>.png` and `<attempt>/final.png`, NN being the 0-based
            step index as in `StepResult.index`. Elements a secret was typed into are masked.
        step_timeout_ms: Timeout of a step that sets none itself.
        artifact_policy: NEVER: no failure screenshot; ALWAYS: also a final one after success.
        secret_key: SENTINEL_SECRET_KEY, to open sealed secret fill values right before typing.
        recording: The context's trace, to mark each step in it (None: not traced).
        results: Where each step's result is added as it ends (None: a list of its own): the
            caller keeps the steps that ended when the run is stopped mid-way (timeout, cancel).
        decided: Told the verdict as soon as it is known — a step's failure, or None when the last
            step passed — before the evidence that follows it is made: a timeout during the
            evidence then keeps the verdict.
        timed_out: Whether the job's timeout has come: a step it stops then gets its failure
            screenshot before the stop goes on (a cancel or a shutdown stops at once).

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
    secrets = open_secrets(definition, sealer)
    guard = session.guard
    results = [] if results is None else results
    artifacts: list[str] = []

    def skip_from(start: int) -> None:
        for j in range(start, n):
            results.append(StepResult(index=j, name=steps[j].display_name, success=False, skipped=True))

    page = None
    if isinstance(session, Session):
        try:
            page = await session.context.new_page()
        except Exception as exc:  # a dead browser or context: no step ran, so none is to blame
            skip_from(0)
            failure = JobError(category=classify(exc), message=_error_text(exc, secrets), step_index=-1)
            return RunOutcome(steps=tuple(results), error=failure, artifacts=())
        # A mixed test's requests go through the page's own client: they share its cookies.
        client: HttpClient = PageClient(page.request)
    else:
        client = session.request
    run = Run(page, client, definition.base_url, evidence, sealer, guard)
    page_log = PageLog(page) if page is not None else None

    for i, step in enumerate(steps):
        await report(
            percentage=10 + 80 * i // n,
            current_step=i + 1,
            total_steps=n,
            step_name=step.display_name,
            message=f"Step {i + 1}/{n}: {step.display_name}",
        )
        if recording is not None:
            await recording.step(f"{i + 1}. {step.display_name}")
        started = time.monotonic()
        written: tuple[str, ...] = ()
        error: JobError | None = None
        run.statuses.clear()
        in_frame = dataclasses.replace(run, frames=step.frames) if step.frames else run  # the same lists
        try:
            if step.action is None:  # only an unvalidated definition has one; it runs nothing
                raise ValidationError([FieldViolation(f"definition.steps[{i}]", "has no action")])
            timeout_ms = step.timeout_ms or step_timeout_ms
            written = await perform(in_frame, step.action, index=i, timeout_ms=timeout_ms)
            _raise_refused(guard)
        except asyncio.CancelledError:
            # The job's timeout stopped this step: what the page shows is its evidence, as a failed
            # step's (the screenshot is bounded; the stop goes on after it).
            if timed_out is not None and timed_out() and artifact_policy is not ArtifactPolicy.NEVER:
                await _try_screenshot(run, screenshots.failure_name(i))
            raise
        except Exception as exc:  # CancelledError is a BaseException and passes through
            # A refused request explains whatever the step saw (a failed load, a missing element).
            cause = _refused(guard) or exc
            error = JobError(category=classify(cause), message=_error_text(cause, secrets), step_index=i)
        unreached = guard.take_failures() if guard is not None else []
        if error is not None and error.category is ErrorCategory.NETWORK and unreached:
            # Behind the egress proxy Chromium only says the request failed; the proxy knows why.
            error = dataclasses.replace(error, message=_masked(f"{error.message} ({unreached[-1]})", secrets))
        duration_ms = _elapsed_ms(started)
        if error is not None and decided is not None:
            decided(error)  # before anything else is asked of the page: a timeout from here keeps it
        if error is not None and step.frames and error.category in _ELEMENT_NOT_FOUND:
            missing = await _missing_frame(in_frame)
            if missing is not None:  # say which was not there: the frame, not the element in it
                said = f"{error.message} (no <iframe> matched {missing!r})"
                error = dataclasses.replace(error, message=_masked(said, secrets))
                if decided is not None:
                    decided(error)
        record_step(i, step.display_name, duration_ms=duration_ms, error=error.message if error else "")
        if recording is not None and run.statuses and isinstance(step.action, Request):
            await recording.answered(run.statuses[-1])
        if error is not None and recording is not None:
            await recording.failed(error.message)
        if error is not None and artifact_policy is not ArtifactPolicy.NEVER:
            written = await _try_screenshot(run, screenshots.failure_name(i))
        artifacts.extend(written)
        console_errors, failed_requests = page_log.take(lambda line: _masked(line, secrets)) if page_log else ((), ())
        results.append(
            StepResult(
                index=i,
                name=step.display_name,
                success=error is None,
                duration_ms=duration_ms,
                error=error.message if error else "",
                artifacts=written,
                console_errors=console_errors,
                failed_requests=failed_requests,
                http_status=run.statuses[-1] if run.statuses else 0,
            )
        )
        if error is not None:
            skip_from(i + 1)
            return RunOutcome(steps=tuple(results), error=error, artifacts=tuple(artifacts))

    if decided is not None:
        decided(None)
    if artifact_policy is ArtifactPolicy.ALWAYS:
        artifacts.extend(await _try_screenshot(run, screenshots.FINAL))
    return RunOutcome(steps=tuple(results), error=None, artifacts=tuple(artifacts))


#: The categories of a step that may have failed because its frame was not there.
_ELEMENT_NOT_FOUND = (ErrorCategory.ASSERTION, ErrorCategory.TIMEOUT)
#: How long the look for a failed step's missing frame may take (a page that no longer answers).
_FRAME_LOOK_S = 2.0


async def _missing_frame(run: Run) -> str | None:
    """The first of the step's frames that matches no <iframe> now; None when all are there, or when
    the page cannot say (a dead page must not turn into a second error)."""
    try:
        return await asyncio.wait_for(run.missing_frame(), _FRAME_LOOK_S)
    except Exception:  # best effort: the step's own error stands
        return None


async def _try_screenshot(run: Run, name: str) -> tuple[str, ...]:
    """A best-effort screenshot: a dead page must not turn into a second error; no page, none.

    A page still loading (a navigation that timed out, a server that has not answered) never
    settles for Playwright's screenshot; the browser is then asked for what it shows — often the
    blank page the user would have seen, which is the evidence — unless a secret was typed, which
    only Playwright's screenshot covers. A screenshot not taken is said in the notes."""
    if run.opened is None:
        return ()
    try:
        kept = await screenshot(run, name, timeout_ms=FAILURE_SCREENSHOT_TIMEOUT_MS)
    except (PlaywrightTimeoutError, TimeoutError):  # the page, or a masked field's frame, did not answer
        if run.masked:
            run.evidence.note(
                f"{run.evidence.name(screenshots.file_of(name))} not taken: the page did not settle within "
                f"{FAILURE_SCREENSHOT_TIMEOUT_MS / 1000:g} s, and only a settled page has its secret fields covered"
            )
            return ()
        try:
            kept = await unsettled_screenshot(run, name, timeout_ms=FAILURE_SCREENSHOT_TIMEOUT_MS)
        except Exception as exc:
            return _not_taken(run, name, exc)
    except Exception as exc:
        return _not_taken(run, name, exc)
    return (kept,) if kept else ()


def _not_taken(run: Run, name: str, exc: Exception) -> tuple[str, ...]:
    log.info("could not take screenshot %r", name, exc_info=exc)
    reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    run.evidence.note(f"{run.evidence.name(screenshots.file_of(name))} not taken: {reason[:200]}")
    return ()


def _error_text(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """The error's first line, trimmed, on one line with what Playwright's call log says went on
    (`call_log`: the element the locator resolved to, what intercepts the click), with every secret
    value masked."""
    text = masked(str(exc).strip() or type(exc).__name__, secrets)  # whole, before it is cut into lines
    said = text.splitlines()[0].strip()
    log = call_log(text)
    if secrets:  # an element's text cut short (`…`) may end in part of a secret, which no mask finds
        log = [line for line in log if "…" not in line]
    if log:
        said += f" Call log: {'; '.join(log)}"
    return said[:MAX_ERROR_CHARS]  # masked whole already


def _masked(line: str, secrets: tuple[str, ...]) -> str:
    """`line` trimmed, with every secret value masked in every form a message may quote it in
    (`redact.masked`). Where a message was cut short, its maker masked before cutting."""
    # A page may echo what was typed into it, and a server the headers it got, so an assertion's
    # "got ..." could carry a secret.
    return masked(line, secrets)[:MAX_ERROR_CHARS]


def open_secrets(definition: TestDefinition, sealer: Sealer | None) -> tuple[str, ...]:
    """Every secret value (fills, headers) in the clear, to mask it wherever a page or server might echo it."""
    found: list[str] = []
    for i, step in enumerate(definition.steps):
        for field, value in secrets_of(step.action).items() if step.action is not None else ():
            # One that cannot be opened fails its own step when it runs.
            with contextlib.suppress(ValidationError):
                found.append(open_secret(sealer, value, field=f"definition.steps[{i}].{field}"))
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
