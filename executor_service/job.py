"""Running one job: progress, the job timeout, the browser context, the final state.

The progress scale is Sentinel's original one: 0 start, 5 validated, 10 browser ready,
10 + 80·i/n before step i, 95 cleanup, 100 done. The job's timeout covers everything from the
claim on and really stops the work: the run is cancelled and its browser context closed.

Every run goes through here, whichever way it came: claimed from the queue, or handed over by a
direct Run call. Only where progress and the end are recorded differs: the run's `Ledger`
(executor_service/ledger.py).

Each attempt has its `Evidence` (executor_service/evidence.py): screenshots, the trace and the
video are uploaded as they are made, and the result lists what was kept and notes what was not,
however the run ended (passed, failed, timed out, cancelled).

A test whose steps are all requests (API checks) opens no browser context: it runs with a
standalone HTTP client (`BrowserManager.new_api_session`), and has no trace, screenshots or video.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from executor_service.browser import BrowserManager
from executor_service.classify import classify
from executor_service.evidence import Evidence
from executor_service.guard import Session
from executor_service.http_check import ApiSession
from executor_service.ledger import Ledger
from executor_service.recording import Recording, keeps
from executor_service.runner import RunOutcome, needs_browser, open_secrets, run_steps
from executor_service.store import Claim
from shared import retry
from shared.artifact_store import ArtifactStore
from shared.clock import now_ms
from shared.errors import CancelRequested, FieldViolation, LeaseLost, ValidationError
from shared.model import (
    ArtifactPolicy,
    ErrorCategory,
    JobError,
    JobResult,
    JobState,
    Progress,
    RunEnd,
    StepResult,
    TestDefinition,
)
from shared.sealed import sealer_for
from shared.settings import ExecutorSettings, QueueSettings
from shared.validation import validate_definition

log = logging.getLogger(__name__)

#: Why a run whose lease was lost stops, as far as the executor can tell.
NOT_OURS = "the run is no longer this executor's (another executor took it over, or the job is gone from Redis)"


@dataclass
class RunState:
    """What a running job has reported so far (read by GetWorkerStatus and on timeout)."""

    claim: Claim
    #: Where the run's progress and end are recorded.
    ledger: Ledger
    started_ms: int = field(default_factory=now_ms)
    progress: Progress = field(default_factory=Progress)
    cancel_requested: bool = False
    lease_lost: bool = False
    evidence: Evidence | None = None
    #: The steps that have ended in this run, in order (`run_steps` adds each as it ends): what a
    #: timeout or a cancel keeps of them.
    steps: list[StepResult] = field(default_factory=list)
    #: The run's verdict once its steps decided it (before the evidence that follows is made): a
    #: step's failure, or None when every step passed. What the run ends with even if the job's
    #: timeout fires while the evidence is made or uploaded.
    verdict: JobError | None = None
    decided: bool = False
    #: When the job's timeout comes, on the event loop's clock (set as the steps begin).
    deadline: float = math.inf
    #: The run's task has begun (`Runs.cancel` may cancel it; before, the run sees the request as it begins).
    begun: bool = False

    def timed_out(self) -> bool:
        """The job's timeout has come (what a cancellation of its steps then is; else a cancel or a shutdown)."""
        return asyncio.get_running_loop().time() >= self.deadline

    def decide(self, error: JobError | None) -> None:
        """The steps decided the run: a step failed with `error`, or (None) every step passed
        (`run_steps` says so before making the evidence that follows)."""
        self.verdict, self.decided = error, True


@dataclass(frozen=True)
class JobEnv:
    #: The retry policies and defaults a run's end is judged by.
    queue_settings: QueueSettings
    browser: BrowserManager
    settings: ExecutorSettings
    worker_id: str
    #: SENTINEL_SECRET_KEY (SecuritySettings), to open sealed secret fill values right before typing.
    secret_key: str = ""
    #: Where screenshots, traces and videos go (None: nowhere; each result notes it).
    store: ArtifactStore | None = None


class _Reporter:
    """A run's progress reports. Awaiting a report waits until it (and every report handed over
    before it) is recorded, and raises what it came back with: the run must stop (its cancel was
    requested, or its lease was lost). `hand_over` reports without waiting; the ledger records a
    run's reports in the order they were handed over, and reports made in one loop turn go in one
    write. (Handing every report over without waiting was measured too: it cost the queue core
    ~25% more executor CPU a job, bench/notes/core.md.)
    """

    def __init__(self, state: RunState) -> None:
        self._state = state
        self._unsettled: deque[asyncio.Future[None]] = deque()

    async def __call__(
        self, *, percentage: int, current_step: int, total_steps: int, step_name: str, message: str
    ) -> None:
        self.hand_over(
            percentage=percentage,
            current_step=current_step,
            total_steps=total_steps,
            step_name=step_name,
            message=message,
        )
        await self.settle()

    def hand_over(self, *, percentage: int, current_step: int, total_steps: int, step_name: str, message: str) -> None:
        """Report now without waiting for the write; what it comes back with is raised by the next
        awaited report or `settle()`."""
        progress = Progress(
            percentage=percentage,
            current_step=current_step,
            total_steps=total_steps,
            step_name=step_name,
            message=message,
            updated_at_ms=now_ms(),
        )
        self._state.progress = progress
        self._unsettled.append(self._state.ledger.progress_soon(self._state.claim, progress))

    async def settle(self) -> None:
        """Wait until every report handed over is recorded; raise the first one's reason to stop
        (LeaseLost, CancelRequested)."""
        first: BaseException | None = None
        while self._unsettled:
            try:
                await self._unsettled.popleft()
            except (LeaseLost, CancelRequested) as exc:
                first = first or exc
        if first is not None:
            raise first

    def close(self) -> None:
        """The run is over: reports still unrecorded are no longer waited for (they are written all
        the same), and a reason to stop that nobody read is dropped."""
        for report in self._unsettled:
            if report.done():
                report.exception()  # read: no "exception was never retrieved" when it is dropped
            else:
                report.cancel()
        self._unsettled.clear()


#: Definitions checked lately, by object: the codec hands out one object per definition JSON, so the
#: jobs that share a test are checked once. Each entry holds its definition, so its id stays its own.
_CHECKED: dict[int, tuple[TestDefinition, tuple[FieldViolation, ...]]] = {}
_CHECKED_KEPT = 256


def _violations(definition: TestDefinition) -> list[FieldViolation]:
    """`validate_definition(definition)`, remembered for the definitions checked lately."""
    checked = _CHECKED.get(id(definition))
    if checked is not None and checked[0] is definition:
        return list(checked[1])
    violations = validate_definition(definition)
    if len(_CHECKED) >= _CHECKED_KEPT:
        _CHECKED.pop(next(iter(_CHECKED)))  # the oldest
    _CHECKED[id(definition)] = (definition, tuple(violations))
    return violations


def _steps_after_interrupt(state: RunState, reason: str) -> tuple[tuple[StepResult, ...], int]:
    """Per-step outcomes when the run was stopped mid-way (timeout, cancel), and the index of the
    step it stopped in (-1: before any step, or after the last). The steps that had ended keep their
    results (time, screenshots, console errors); the one running gets `reason` and the time it ran;
    the rest are skipped."""
    steps = state.claim.job.definition.steps
    ended = state.steps  # `run_steps` ends them in order and stops at the first that fails
    started = state.progress.current_step > 0  # 1-based; 0 = no step started
    stopped = len(ended) if started and len(ended) < len(steps) else -1
    results = list(ended)
    for i in range(len(ended), len(steps)):
        name = steps[i].display_name
        if i == stopped:
            ran_ms = max(now_ms() - state.progress.updated_at_ms, 0) if state.progress.current_step == i + 1 else 0
            results.append(StepResult(index=i, name=name, success=False, duration_ms=ran_ms, error=reason))
        else:
            results.append(StepResult(index=i, name=name, success=False, skipped=True))
    return tuple(results), stopped


async def _run(env: JobEnv, state: RunState, evidence: Evidence) -> RunOutcome:
    report = _Reporter(state)
    try:
        return await _run_reported(env, state, evidence, report)
    finally:
        report.close()


async def _run_reported(env: JobEnv, state: RunState, evidence: Evidence, report: _Reporter) -> RunOutcome:
    job = state.claim.job
    total = len(job.definition.steps)
    report.hand_over(percentage=0, current_step=0, total_steps=total, step_name="", message="Initializing")
    try:
        violations = _violations(job.definition)
        if violations:
            raise ValidationError(violations)
    except ValidationError as exc:
        await report.settle()
        return RunOutcome(steps=(), error=JobError(ErrorCategory.VALIDATION, str(exc)), artifacts=())
    report.hand_over(percentage=5, current_step=0, total_steps=total, step_name="", message="Validation complete")
    policy = job.options.artifact_policy
    video = job.options.record_video and policy is not ArtifactPolicy.NEVER
    session: Session | ApiSession
    if needs_browser(job.definition):
        session = await env.browser.new_context(
            viewport=job.definition.viewport, record_video_dir=Recording.video_dir(evidence) if video else None
        )
        if video and env.browser.video_problem:
            evidence.note(f"video not recorded: {env.browser.video_problem}")
    else:
        session = await env.browser.new_api_session()
    secrets = open_secrets(job.definition, sealer_for(env.secret_key))
    recording = Recording(session, evidence, secrets, screenshots=env.settings.trace_screenshots)
    failed = True  # until the steps say otherwise: a timeout or cancel mid-run keeps the evidence
    try:
        if policy is not ArtifactPolicy.NEVER:
            await recording.start(
                title=job.definition.name or job.job_id, untraced=env.settings.trace.skips(job.attempt)
            )
        ready = "Browser ready" if isinstance(session, Session) else "HTTP client ready (no browser needed)"
        await report(percentage=10, current_step=0, total_steps=total, step_name="", message=ready)
        outcome = await run_steps(
            session,
            job.definition,
            report=report,
            evidence=evidence,
            step_timeout_ms=env.settings.step_timeout_ms,
            artifact_policy=policy,
            secret_key=env.secret_key,
            recording=recording,
            results=state.steps,
            decided=state.decide,
            timed_out=state.timed_out,
        )
        failed = not outcome.success
    finally:
        # Closing the context is what really stops the work; never skip it, even when cancelled.
        await asyncio.shield(recording.close(keep=keeps(policy, failed=failed)))
    last = outcome.steps[-1].index + 1 if outcome.steps else 0
    # Not waited for: the run's end follows in this same loop turn and goes in the same write, after
    # it. The steps are over, so a cancel requested now comes too late to change the outcome, and a
    # lost lease fences the end off all the same.
    report.hand_over(percentage=95, current_step=last, total_steps=total, step_name="", message="Cleaning up")
    return outcome


async def run_job(env: JobEnv, state: RunState) -> JobState | None:
    """Run a claimed job to its end and record it; returns the state it ended in.

    Returns None when the run lost its lease (another executor owns the job now) and so
    recorded nothing. Cancellation of the calling task (shutdown) propagates.
    """
    claim = state.claim
    job = claim.job
    started = time.monotonic()
    remaining_s = max(job.timeout_ms - (now_ms() - state.started_ms), 1) / 1000
    evidence = state.evidence = Evidence.open(
        env.store,
        job_id=job.job_id,
        # Names count every run of the job, so a rerun (Retry) never overwrites the first run's files.
        attempt=job.runs,
        spool_root=Path(env.settings.spool_dir),
        max_job_bytes=env.settings.artifacts.max_job_bytes,
    )
    try:
        return await _run_and_record(env, state, evidence, started, remaining_s)
    finally:
        await evidence.close()


async def _run_and_record(
    env: JobEnv, state: RunState, evidence: Evidence, started: float, remaining_s: float
) -> JobState | None:
    job = state.claim.job
    ended: JobState
    try:
        if state.cancel_requested:  # asked before the run began: nothing runs
            raise CancelRequested(job.job_id)
        # asyncio.timeout runs the steps in this task (wait_for would start another per run).
        state.deadline = asyncio.get_running_loop().time() + remaining_s
        async with asyncio.timeout_at(state.deadline):
            outcome = await _run(env, state, evidence)
        ended = JobState.COMPLETED if outcome.error is None else JobState.FAILED
    except TimeoutError:
        reason = f"job timed out after {job.timeout_ms} ms"
        if state.decided:  # the steps had decided: the timeout cut the evidence short, not the verdict
            outcome, ended = _decided(state, evidence, f"the job's timeout ({job.timeout_ms} ms)")
        else:
            steps, stopped = _steps_after_interrupt(state, reason)
            error = JobError(ErrorCategory.TIMEOUT, reason, step_index=stopped)
            outcome = RunOutcome(steps=steps, error=error, artifacts=())
            ended = JobState.TIMEOUT
    except CancelRequested:
        state.cancel_requested = True
        outcome, ended = _cancelled(state, evidence)
    except asyncio.CancelledError:
        if state.lease_lost:
            log.warning("job %s: lease lost, stopped: %s", job.job_id, NOT_OURS)
            _uncancel()
            return None
        if not state.cancel_requested:
            raise
        _uncancel()
        outcome, ended = _cancelled(state, evidence)
    except LeaseLost:
        log.warning("job %s: lease lost: %s", job.job_id, NOT_OURS)
        return None
    except Exception as exc:  # an infrastructure failure outside any step: browser gone, ...
        log.exception("job %s: run failed outside a step", job.job_id)
        outcome = RunOutcome(steps=(), error=JobError(classify(exc), f"{type(exc).__name__}: {exc}"), artifacts=())
        ended = JobState.FAILED
    return await _record(
        env, state, outcome, ended, evidence=evidence, execution_ms=int((time.monotonic() - started) * 1000)
    )


def _decided(state: RunState, evidence: Evidence, what: str) -> tuple[RunOutcome, JobState]:
    """The run as its steps decided it, when `what` (a timeout, a cancel) stopped the evidence that
    followed: the failed step's error, or none when every step passed."""
    failed = state.verdict
    steps, _ = _steps_after_interrupt(state, failed.message if failed else "")
    evidence.note(f"evidence cut short: {what} came while it was kept")
    return RunOutcome(
        steps=steps, error=failed, artifacts=()
    ), JobState.COMPLETED if failed is None else JobState.FAILED


def _cancelled(state: RunState, evidence: Evidence) -> tuple[RunOutcome, JobState]:
    """The run a cancel stopped: CANCELLED, or once its steps are over (`decided`) as they decided it,
    since a cancel then comes too late to change the outcome (it cuts the evidence short)."""
    if state.decided:
        return _decided(state, evidence, "a cancel")
    steps, stopped = _steps_after_interrupt(state, "cancelled")
    # No category: nothing failed, a client asked (UNKNOWN would say "something broke, we don't
    # know what"). The state CANCELLED and the message say what happened.
    error = JobError(None, "cancelled by request", step_index=stopped)
    return RunOutcome(steps=steps, error=error, artifacts=()), JobState.CANCELLED


def _uncancel() -> None:
    """Take back a cancellation this code has handled, so later awaits in the task run normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def _record(
    env: JobEnv, state: RunState, outcome: RunOutcome, ended: JobState, *, evidence: Evidence, execution_ms: int
) -> JobState | None:
    claim = state.claim
    job = claim.job
    error = outcome.error
    decision = retry.Decision(retry=False)
    if error is not None and ended is not JobState.CANCELLED:
        decision = retry.decide(job.attempt, error, job.options, env.queue_settings)
        error = replace(error, retryable=decision.retry)
    now = now_ms()
    result = JobResult(
        success=error is None,
        steps=outcome.steps,
        execution_time_ms=execution_ms,
        worker_id=env.worker_id,
        attempt=job.attempt,
        total_attempts=job.max_attempts,
        started_at_ms=state.started_ms,
        completed_at_ms=now,
        artifacts=tuple(evidence.names),
        error=error,
        artifact_notes=tuple(evidence.notes),
    )
    total = len(job.definition.steps)
    if decision.retry:
        final_state = JobState.SCHEDULED
        category = error.category.value if error and error.category else "unknown"
        message = f"Attempt {job.attempt} failed ({category}); retrying in {decision.delay_ms} ms"
        percentage = state.progress.percentage
    else:
        final_state = ended
        message = {
            JobState.COMPLETED: "Complete",
            JobState.FAILED: f"Failed: {error.message if error else ''}",
            JobState.TIMEOUT: f"Timed out after {job.timeout_ms} ms",
            JobState.CANCELLED: "Cancelled",
        }[ended]
        percentage = 100 if ended is JobState.COMPLETED else state.progress.percentage
    progress = Progress(
        percentage=percentage,
        current_step=state.progress.current_step if ended is not JobState.COMPLETED else total,
        total_steps=total,
        step_name=state.progress.step_name,
        message=message[:1000],
        updated_at_ms=now,
    )
    dead = ""
    if (
        final_state in (JobState.FAILED, JobState.TIMEOUT)
        and error is not None
        and error.category is not None
        and error.category is not ErrorCategory.ASSERTION
    ):
        allowed = retry.attempts_allowed(error, job.options, env.queue_settings)
        dead = f"{error.category.value}: out of attempts ({job.attempt} of {allowed})"
    end = RunEnd(
        state=final_state,
        progress=progress,
        result=result,
        error=error,
        due_ms=now + decision.delay_ms if decision.retry else 0,
        dead_letter_reason=dead,
        execution_ms=execution_ms,
        worker_id=env.worker_id,
    )
    if not await state.ledger.finish(claim, end):  # the ledger said why (a stale fence, Redis away a lease)
        return None
    log.info("job %s attempt %d ended %s", job.job_id, job.attempt, final_state.value)
    return final_state
